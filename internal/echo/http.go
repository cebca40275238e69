package echo

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ServeHTTP answers every HTTP request ln accepts (keep-alive) with 200
// and the body "<method> <request target> at <name>\n", after reading the
// request's body, until closed. A client learns which server answered and
// that the request reached it unchanged. Closing the result closes ln.
func ServeHTTP(ln net.Listener, name string) io.Closer {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) //nolint:errcheck // the answer does not depend on it
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s %s at %s\n", r.Method, r.RequestURI, name)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed or ln's error
	}()
	return closerFunc(func() error {
		err := srv.Close()
		<-done
		return err
	})
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
