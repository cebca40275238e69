package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/testenv"
)

// TestServiceMap opens `weft observe ui` in a real headless Chromium and
// checks the drawn map: the pods of an allowed and a denied connection are
// nodes, the two connections are a forwarded (green) and a dropped (red)
// edge, clicking the dropped edge leaves only its flows in the table, and
// the namespace selector hides the pods of other namespaces.
func TestServiceMap(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		testgate.Skip(t, "chromium is not installed (Debian package chromium, which make deps installs)")
	}
	spec := testenv.DefaultSpec()
	spec.Nodes = 2
	e := up(t, "smap", spec)
	n1, n2 := e.Nodes[0].Name, e.Nodes[1].Name
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, p := range []testenv.PodSpec{
		{Name: "client-1", Node: n1, Namespace: "dev", Labels: map[string]string{"app": "client"}},
		{Name: "nginx-dev", Node: n2, Namespace: "dev", Labels: map[string]string{"app": "nginx"}},
		{Name: "probe-1", Node: n1, Namespace: "other", Labels: map[string]string{"app": "probe"}},
	} {
		if _, err := e.AddPod(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	server, err := e.Pod("nginx-dev")
	if err != nil {
		t.Fatal(err)
	}
	listenIn(t, mustTarget(t, e, "pod/nginx-dev").Do, server.Addr())
	allowed, denied := netip.AddrPortFrom(server.Addr(), portHTTP), netip.AddrPortFrom(server.Addr(), portAlt)
	weftCLI(t, e, n1, nginxHTTPOnly, "policy", "import", "-f", "-")
	eventually(t, 30*time.Second, "client-1 reaches nginx on 80 and not on 8080", func() error {
		if err := greet(e, "client-1", allowed); err != nil {
			return err
		}
		if greet(e, "client-1", denied) == nil {
			return fmt.Errorf("client-1 still reaches %s", denied)
		}
		return nil
	})
	greet(e, "probe-1", allowed) //nolint:errcheck // denied too: the flow is what matters

	// weft observe ui on any free port; its first line says where.
	cmd := exec.CommandContext(ctx, binaries(t).Weft, "--name", e.Name, "observe", "ui", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("weft observe ui printed no address: %v", err)
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("weft observe ui printed %q, want its http:// address", line)
	}
	url := strings.Fields(line[i:])[0]

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc() // kills Chromium
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	bctx, cancelRun := context.WithTimeout(bctx, 90*time.Second)
	defer cancelRun()

	const (
		client     = `g.node[data-id="dev/client-1"]`
		nginx      = `g.node[data-id="dev/nginx-dev"]`
		probe      = `g.node[data-id="other/probe-1"]`
		forwarded  = `line.edge.forwarded[data-src="dev/client-1"][data-dst="dev/nginx-dev"]`
		dropped    = `line.edge.dropped[data-src="dev/client-1"][data-dst="dev/nginx-dev"]`
		hiddenNode = `g.node.hidden[data-id="other/probe-1"]`
	)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(url),
		chromedp.WaitReady(client),
		chromedp.WaitReady(nginx),
		chromedp.WaitReady(probe),
		chromedp.WaitReady(forwarded),
		chromedp.WaitReady(dropped),
	); err != nil {
		t.Fatalf("the service map of %s does not draw client-1, nginx-dev, probe-1 and a forwarded and a dropped edge between client-1 and nginx-dev: %v", url, err)
	}
	colours, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[`+
		`getComputedStyle(document.querySelector('`+forwarded+`')).stroke,`+
		`getComputedStyle(document.querySelector('`+dropped+`')).stroke]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(colours) != 2 || colours[0] == colours[1] || colours[1] != "rgb(198, 40, 40)" {
		t.Errorf("edge colours forwarded %v: want green and red (rgb(198, 40, 40)) for dropped", colours)
	}

	// Clicking the dropped edge leaves only its flows in the table.
	if err := chromedp.Do(bctx, chromedp.Click(dropped), chromedp.WaitVisible(`#clear`)); err != nil {
		t.Fatalf("click the dropped edge: %v", err)
	}
	rows, err := chromedp.Run(bctx, chromedp.Evaluate[[]map[string]string](
		`[...document.querySelectorAll('#flows tbody tr')].map(r => ({src: r.dataset.src, dst: r.dataset.dst, verdict: r.dataset.verdict}))`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Error("after clicking the dropped edge the flow table is empty")
	}
	for _, r := range rows {
		if r["src"] != "dev/client-1" || r["dst"] != "dev/nginx-dev" || r["verdict"] != "DROPPED" {
			t.Errorf("after clicking the dropped edge the table shows %v", r)
		}
	}

	// The namespace selector hides the pods of other namespaces.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`const s = document.getElementById("ns-filter"); s.value = "dev"; s.dispatchEvent(new Event("change"))`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.WaitReady(hiddenNode)); err != nil {
		t.Fatalf("select namespace dev: other/probe-1 is not hidden: %v", err)
	}
	clientHidden, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('`+client+`').classList.contains("hidden")`))
	if err != nil {
		t.Fatal(err)
	}
	if clientHidden {
		t.Error("selecting namespace dev hid dev/client-1")
	}
	if png, err := chromedp.Run(bctx, chromedp.FullScreenshot(90)); err == nil {
		shot := filepath.Join(t.TempDir(), "servicemap.png")
		os.WriteFile(shot, png, 0o644)
		t.Logf("screenshot of the map: %d bytes", len(png))
	}
}
