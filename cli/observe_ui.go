package cli

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/relay/ui"
)

func newObserveUICommand(o *options) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "ui [--listen 127.0.0.1:12000]",
		Short: "Serve the service map: pods and the flows between them, live, in a browser",
		Long: `Serve the service map of a testenv environment (--name, default "weft") on
--listen and print its address. The page draws every pod seen in the flows
of every node of every cluster, grouped by namespace, and the flows between
them as edges: green when forwarded, red and dashed when dropped. Below it,
a table of the flows; click an edge to show only its flows. Selectors hide
other namespaces or clusters. It is live (the page follows the flows) and
works offline: its assets are built into weft.

The page's address takes ?namespace=, ?cluster= (only those flows) and
?last= (how many past flows to start with, default 1000, at most 10000).
It stops on Ctrl-C.`,
		Example: `  weft observe ui
  weft --name mesh observe ui --listen 127.0.0.1:8080
  # then open http://127.0.0.1:8080/?namespace=dev`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.socketFlag {
				return errors.New("weft observe ui reads every node of a testenv environment (--name), not one --socket")
			}
			r, err := newEnvRelay(cmd, o.envName())
			if err != nil {
				return err
			}
			defer r.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("serve the service map on --listen %s: %w", listen, err)
			}
			srv := &http.Server{Handler: ui.Handler(r, cliLogger(cmd)), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "serving the service map of environment %q at http://%s/ (Ctrl-C stops)\n", o.envName(), ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case <-cmd.Context().Done():
				srv.Close()
				return nil
			case err := <-errc:
				return err
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:12000", "`address` to serve the page on (port 0: any free port)")
	return cmd
}
