package web_test

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromiumPath is the browser the tests drive: $SETLIST_CHROMIUM, else
// Debian's /usr/bin/chromium, else chromium on PATH.
func chromiumPath() string {
	if p := os.Getenv("SETLIST_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return "/usr/bin/chromium"
}

// browser is one headless Chromium tab and what the test saw in it.
type browser struct {
	t    *testing.T
	ctx  context.Context
	navs atomic.Int32 // top-frame navigations (a full page load each)

	mu         sync.Mutex
	exceptions []string // uncaught JavaScript errors

	fail atomic.Pointer[failRule] // requests to answer with an injected error
}

// failRule makes the browser answer requests matching a fetch URL pattern
// with status and an {"error","detail"} body instead of reaching the server.
type failRule struct {
	status int
	detail string
}

// newBrowser starts a fresh headless Chromium (own profile, no network
// chatter) and fails the test, never skips, when Chromium is missing.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Chromium is required for the web tests and was not found at %s: %v\n"+
			"install it (apt-get install -y chromium; bash .ci/run does) or set SETLIST_CHROMIUM", path, err)
	}
	// Not t.TempDir: Chromium's helper processes can still be writing the
	// profile for a moment after the browser is cancelled, and TempDir's
	// cleanup fails the test when removal races with them.
	profile, err := os.MkdirTemp("", "setlist-chromium-")
	if err != nil {
		t.Fatalf("create a Chromium profile folder: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
		removeProfile(t, profile)
	})
	b := &browser{t: t, ctx: ctx}
	chromedp.ListenTarget(ctx, b.onEvent)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start Chromium at %s: %v", path, err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.exceptions {
			t.Errorf("uncaught JavaScript error on the page: %s", e)
		}
	})
	return b
}

func (b *browser) onEvent(ev any) {
	switch e := ev.(type) {
	case *page.EventFrameNavigated:
		if e.Frame.ParentID == "" {
			b.navs.Add(1)
		}
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		b.mu.Lock()
		b.exceptions = append(b.exceptions, msg)
		b.mu.Unlock()
	case *fetch.EventRequestPaused:
		rule := b.fail.Load()
		go func() {
			ctx := cdp.WithExecutor(b.ctx, chromedp.FromContext(b.ctx).Target)
			if rule == nil {
				_ = fetch.ContinueRequest(e.RequestID).Do(ctx)
				return
			}
			body := `{"error":"internal","detail":"` + rule.detail + `"}`
			_ = fetch.FulfillRequest(e.RequestID, int64(rule.status)).
				WithResponseHeaders([]*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}}).
				WithBody(base64.StdEncoding.EncodeToString([]byte(body))).Do(ctx)
		}()
	}
}

// failRequests answers requests whose URL matches one of patterns (fetch
// domain globs, e.g. "*/recommendations*") with status and detail, until
// the returned function is called.
func (b *browser) failRequests(status int, detail string, patterns ...string) (stop func()) {
	b.t.Helper()
	b.fail.Store(&failRule{status: status, detail: detail})
	var ps []*fetch.RequestPattern
	for _, p := range patterns {
		ps = append(ps, &fetch.RequestPattern{URLPattern: p, RequestStage: fetch.RequestStageRequest})
	}
	b.run("enable request interception", fetch.Enable().WithPatterns(ps))
	return func() {
		b.t.Helper()
		b.run("disable request interception", fetch.Disable())
		b.fail.Store(nil)
	}
}

// run runs actions, failing the test with what it was doing.
func (b *browser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage text:\n%s", what, err, b.pageText())
	}
}

