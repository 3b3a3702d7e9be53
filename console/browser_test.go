package console_test

// The browser tests drive a real headless Chromium (Debian's chromium
// package) with chromedp against nodes started in-process on loopback.
// Without Chromium they skip, except under CI (CI set and not "false" or
// "0"), where they fail: CI must install it.
//
// ARTEMIS_CHROMIUM names the browser binary; ARTEMIS_CONSOLE_ARTIFACTS a
// directory for the screenshots (else each test's temporary directory).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.stop != nil {
		browser.stop()
	}
	os.Exit(code)
}

// browser is the one Chromium of the package's tests, started on first use.
var browser struct {
	once sync.Once
	path string
	ctx  context.Context // the browser's first tab; new tabs derive from it
	stop func()
	err  error
}

// chromiumPath finds the browser: $ARTEMIS_CHROMIUM, Debian's binary, then
// the usual names on $PATH.
func chromiumPath() string {
	if p := os.Getenv("ARTEMIS_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/lib/chromium/chromium"); err == nil {
		return "/usr/lib/chromium/chromium" // Debian's binary, without the shell wrapper
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// startBrowser returns the browser's context, starting it once. It skips
// the test when there is no browser (fails it under CI).
func startBrowser(tb testing.TB) context.Context {
	tb.Helper()
	browser.once.Do(func() {
		browser.path = chromiumPath()
		if browser.path == "" {
			return
		}
		dir, err := os.MkdirTemp("", "artemis-console-chromium-")
		if err != nil {
			browser.err = err
			return
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(browser.path),
			chromedp.Headless,
			chromedp.NoSandbox, // root in CI
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-extensions", true),
			chromedp.UserDataDir(dir),
			chromedp.WindowSize(1280, 800),
		)
		bctx, bcancel := chromedp.NewContext(actx)
		browser.stop = func() {
			bcancel()
			acancel()
			os.RemoveAll(dir)
		}
		browser.ctx = bctx
		browser.err = chromedp.Do(bctx) // starts the browser
	})
	if browser.path == "" {
		if inCI() {
			tb.Fatal("no Chromium found: CI must install it (apt-get install -y chromium) or set ARTEMIS_CHROMIUM")
		}
		tb.Skip("no Chromium found: install Debian's chromium package or set ARTEMIS_CHROMIUM to run the browser tests")
	}
	if browser.err != nil {
		tb.Fatalf("cannot start Chromium %s: %v", browser.path, browser.err)
	}
	return browser.ctx
}

// tab is one browser tab of a test. Uncaught exceptions and CSP violations
// in it fail the test when it ends.
type tab struct {
	t   testing.TB
	ctx context.Context

	mu   sync.Mutex // guards msgs
	msgs []chromedp.ConsoleMessage
}

func newTab(t testing.TB) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(startBrowser(t))
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	tb := &tab{t: t, ctx: ctx}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.msgs = append(tb.msgs, m)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		tb.checkConsole()
		cancelTimeout()
		cancel()
		<-done
	})
	tb.do(chromedp.EmulateViewport(1280, 800))
	return tb
}

func (tb *tab) checkConsole() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.msgs {
		switch {
		case m.IsException(), strings.Contains(m.Text, "Content Security Policy"), strings.Contains(m.Text, "Refused to"):
			tb.t.Errorf("unexpected browser console message: %s", m)
		case m.Type == chromedp.ConsoleError:
			tb.t.Logf("browser console: %s", m) // e.g. a management read answered 404: expected
		}
	}
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("cannot evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript expression until it is truthy or timeout ends;
// it reports whether it became truthy.
// A poll that a navigation interrupts (the page's own hash routing
// included) starts again in the new document.
func (tb *tab) waitFor(expr string, timeout time.Duration) bool {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		_, err := chromedp.Run(tb.ctx, chromedp.Poll[any](expr,
			chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(left)))
		switch {
		case err == nil:
			return true
		case errors.Is(err, chromedp.ErrPollingTimeout), tb.ctx.Err() != nil:
			return false
		}
		tb.t.Logf("poll of %s interrupted (%v); again", expr, err)
		time.Sleep(10 * time.Millisecond)
	}
}

func (tb *tab) mustWaitFor(expr string, timeout time.Duration) {
	tb.t.Helper()
	if !tb.waitFor(expr, timeout) {
		tb.t.Fatalf("%s did not become true within %v; page text: %q", expr, timeout, eval[string](tb, "document.body.innerText"))
	}
}

// screenshot saves the visible page as name.png among the artefacts.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("cannot take a screenshot: %v", err)
	}
	dir := os.Getenv("ARTEMIS_CONSOLE_ARTIFACTS")
	if dir == "" {
		dir = tb.t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
}

// colorScheme emulates prefers-color-scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// rowsJS lists the cells' text of the rows of the first table in #view.
const rowsJS = `[...document.querySelectorAll('#view table')[0].tBodies[0].rows].filter(tr => !tr.classList.contains('spacer')).map(tr => [...tr.cells].map(td => td.textContent))`

// startNode starts a node with a long lease TTL, so nothing expires during a test.
func startNode(t testing.TB) *servertest.Node {
	t.Helper()
	return servertest.Start(t, core.Config{Region: "default", Zone: "zone-a", LeaseTTL: 5 * time.Minute}, server.Config{})
}

type instance = map[string]any

func inst(service, id, ip, status string) instance {
	return instance{"regionId": "default", "zoneId": "zone-a", "serviceId": service, "instanceId": id,
		"ip": ip, "port": 8080, "url": "http://" + ip + ":8080", "status": status}
}

// registry posts insts to op (register or unregister) and fails the test
// unless the node answers success.
func registry(t testing.TB, baseURL, op string, insts ...instance) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"instances": insts})
	resp, err := http.Post(baseURL+"/api/registry/"+op+".json", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		ResponseStatus struct{ Status, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.ResponseStatus.Status != "success" {
		t.Fatalf("unexpected %s answer %+v (%v)", op, answer, err)
	}
}

// serviceJSON returns the instance ids discovery shows of a service.
func serviceJSON(t testing.TB, baseURL, service string) []string {
	t.Helper()
	resp, err := http.Get(baseURL + "/api/discovery/service.json?serviceId=" + service)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Service struct {
			Instances []struct{ InstanceID string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range answer.Service.Instances {
		ids = append(ids, i.InstanceID)
	}
	return ids
}

// hasRow is a JavaScript predicate: some row of #view's first table has text.
func hasRow(text string) string {
	q, _ := json.Marshal(text)
	return fmt.Sprintf(`[...document.querySelectorAll('#view table')[0].tBodies[0].rows].some(tr => tr.textContent.includes(%s))`, q)
}

// waitUp waits until the node at baseURL reports status up.
func waitUp(t testing.TB, baseURL string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var answer struct{ NodeStatus struct{ Status string } }
		resp, err := http.Get(baseURL + "/api/status/node.json")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&answer)
			resp.Body.Close()
		}
		if answer.NodeStatus.Status == "up" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not up after 10 s (%q, %v)", baseURL, answer.NodeStatus.Status, err)
		}
	}
}
