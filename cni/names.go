package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// HostIfName is the host side of a pod's veth pair: "lxc" and the first 8 hex
// characters of sha256(containerID + "/" + ifname) (docs/agent.md). It is
// stable, so DEL finds the link again from the same two values.
func HostIfName(containerID, ifname string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifname))
	return "lxc" + hex.EncodeToString(sum[:])[:8]
}

// checkLabel validates a label the way Kubernetes does: the key is an
// optional DNS subdomain prefix and '/', then a name of at most 63
// characters; the value is empty or such a name. The namespace and cluster
// labels are reserved: the agent sets them.
func checkLabel(key, value string) error {
	name := key
	if prefix, rest, ok := strings.Cut(key, "/"); ok {
		if err := checkDNSSubdomain(prefix); err != nil {
			return fmt.Errorf("label key %q has an invalid prefix: %v", key, err)
		}
		name = rest
	}
	if err := checkLabelName(name); err != nil {
		return fmt.Errorf("label key %q: %v", key, err)
	}
	if name == reservedLabel || name == clusterLabel {
		return fmt.Errorf("label key %q is reserved: the agent sets it (use %s for the namespace)", key, argNamespace)
	}
	if value != "" {
		if err := checkLabelName(value); err != nil {
			return fmt.Errorf("label %q value %q: %v", key, value, err)
		}
	}
	return nil
}

// checkLabelName accepts 1-63 characters of [A-Za-z0-9-_.], starting and
// ending with a letter or digit.
func checkLabelName(s string) error {
	const accepted = "accepted are 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
	if s == "" || len(s) > 63 {
		return fmt.Errorf("length %d: %s", len(s), accepted)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || ((c == '-' || c == '_' || c == '.') && i > 0 && i < len(s)-1) {
			continue
		}
		return fmt.Errorf("character %q at %d: %s", c, i, accepted)
	}
	return nil
}

// checkDNSLabel accepts an RFC 1123 label: 1-63 lowercase letters, digits and
// '-', starting and ending with a letter or digit.
func checkDNSLabel(s string) error {
	const accepted = "accepted is a DNS label: 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
	if s == "" || len(s) > 63 {
		return fmt.Errorf("length %d: %s", len(s), accepted)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLowerAlnum(c) || (c == '-' && i > 0 && i < len(s)-1) {
			continue
		}
		return fmt.Errorf("character %q at %d: %s", c, i, accepted)
	}
	return nil
}

// checkDNSSubdomain accepts an RFC 1123 subdomain: at most 253 characters,
// dot-separated DNS labels.
func checkDNSSubdomain(s string) error {
	const accepted = "accepted is a DNS subdomain: at most 253 characters, dot-separated lowercase labels"
	if s == "" || len(s) > 253 {
		return fmt.Errorf("length %d: %s", len(s), accepted)
	}
	for part := range strings.SplitSeq(s, ".") {
		if err := checkDNSLabel(part); err != nil {
			return fmt.Errorf("part %q: %s", part, accepted)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return isLowerAlnum(c) || (c >= 'A' && c <= 'Z')
}

func isLowerAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}
