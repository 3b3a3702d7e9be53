package console_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"

	"github.com/artemis-go/artemis/cluster"
	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

// pushDeadline is how soon a register must show on an open service page:
// well inside the page's 5-s poll, so only a pushed change can meet it.
const pushDeadline = time.Second

func seed(t *testing.T, baseURL string) {
	t.Helper()
	order1 := inst("order", "order-1", "10.0.0.1", "up")
	order1["groupId"] = "blue"
	order1["metadata"] = map[string]string{"version": "1.2"}
	registry(t, baseURL, "register",
		order1, inst("order", "order-2", "10.0.0.2", "up"), inst("order", "order-3", "10.0.0.3", "down"),
		inst("pay", "pay-1", "10.0.1.1", "up"), inst("pay", "pay-2", "10.0.1.2", "starting"),
		inst("cart", "cart-1", "10.0.2.1", "up"))
}

func TestBrowserServicesPage(t *testing.T) {
	n := startNode(t)
	seed(t, n.URL)
	tb := newTab(t)

	tb.do(chromedp.Navigate(n.URL + "/")) // redirected to /console/
	tb.mustWaitFor(`document.body.dataset.interactive === 'services'`, 10*time.Second)
	if loc := eval[string](tb, "location.pathname + location.hash"); loc != "/console/#/services" {
		t.Errorf("unexpected location %q; want /console/#/services", loc)
	}
	want := [][]string{ // service, up, pulled out, down, expired, total
		{"cart", "1", "0", "0", "0", "1"},
		{"order", "2", "0", "1", "0", "3"},
		{"pay", "1", "0", "1", "0", "2"},
	}
	if diff := cmp.Diff(want, eval[[][]string](tb, rowsJS)); diff != "" {
		t.Errorf("unexpected service rows (-want +got):\n%s", diff)
	}
	if got := eval[string](tb, `document.querySelector('#auth').innerText`); !strings.Contains(got, "Read-only") {
		t.Errorf("unexpected admin banner %q; want it to say read-only", got)
	}
	tb.screenshot("services")

	// Sorting by total, both ways.
	tb.do(chromedp.Click(chromedp.CSS(`th:nth-child(6) button`)))
	if got := eval[[]string](tb, `[...document.querySelectorAll('#view tbody a')].map(a => a.textContent)`); !cmp.Equal(got, []string{"cart", "pay", "order"}) {
		t.Errorf("unexpected order by total %v", got)
	}
	tb.do(chromedp.Click(chromedp.CSS(`th:nth-child(6) button`)))
	if got := eval[string](tb, `document.querySelector('th:nth-child(6)').getAttribute('aria-sort')`); got != "descending" {
		t.Errorf("unexpected aria-sort %q; want descending", got)
	}
	if got := eval[[]string](tb, `[...document.querySelectorAll('#view tbody a')].map(a => a.textContent)`); !cmp.Equal(got, []string{"order", "pay", "cart"}) {
		t.Errorf("unexpected order by total, descending %v", got)
	}

	// Search as you type.
	tb.do(chromedp.SendKeys(chromedp.CSS("#service-search"), "PA"))
	tb.mustWaitFor(`document.querySelector('#service-count').textContent === '1 of 3 services'`, 2*time.Second)
	if got := eval[[][]string](tb, rowsJS); len(got) != 1 || got[0][0] != "pay" {
		t.Errorf("unexpected rows for the search PA: %v", got)
	}

	// Keyboard: from the search box, Tab goes to the list, its sort
	// buttons, then its first link; Enter on a sort button sorts, on the
	// link opens the service.
	tb.do(chromedp.Navigate(n.URL+"/console/#/services"), chromedp.Reload())
	tb.mustWaitFor(`document.body.dataset.ready === 'services'`, 10*time.Second)
	tb.do(chromedp.Focus(chromedp.CSS("#service-search")))
	var focused []string
	for range 8 {
		tb.do(chromedp.KeyEvent(kb.Tab))
		focused = append(focused, eval[string](tb, `document.activeElement.tagName + ':' + (document.activeElement.getAttribute('aria-label') || document.activeElement.textContent.slice(0, 20))`))
	}
	wantFocus := []string{"DIV:Services", "BUTTON:Service", "BUTTON:Up", "BUTTON:Pulled out", "BUTTON:Down", "BUTTON:Expired", "BUTTON:Total", "A:cart"}
	if diff := cmp.Diff(wantFocus, focused); diff != "" {
		t.Fatalf("unexpected focus order (-want +got):\n%s", diff)
	}
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.mustWaitFor(`location.hash === '#/service/cart' && document.body.dataset.ready === 'service'`, 10*time.Second)
}

