// Package daemonconfig is how Weft's daemons (weft-agent, weft-apiserver)
// take their configuration: command-line flags, then WEFT_<FLAG> environment
// variables, then a YAML or JSON file whose keys are flag names, each
// filling only what the one before left unset; and the flags every daemon
// shares (--config, --log-level, --version).
//
// It depends only on pflag and sigs.k8s.io/yaml.
package daemonconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Common are the flags every daemon has besides its own.
type Common struct {
	ConfigFile  string
	LogLevel    string
	ShowVersion bool
}

// Register adds --config, --log-level and --version to fs.
func Register(fs *pflag.FlagSet) *Common {
	c := &Common{}
	fs.StringVar(&c.ConfigFile, "config", "", "YAML or JSON file with flag names as keys")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.ShowVersion, "version", false, "print the version and exit")
	return c
}

// Load parses args into fs, then applies the environment and the config
// file to every flag still unset: flag > env > file > default.
func (c *Common) Load(fs *pflag.FlagSet, args, environ []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := LoadEnv(fs, environ); err != nil {
		return err
	}
	if c.ConfigFile != "" {
		return LoadFile(fs, c.ConfigFile)
	}
	return nil
}

// Logger is a text logger on stderr at --log-level.
func (c *Common) Logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: accepted are debug, info, warn, error", c.LogLevel)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}

// LoadFile applies a YAML or JSON file whose keys are flag names, for every
// flag not set on the command line. Unknown keys are an error.
func LoadFile(fs *pflag.FlagSet, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("parse config file %s: %w", path, err)
	}
	var values map[string]any
	if err := json.Unmarshal(js, &values); err != nil {
		return fmt.Errorf("parse config file %s: want an object of flag names to values: %w", path, err)
	}
	for name, v := range values {
		f := fs.Lookup(name)
		if f == nil {
			return fmt.Errorf("config file %s: unknown key %q (keys are flag names such as log-level)", path, name)
		}
		if f.Changed {
			continue
		}
		if err := fs.Set(name, flagValue(v)); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, name, err)
		}
	}
	return nil
}

// LoadEnv applies WEFT_<FLAG> variables (upper case, '-' as '_') for every
// flag not set on the command line.
func LoadEnv(fs *pflag.FlagSet, environ []string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := "WEFT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, name+"="); ok {
				if err := fs.Set(f.Name, v); err != nil {
					errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
				}
			}
		}
	})
	return errors.Join(errs...)
}

func flagValue(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, p := range list {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}
