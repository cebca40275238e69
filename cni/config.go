package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
)

// supportedVersions are the CNI spec versions weft-cni speaks.
func supportedVersions() []string { return []string{"1.0.0", "1.1.0"} }

// VersionInfo is what the plugin answers to VERSION.
func VersionInfo() version.PluginInfo {
	return version.PluginSupports(supportedVersions()...)
}

// NetConf is weft-cni's network configuration: the standard fields plus
// Weft's own. docs/agent.md fixes it; docs/cni.md documents it.
type NetConf struct {
	types.PluginConf
	// AgentSocket is weft-agent's gRPC unix socket on this node.
	AgentSocket string `json:"agentSocket"`
	// LogFile, when set, receives one line per command (append).
	LogFile string `json:"logFile,omitempty"`
	// RuntimeConfig holds what the runtime passes for enabled capabilities.
	RuntimeConfig RuntimeConfig `json:"runtimeConfig,omitempty"`
}

// RuntimeConfig is the runtime-supplied part of the configuration
// (capabilities "labels" and "portMappings").
type RuntimeConfig struct {
	Labels       map[string]string `json:"labels,omitempty"`
	PortMappings []PortMapping     `json:"portMappings,omitempty"`
}

// PortMapping is the CNI "portMappings" capability's entry.
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
}

// ParseConfig decodes and validates the network configuration from stdin.
// Malformed JSON is a decoding failure (6); an unsupported cniVersion is an
// incompatible version (1); anything else wrong is an invalid network
// configuration (7). Every message names the field, the value and what is
// accepted.
func ParseConfig(data []byte) (*NetConf, *types.Error) {
	var conf NetConf
	if err := json.Unmarshal(data, &conf); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, newError(types.ErrDecodingFailure,
				"parse network config: invalid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			return nil, newError(types.ErrInvalidNetworkConfig,
				"parse network config: field %q is a JSON %s, accepted is a %s",
				strings.TrimPrefix(typ.Field, "PluginConf."), typ.Value, jsonKind(typ.Type.String()))
		default:
			return nil, newError(types.ErrDecodingFailure, "parse network config: %v", err)
		}
	}
	if err := conf.validate(); err != nil {
		return nil, err
	}
	return &conf, nil
}

func (c *NetConf) validate() *types.Error {
	accepted := strings.Join(supportedVersions(), ", ")
	if c.CNIVersion == "" {
		return newError(types.ErrInvalidNetworkConfig,
			"network config has no cniVersion: accepted are %s", accepted)
	}
	if !slices.Contains(supportedVersions(), c.CNIVersion) {
		return newError(types.ErrIncompatibleCNIVersion,
			"network config cniVersion %q is not supported: accepted are %s", c.CNIVersion, accepted)
	}
	if c.Name == "" {
		return newError(types.ErrInvalidNetworkConfig,
			"network config has no name: accepted is a name of letters, digits, '_', '.' and '-'")
	}
	if err := utils.ValidateNetworkName(c.Name); err != nil {
		return newError(types.ErrInvalidNetworkConfig,
			"network config name %q is invalid: accepted are letters, digits, '_', '.' and '-', starting with a letter or digit", c.Name)
	}
	if c.IPAM.Type != "" {
		return newError(types.ErrUnsupportedField,
			"network config field \"ipam\" (type %q) is not supported: weft-agent allocates pod addresses; remove the field", c.IPAM.Type)
	}
	if c.AgentSocket == "" {
		return newError(types.ErrInvalidNetworkConfig,
			"network config has no agentSocket: set it to weft-agent's unix socket, e.g. %q", "/var/run/weft/agent.sock")
	}
	if !filepath.IsAbs(c.AgentSocket) {
		return newError(types.ErrInvalidNetworkConfig,
			"network config agentSocket %q is not an absolute path: accepted is the absolute path of weft-agent's unix socket", c.AgentSocket)
	}
	if c.LogFile != "" && !filepath.IsAbs(c.LogFile) {
		return newError(types.ErrInvalidNetworkConfig,
			"network config logFile %q is not an absolute path: accepted are an absolute file path or \"\" (no log)", c.LogFile)
	}
	for i := range c.RuntimeConfig.PortMappings {
		if err := c.RuntimeConfig.PortMappings[i].normalize(); err != nil {
			return newError(types.ErrInvalidNetworkConfig, "network config runtimeConfig.portMappings[%d]: %v", i, err)
		}
	}
	return nil
}

// normalize validates a port mapping and upper-cases its protocol (TCP when
// empty).
func (p *PortMapping) normalize() error {
	if p.HostPort < 1 || p.HostPort > 65535 {
		return fmt.Errorf("hostPort %d is out of range: accepted are 1-65535", p.HostPort)
	}
	if p.ContainerPort < 1 || p.ContainerPort > 65535 {
		return fmt.Errorf("containerPort %d is out of range: accepted are 1-65535", p.ContainerPort)
	}
	proto := strings.ToUpper(p.Protocol)
	if proto == "" {
		proto = "TCP"
	}
	if proto != "TCP" && proto != "UDP" {
		return fmt.Errorf("protocol %q is not supported: accepted are tcp and udp", p.Protocol)
	}
	p.Protocol = proto
	if p.HostIP != "" {
		if _, err := netip.ParseAddr(p.HostIP); err != nil {
			return fmt.Errorf("hostIP %q is not an IP address: accepted are an IPv4 address or \"\" (all)", p.HostIP)
		}
	}
	return nil
}

// jsonKind names a Go type the way a JSON author would think of it.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map["):
		return "JSON object"
	case strings.HasPrefix(goType, "[]"):
		return "JSON array"
	case goType == "string":
		return "JSON string"
	case goType == "bool":
		return "JSON boolean"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint") || strings.HasPrefix(goType, "float"):
		return "JSON number"
	default:
		return "JSON object"
	}
}