func TestBrowserNarrowAndDark(t *testing.T) {
	n := startNode(t)
	seed(t, n.URL)
	tb := newTab(t)
	tb.do(chromedp.EmulateViewport(390, 844), colorScheme("dark"), chromedp.Navigate(n.URL+"/console/#/service/order"))
	tb.mustWaitFor(`document.body.dataset.ready === 'service'`, 10*time.Second)
	if w := eval[[]int](tb, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("unexpected page width %d in a %d px window: the page scrolls sideways", w[0], w[1])
	}
	if bg := eval[string](tb, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(20, 23, 27)" {
		t.Errorf("unexpected dark background %q; want rgb(20, 23, 27)", bg)
	}
	tb.screenshot("service-narrow-dark")
}

func TestBrowserServicePage(t *testing.T) {
	n := startNode(t)
	seed(t, n.URL)
	tb := newTab(t)
	tb.do(chromedp.Navigate(n.URL + "/console/#/service/order"))
	tb.mustWaitFor(`document.querySelector('#live').dataset.synced === 'true'`, 10*time.Second)

	rows := eval[[][]string](tb, rowsJS)
	if len(rows) != 3 {
		t.Fatalf("unexpected rows %v; want order-1..3", rows)
	}
	// instance, status, zone, group, ip:port, metadata, lease age, expires in, management, actions
	got := [][]string{}
	for _, r := range rows {
		got = append(got, []string{r[0], r[1], r[2], r[3], r[4], r[5], r[8]})
	}
	want := [][]string{
		{"order-1", "up", "zone-a", "blue", "10.0.0.1:8080", "version=1.2", "in service"},
		{"order-2", "up", "zone-a", "", "10.0.0.2:8080", "", "in service"},
		{"order-3", "down", "zone-a", "", "10.0.0.3:8080", "", "in service"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unexpected instance rows (-want +got):\n%s", diff)
	}
	lease := regexp.MustCompile(`^(\d+s|\d+m \d+s)$`)
	for _, r := range rows {
		if !lease.MatchString(r[6]) || !lease.MatchString(r[7]) {
			t.Errorf("%s: unexpected lease age %q and expiry %q", r[0], r[6], r[7])
		}
		if m := regexp.MustCompile(`^[45]m `).FindString(r[7]); m == "" { // a 5-min TTL, registered just now
			t.Errorf("%s: unexpected expiry %q; want about 5 minutes", r[0], r[7])
		}
	}
	if note := eval[string](tb, `document.querySelector('#mgmt-note').textContent`); note != "" { // management is served
		t.Errorf("unexpected management note %q", note)
	}
	if got := eval[string](tb, `document.querySelector('#route-rules').textContent`); got != "No route rules." {
		t.Errorf("unexpected route rules %q", got)
	}

	// A register over HTTP shows up, pushed, without a reload.
	eval[bool](tb, `window.notReloaded = true`)
	registry(t, n.URL, "register", inst("order", "order-9", "10.0.0.9", "up"))
	start := time.Now()
	if !tb.waitFor(hasRow("order-9"), pushDeadline) {
		t.Fatalf("order-9 did not appear within %v of its register; rows %v", pushDeadline, eval[[][]string](tb, rowsJS))
	}
	t.Logf("register -> row: %v", time.Since(start))
	tb.screenshot("service")
	registry(t, n.URL, "unregister", inst("order", "order-2", "10.0.0.2", "up"))
	if !tb.waitFor("!"+hasRow("order-2"), pushDeadline) {
		t.Errorf("order-2 still listed %v after its unregister", pushDeadline)
	}
	if !eval[bool](tb, `window.notReloaded === true`) {
		t.Errorf("the page reloaded")
	}
}

// TestBrowserServicePageReconnects: when the change stream drops, the page
// says so, reconnects by itself and catches up with what it missed.
func TestBrowserServicePageReconnects(t *testing.T) {
	n := startNode(t)
	seed(t, n.URL)
	front := newFakeManagement(t, n.URL, "s3cret")
	tb := newTab(t)
	tb.do(chromedp.Navigate(front.URL + "/console/#/service/order"))
	tb.mustWaitFor(`document.querySelector('#live').dataset.synced === 'true'`, 10*time.Second)

	if front.dropWebSockets() == 0 {
		t.Fatal("no WebSocket to drop")
	}
	registry(t, n.URL, "register", inst("order", "order-7", "10.0.0.7", "up")) // while the page is not listening
	tb.mustWaitFor(`document.querySelector('#live').dataset.state === 'retry'`, 5*time.Second)
	if got := eval[string](tb, `document.querySelector('#live').textContent`); !strings.HasPrefix(got, "reconnecting in") {
		t.Errorf("unexpected live badge %q", got)
	}
	tb.mustWaitFor(`document.querySelector('#live').dataset.state === 'open'`, 5*time.Second)
	tb.mustWaitFor(hasRow("order-7"), 5*time.Second)
}

func TestBrowserClusterPage(t *testing.T) {
	n := startNode(t)
	seed(t, n.URL)
	tb := newTab(t)
	tb.do(chromedp.Navigate(n.URL + "/console/#/cluster"))
	tb.mustWaitFor(`document.body.dataset.ready === 'cluster'`, 10*time.Second)
	rows := eval[[][]string](tb, rowsJS)
	version := strconv.FormatInt(n.Registry.Version(), 10)
	want := [][]string{{n.URL + " (this node)", "default / zone-a", "up", "registry, discovery", version, "—"}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("unexpected cluster rows (-want +got):\n%s", diff)
	}
	if got := eval[string](tb, `document.querySelector('#this-node').innerText`); !strings.Contains(got, "Instances\n6") {
		t.Errorf("unexpected node stats %q; want 6 instances", got)
	}
	tb.screenshot("cluster")
}

// TestBrowserClusterPageWithPeer: a node with a peer lists it, and the
// replication to it.
func TestBrowserClusterPageWithPeer(t *testing.T) {
	peer := startNode(t)
	n := servertest.Start(t, core.Config{Region: "default", Zone: "zone-a", LeaseTTL: 5 * time.Minute},
		server.Config{Cluster: cluster.Config{Peers: []string{peer.URL}}})
	waitUp(t, n.URL) // after copying the peer's (empty) registry
	seed(t, n.URL)   // replicated to the peer
	deadline := time.Now().Add(5 * time.Second)
	for len(serviceJSON(t, peer.URL, "order")) != 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	tb := newTab(t)
	tb.do(chromedp.Navigate(n.URL + "/console/#/cluster"))
	tb.mustWaitFor(`document.body.dataset.ready === 'cluster' && `+hasRow("sent 1 batches, 6 instances"), 10*time.Second)
	rows := eval[[][]string](tb, rowsJS)
	if len(rows) != 2 || rows[0][0] != n.URL+" (this node)" || rows[1][0] != peer.URL || rows[1][2] != "up" {
		t.Fatalf("unexpected cluster rows %v; want this node, then the peer up", rows)
	}
	if !strings.HasPrefix(rows[1][5], "queue 0lag ") || !strings.HasSuffix(rows[1][5], "sent 1 batches, 6 instances") {
		t.Errorf("unexpected replication to the peer %q", rows[1][5])
	}
	if got := eval[string](tb, `document.querySelector('#node-count').textContent`); got != "2 nodes configured, 2 up" {
		t.Errorf("unexpected node count %q", got)
	}
	tb.screenshot("cluster-two-nodes")
}

// With nothing pulled out, the operations page says so (every node serves
// management now; the "not available" branch is for older nodes and is
// covered against the fake in fakemanagement_test.go's absence of routes).
func TestBrowserOperationsPageEmpty(t *testing.T) {
	n := startNode(t)
	tb := newTab(t)
	tb.do(chromedp.Navigate(n.URL + "/console/#/operations"))
	tb.mustWaitFor(`document.body.dataset.ready === 'operations'`, 10*time.Second)
	tb.mustWaitFor(`document.querySelector('#ops-log').textContent !== ''`, 5*time.Second)
	for _, id := range []string{"ops-instances", "ops-servers", "ops-zones", "ops-groups"} {
		if got := eval[string](tb, `document.querySelector('#`+id+`').textContent`); got != "Nothing pulled out." {
			t.Errorf("#%s: unexpected %q; want Nothing pulled out.", id, got)
		}
	}
	if got := eval[string](tb, `document.querySelector('#ops-log').textContent`); !strings.HasPrefix(got, "0 entries") {
		t.Errorf("#ops-log: unexpected %q; want 0 entries", got)
	}
	tb.screenshot("operations-empty")
}

// TestBrowserPullOut pulls an instance out and in through the UI against
// the fake management API (the real one is not served yet): the token
// prompt comes first, the call carries the token as a Bearer header, and
// the page shows the pull-out.
func TestBrowserPullOut(t *testing.T) {
	n := startNode(t)
	seed(t, n.URL)
	mgmt := newFakeManagement(t, n.URL, "s3cret")
	tb := newTab(t)
	tb.do(chromedp.Navigate(mgmt.URL + "/console/#/service/order"))
	tb.mustWaitFor(`document.querySelector('#live').dataset.synced === 'true' && !!document.querySelector('button[aria-label="Pull out order-2"]')`, 10*time.Second)
	if mode := eval[string](tb, `document.querySelector('#auth').dataset.mode`); mode != "readonly" {
		t.Errorf("unexpected mode %q without a token; want readonly", mode)
	}

	tb.do(chromedp.Click(chromedp.CSS(`button[aria-label="Pull out order-2"]`)),
		chromedp.WaitVisible(chromedp.CSS("#token-dialog")),
		chromedp.SendKeys(chromedp.CSS("#token-operator"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#token-input"), "s3cret"),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#action-dialog")),
		chromedp.SendKeys(chromedp.CSS("#action-reason"), "deploy 42"),
		chromedp.Click(chromedp.CSS("#action-confirm")))
	tb.mustWaitFor(`!!document.querySelector('button[aria-label="Pull in order-2"]')`, 5*time.Second)

	calls := mgmt.mutations()
	if len(calls) != 1 {
		t.Fatalf("unexpected mutations %+v; want one", calls)
	}
	wantBody := map[string]any{
		"instanceKey": map[string]any{"regionId": "default", "serviceId": "order", "instanceId": "order-2"},
		"operation":   "pullout", "operationComplete": false, "operatorId": "alice",
		"reason": "deploy 42", "extensions": `{"reason":"deploy 42"}`,
	}
	if c := calls[0]; c.Path != "operate-instance.json" || c.Auth != "Bearer s3cret" || c.Status != 200 || !cmp.Equal(c.Body, wantBody) {
		t.Errorf("unexpected call %+v; want operate-instance.json with Bearer s3cret and %v", c, wantBody)
	}
	row := eval[[][]string](tb, rowsJS)[1]
	if row[0] != "order-2" || row[8] != "pulled out (pullout)" {
		t.Errorf("unexpected row after the pull-out %v", row)
	}
	if got := eval[[]string](tb, `[sessionStorage.getItem('artemis.adminToken'), document.cookie, document.querySelector('#auth').dataset.mode]`); !cmp.Equal(got, []string{"s3cret", "", "admin"}) {
		t.Errorf("unexpected token storage [session, cookie, mode] %q", got)
	}
	tb.screenshot("service-pulled-out")

	// Keyboard focus survives redraws: a pushed register, the reload it
	// triggers and the lease times ticking.
	tb.do(chromedp.Focus(chromedp.CSS(`button[aria-label="Pull out order-3"]`)))
	registry(t, n.URL, "register", inst("order", "order-0", "10.0.0.10", "up"))
	tb.mustWaitFor(hasRow("order-0"), 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // past the reconciling reload and a tick
	if got := eval[string](tb, `document.activeElement.getAttribute('aria-label')`); got != "Pull out order-3" {
		t.Errorf("unexpected focus after redraws: %q; want the Pull out button of order-3", got)
	}

	// The operations page lists it and its log row; pull it in from there.
	tb.do(chromedp.Navigate(mgmt.URL + "/console/#/operations"))
	tb.mustWaitFor(`document.body.dataset.ready === 'operations' && document.querySelector('#ops-log table') !== null`, 10*time.Second)
	if got := eval[string](tb, `document.querySelector('#ops-instances').innerText`); !strings.Contains(got, "order-2") {
		t.Errorf("unexpected pulled-out instances %q", got)
	}
	if got := eval[string](tb, `document.querySelector('#ops-log').innerText`); !strings.Contains(got, "order / order-2") || !strings.Contains(got, "alice") || !strings.Contains(got, "deploy 42") {
		t.Errorf("unexpected operation log %q", got)
	}
	tb.screenshot("operations")
	tb.do(chromedp.Click(chromedp.CSS(`#ops-instances button[aria-label="Pull in order-2"]`)),
		chromedp.WaitVisible(chromedp.CSS("#action-dialog")),
		chromedp.SendKeys(chromedp.CSS("#action-reason"), "deployed"),
		chromedp.Click(chromedp.CSS("#action-confirm")))
	tb.mustWaitFor(`document.querySelector('#ops-instances').textContent === 'Nothing pulled out.'`, 5*time.Second)
	if calls := mgmt.mutations(); len(calls) != 2 || calls[1].Body["operationComplete"] != true || calls[1].Auth != "Bearer s3cret" {
		t.Errorf("unexpected mutations %+v; want a pull-in with the token", calls)
	}
}

// TestBrowserTokenPrompt: a node that refuses the token (403
// no-permission) gets the token prompt again, and the action goes through
// with the right one.
func TestBrowserTokenPrompt(t *testing.T) {
	n := startNode(t)
	seed(t, n.URL)
	mgmt := newFakeManagement(t, n.URL, "s3cret")
	tb := newTab(t)
	tb.do(chromedp.Navigate(mgmt.URL + "/console/#/service/order"))
	tb.mustWaitFor(`document.querySelector('#live').dataset.synced === 'true' && !!document.querySelector('button[aria-label="Pull out order-1"]')`, 10*time.Second)

	tb.do(chromedp.Click(chromedp.CSS("#auth-button")))
	tb.mustWaitFor(`document.querySelector('#token-dialog').open`, 10*time.Second)
	tb.do(chromedp.SendKeys(chromedp.CSS("#token-operator"), "bob"),
		chromedp.SendKeys(chromedp.CSS("#token-input"), "wrong"),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)))
	tb.mustWaitFor(`!document.querySelector('#token-dialog').open && document.querySelector('#auth').dataset.mode === 'admin'`, 10*time.Second)
	tb.do(chromedp.Click(chromedp.CSS(`button[aria-label="Pull out order-1"]`)))
	tb.mustWaitFor(`document.querySelector('#action-dialog').open`, 10*time.Second)
	tb.do(chromedp.SendKeys(chromedp.CSS("#action-reason"), "flapping"),
		chromedp.Click(chromedp.CSS("#action-confirm")))
	tb.mustWaitFor(`document.querySelector('#token-dialog').open`, 10*time.Second)
	if why := eval[string](tb, `document.querySelector('#token-why').textContent`); !strings.Contains(why, "refused the admin token") {
		t.Errorf("unexpected prompt %q; want it to say the node refused the token", why)
	}
	tb.screenshot("token-prompt")
	tb.do(chromedp.SendKeys(chromedp.CSS("#token-input"), "s3cret"),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)))
	tb.mustWaitFor(`!!document.querySelector('button[aria-label="Pull in order-1"]')`, 5*time.Second)
	calls := mgmt.mutations()
	if len(calls) != 2 || calls[0].Auth != "Bearer wrong" || calls[0].Status != 403 || calls[1].Auth != "Bearer s3cret" || calls[1].Status != 200 {
		t.Errorf("unexpected mutations %+v; want one refused with the wrong token, then one accepted", calls)
	}
}

