package connectivity

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftnet/weft/agent/connectivity"
	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/internal/echo"
)

// TestStreamConn: a socket the agent's Connectivity service opens on the
// host (here: loopback, the service served in process on a unix socket)
// behaves as a net.Conn for the probes: the greeting and a 1 MiB echo
// over TCP, datagrams kept whole over UDP, a read deadline that expires,
// and a refused connection reported as such.
func TestStreamConn(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	cx := connectivity.New(connectivity.Config{Node: "n1", StateDir: dir}, slog.New(slog.DiscardHandler))
	agentapi.RegisterConnectivityServer(srv, cx)
	go srv.Serve(l) //nolint:errcheck // ends with Stop
	defer srv.Stop()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := agentapi.NewConnectivityClient(conn)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.ServeTCP(ln, "srv").Close()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.ServeUDP(pc).Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("tcp", func(t *testing.T) {
		c, err := dialStream(ctx, client, &agentapi.DialRequest{Network: "tcp", Address: ln.Addr().String()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		hello, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(hello, "from 127.0.0.1:") || !strings.HasSuffix(hello, " at srv\n") {
			t.Fatalf("greeting %q, %v", hello, err)
		}
		payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		go c.Write(payload)                                        //nolint:errcheck // the read checks
		got := make([]byte, len(payload))
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("1 MiB echo: %v (equal %v)", err, bytes.Equal(got, payload))
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
		}
	})
	t.Run("udp", func(t *testing.T) {
		c, err := dialStream(ctx, client, &agentapi.DialRequest{Network: "udp", Address: pc.LocalAddr().String()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, msg := range []string{"one", "two"} {
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil || !strings.HasSuffix(string(buf[:n]), "|"+msg) {
				t.Fatalf("datagram %q came back as %q, %v", msg, buf[:n], err)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		free, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := free.Addr().String()
		free.Close()
		_, err = dialStream(ctx, client, &agentapi.DialRequest{Network: "tcp", Address: addr})
		if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "from the host") {
			t.Errorf("dial a closed port: %v, want connection refused from the host", err)
		}
	})
}
