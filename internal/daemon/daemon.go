// Package daemon is the shared main of Weft's daemons (weft-agent,
// weft-apiserver): it registers the daemon's flags and the common ones,
// loads flags, WEFT_<FLAG> environment variables and the config file
// (internal/daemonconfig), answers --version and --help, builds the logger
// and runs the daemon until SIGINT or SIGTERM.
//
// It depends only on internal/daemonconfig and pflag.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/weftnet/weft/internal/daemonconfig"
)

// Program is one daemon.
type Program struct {
	Name    string // e.g. weft-agent
	Version string // set by the binary at link time
	// Usage is the text --help prints above the flags.
	Usage string
	// Flags registers the daemon's own flags.
	Flags func(fs *pflag.FlagSet)
	// Run runs the daemon until ctx ends.
	Run func(ctx context.Context, log *slog.Logger) error
}

// ExitError ends a daemon with Code, printing Err (when set) to stderr as
// it is, without the logger's decoration: what a refused start returns.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Main runs p with the process's arguments and environment and exits.
func Main(p Program) {
	os.Exit(p.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// Main runs p and returns the exit code: 0 after a clean stop, --help or
// --version; 1 when the daemon failed; 2 for bad flags or configuration;
// an ExitError's code.
func (p Program) Main(args, environ []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet(p.Name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "%s\nFlags:\n%s", p.Usage, fs.FlagUsages()) }
	p.Flags(fs)
	common := daemonconfig.Register(fs)
	if err := common.Load(fs, args, environ); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return 2
	}
	if common.ShowVersion {
		fmt.Fprintln(stdout, p.Name, p.Version)
		return 0
	}
	log, err := common.Logger()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = p.Run(ctx, log)
	var exit *ExitError
	switch {
	case errors.As(err, &exit):
		if exit.Err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", p.Name, exit.Err)
		}
		return exit.Code
	case err != nil:
		log.Error(p.Name+" failed", "err", err)
		return 1
	}
	return 0
}