// TestBrowserPullOutRemovesFromDiscovery runs against the node's own
// management API once it serves one: a pull-out through the UI takes the
// instance out of service.json.
func TestBrowserPullOutRemovesFromDiscovery(t *testing.T) {
	n := startNode(t)
	resp, err := http.Post(n.URL+"/api/management/operate-instance.json", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 404 {
		t.Skip("this node serves no management API yet (issue 12); TestBrowserPullOut covers the UI against a fake")
	}
	seed(t, n.URL)
	tb := newTab(t)
	tb.do(chromedp.Navigate(n.URL + "/console/#/service/order"))
	tb.mustWaitFor(`document.querySelector('#live').dataset.synced === 'true' && !!document.querySelector('button[aria-label="Pull out order-2"]')`, 10*time.Second)
	tb.do(chromedp.Click(chromedp.CSS(`button[aria-label="Pull out order-2"]`)),
		chromedp.WaitVisible(chromedp.CSS("#token-dialog")),
		chromedp.SendKeys(chromedp.CSS("#token-operator"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#token-input"), "loopback"), // a node without --admin-token lets loopback clients act
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#action-dialog")),
		chromedp.SendKeys(chromedp.CSS("#action-reason"), "test"),
		chromedp.Click(chromedp.CSS("#action-confirm")))
	deadline := time.Now().Add(5 * time.Second)
	for {
		ids := serviceJSON(t, n.URL, "order")
		if !cmp.Equal(ids, []string{"order-1", "order-3"}) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if !cmp.Equal(ids, []string{"order-1", "order-3"}) {
			t.Fatalf("unexpected service.json instances %v after the pull-out; want order-1, order-3", ids)
		}
		break
	}
	tb.mustWaitFor(`!!document.querySelector('button[aria-label="Pull in order-2"]')`, 5*time.Second)
}

// TestBrowserTokenPromptRealNode: against a node started with an admin
// token, the node's own 403 brings the token prompt back, and the right
// token pulls the instance out of service.json.
func TestBrowserTokenPromptRealNode(t *testing.T) {
	n := servertest.Start(t, core.Config{Region: "default", Zone: "zone-a", LeaseTTL: 5 * time.Minute}, server.Config{AdminToken: "s3cret"})
	seed(t, n.URL)
	tb := newTab(t)
	tb.do(chromedp.Navigate(n.URL + "/console/#/service/order"))
	tb.mustWaitFor(`document.querySelector('#live').dataset.synced === 'true' && !!document.querySelector('button[aria-label="Pull out order-2"]')`, 10*time.Second)
	tb.do(chromedp.Click(chromedp.CSS(`button[aria-label="Pull out order-2"]`)),
		chromedp.WaitVisible(chromedp.CSS("#token-dialog")),
		chromedp.SendKeys(chromedp.CSS("#token-operator"), "bob"),
		chromedp.SendKeys(chromedp.CSS("#token-input"), "wrong"),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#action-dialog")),
		chromedp.SendKeys(chromedp.CSS("#action-reason"), "flapping"),
		chromedp.Click(chromedp.CSS("#action-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#token-dialog")))
	if why := eval[string](tb, `document.querySelector('#token-why').textContent`); !strings.Contains(why, "refused the admin token") {
		t.Errorf("unexpected prompt %q; want it to say the node refused the token", why)
	}
	if ids := serviceJSON(t, n.URL, "order"); !cmp.Equal(ids, []string{"order-1", "order-2", "order-3"}) {
		t.Fatalf("a refused pull-out changed discovery: %v", ids)
	}
	tb.screenshot("token-prompt-real-node")
	tb.do(chromedp.SendKeys(chromedp.CSS("#token-input"), "s3cret"),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)))
	tb.mustWaitFor(`!!document.querySelector('button[aria-label="Pull in order-2"]')`, 5*time.Second)
	if ids := serviceJSON(t, n.URL, "order"); !cmp.Equal(ids, []string{"order-1", "order-3"}) {
		t.Fatalf("unexpected service.json instances %v after the pull-out; want order-1, order-3", ids)
	}
}

// TestBrowserRouteRulesAndHidden: what discovery filters attach (route
// rules, the canary group's instances, logical instances) shows on the
// service page, and an instance discovery hides shows as hidden, counted
// as pulled out on the services page. A core filter stands in for
// management's.
func TestBrowserRouteRulesAndHidden(t *testing.T) {
	n := startNode(t)
	seed(t, n.URL)
	logic := core.NewRecord(&core.Instance{RegionID: "default", ServiceID: "order", InstanceID: "logic-1",
		IP: "10.9.9.9", Port: 80, URL: "http://10.9.9.9", Status: "up"})
	n.Registry.SetFilters(core.FilterFunc(func(v *core.ServiceView) {
		if v.ServiceID != "order" {
			return
		}
		kept := v.Records[:0]
		var canary []*core.Record
		for _, r := range v.Records {
			switch r.InstanceID() {
			case "order-2":
				continue // pulled out
			case "order-1":
				canary = append(canary, r)
			}
			kept = append(kept, r)
		}
		v.Records = kept
		v.LogicInstances = []*core.Record{logic}
		v.RouteRules = []core.RouteRule{
			{RouteID: "canary-route-rule", Strategy: "weighted-round-robin", Groups: []core.ServiceGroup{
				{GroupKey: "order/default/canary/app-1", Weight: 5, InstanceIDs: []string{"10.0.0.1"}, Instances: canary}}},
			{RouteID: "by-zone", Strategy: "close-by-visit", Groups: []core.ServiceGroup{
				{GroupKey: "order/default/zone-a/blue", Weight: 100, InstanceIDs: []string{"order-1"}, Metadata: map[string]string{"tier": "gold"}}}},
		}
	}))
	tb := newTab(t)
	tb.do(chromedp.Navigate(n.URL + "/console/#/services"))
	tb.mustWaitFor(`document.body.dataset.ready === 'services'`, 10*time.Second)
	if rows := eval[[][]string](tb, rowsJS); len(rows) != 3 || !cmp.Equal(rows[1], []string{"order", "1", "1", "1", "0", "3"}) {
		t.Errorf("unexpected services %v; want order with 1 up, 1 pulled out, 1 down", rows)
	}

	tb.do(chromedp.Navigate(n.URL + "/console/#/service/order"))
	tb.mustWaitFor(`document.body.dataset.ready === 'service'`, 10*time.Second)
	if row := eval[[][]string](tb, rowsJS)[1]; row[0] != "order-2" || row[8] != "hidden from discovery" {
		t.Errorf("unexpected row of the hidden instance %v", row)
	}
	rules := eval[[]string](tb, `[...document.querySelectorAll('#route-rules section')].map(s => s.innerText)`)
	if len(rules) != 2 {
		t.Fatalf("unexpected route rules %q; want two", rules)
	}
	for i, want := range [][]string{
		{"canary", "canary-route-rule", "weighted-round-robin", "order/default/canary/app-1", "10.0.0.1", "order-1 10.0.0.1"},
		{"by-zone", "close-by-visit", "order/default/zone-a/blue", "100", "tier=gold"},
	} {
		for _, w := range want {
			if !strings.Contains(rules[i], w) {
				t.Errorf("route rule %d: unexpected %q; want it to contain %q", i, rules[i], w)
			}
		}
	}
	if got := eval[string](tb, `document.querySelector('#logic-instances').innerText`); !strings.Contains(got, "logic-1") || !strings.Contains(got, "10.9.9.9:80") {
		t.Errorf("unexpected logical instances %q", got)
	}
	tb.screenshot("service-route-rules")
}