// pageText is the visible text of the page, for failure messages.
func (b *browser) pageText() string {
	var s string
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText.slice(0, 3000) : ""`, &s)); err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return s
}

// waitFor polls a JavaScript expression until it is truthy.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	b.run("wait for "+what, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
}

// eval evaluates expr into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	b.run("evaluate "+expr, chromedp.Evaluate(expr, out))
}

// evalAwait evaluates expr, a promise (an async arrow called at once), and
// stores what it resolves to in out.
func (b *browser) evalAwait(expr string, out any) {
	b.t.Helper()
	b.run("evaluate "+expr, chromedp.Evaluate(expr, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
}

// pasteInto focuses the element and inserts text in one input event, as a
// paste does (no key presses).
func (b *browser) pasteInto(sel, text string) {
	b.t.Helper()
	b.run("paste into "+sel, chromedp.Focus(sel, chromedp.ByQuery), input.InsertText(text))
}

func (b *browser) str(expr string) string {
	b.t.Helper()
	var s string
	b.eval(expr, &s)
	return s
}

func (b *browser) num(expr string) int {
	b.t.Helper()
	var n int
	b.eval(expr, &n)
	return n
}

// typeInto focuses the element and types text as key presses.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.run("type into "+sel, chromedp.Focus(sel, chromedp.ByQuery), chromedp.SendKeys(sel, text, chromedp.ByQuery))
}

// clearInput empties a text field as a person selecting all and deleting would.
func (b *browser) clearInput(sel string) {
	b.t.Helper()
	b.eval(`(() => { const e = document.querySelector(`+jsString(sel)+`); e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); return true })()`, nil)
}

// keys presses keys (kb.ArrowDown, kb.Enter, …) on the focused element.
func (b *browser) keys(keys ...string) {
	b.t.Helper()
	for _, k := range keys {
		b.run("press key", chromedp.KeyEvent(k))
	}
}

// pickOption waits for the combobox's options and picks the nth (0-based)
// with the keyboard: ArrowDown n+1 times, then Enter.
func (b *browser) pickOption(input, listbox string, n int) {
	b.t.Helper()
	b.waitFor("options in "+listbox, `document.querySelectorAll('`+listbox+` [role=option]').length > `+strconv.Itoa(n)+
		` && document.querySelector('`+input+`').getAttribute('aria-expanded') === 'true'`)
	for i := 0; i <= n; i++ {
		b.keys(kb.ArrowDown)
	}
	active := b.str(`document.querySelector('` + input + `').getAttribute('aria-activedescendant') || ''`)
	if active == "" || b.str(`document.getElementById('`+active+`').getAttribute('aria-selected')`) != "true" {
		b.t.Fatalf("after ArrowDown the combobox %s has aria-activedescendant %q, want the selected option", input, active)
	}
	b.keys(kb.Enter)
}

// assertNoNavigation fails if the page loaded anew since `since`, or lost
// window.__marker (set before an action to prove the document survived).
func (b *browser) assertNoNavigation(since int32, action string) {
	b.t.Helper()
	if n := b.navs.Load(); n != since {
		b.t.Fatalf("%s navigated the page (%d full page loads), want updates in place", action, n-since)
	}
	if b.num(`window.__marker || 0`) != 1 {
		b.t.Fatalf("%s replaced the document: window.__marker is gone", action)
	}
}

// screenshot saves the page (or one element, or with sel "viewport" what
// is on screen) to dir/name when dir is set. Either way it fails the test
// if that view shows "null", "undefined" or "NaN" as text.
func (b *browser) screenshot(dir, name, sel string) {
	b.t.Helper()
	// A screenshot is documentation: it must not show a missing value as
	// text (the README once showed "model version 2 null").
	target := `document.body`
	if sel != "" && sel != "viewport" {
		target = `document.querySelector(` + jsString(sel) + `)`
	}
	if bad := b.str(`(() => { const m = (` + target + `.innerText || '').match(/\b(null|undefined|NaN)\b/); return m ? m[0] : '' })()`); bad != "" {
		b.t.Errorf("screenshot %s shows %q as text:\n%s", name, bad, b.pageText())
	}
	if dir == "" {
		return
	}
	var png []byte
	switch sel {
	case "":
		b.run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
	case "viewport":
		b.run("screenshot "+name, chromedp.CaptureScreenshot(&png))
	default:
		b.run("screenshot "+name, chromedp.Screenshot(sel, &png, chromedp.ByQuery))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("saved %s", path)
}

// removeProfile deletes a browser profile folder, retrying while exiting
// helper processes finish writing to it; a leftover folder is logged, not a
// failure of the page under test.
func removeProfile(t *testing.T, dir string) {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("could not remove the Chromium profile %s: %v", dir, err)
}
