package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// fastPoll makes the page ask for a new model version every 200 ms instead
// of every 10 s (model.js reads SETLIST_POLL_MS before it starts); the
// script runs in every document the tab loads from now on.
func (b *browser) fastPoll() {
	b.t.Helper()
	b.run("poll fast", chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(`globalThis.SETLIST_POLL_MS = 200`).Do(ctx)
		return err
	}))
}

// watchCSP records in window.__csp every Content-Security-Policy violation
// of each document the tab loads from now on, from before its scripts run.
func (b *browser) watchCSP() {
	b.t.Helper()
	b.run("watch the CSP", chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(`window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || e.sample || '')))`).Do(ctx)
		return err
	}))
}

// TestPageSwitchesVersion: a version published while the page is open
// shows without a click (issue 26 item 8): the model panel and the
// listener's songs switch to it in place, and until then the page's polls
// are answered 304.
func TestPageSwitchesVersion(t *testing.T) {
	f, base := newFakeAPI(t, 50)
	b := newBrowser(t)
	b.fastPoll()
	b.run("open a listener", chromedp.Navigate(base+"/#/users/user-00001"))
	b.waitFor("v6 in the panel", `document.querySelector('#model .model-version .big')?.textContent === 'v6'`)
	b.waitFor("the songs of v6", `document.querySelector('#user-meta')?.textContent.includes('model version 6')`)
	b.eval(`window.__marker = 1`, nil)
	navs := b.navs.Load()
	// Polls while nothing changed are 304s, which leave the panel as drawn.
	b.eval(`document.querySelector('#model .chart-table').open = true`, nil)
	b.waitFor("a few polls", `performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/v1/model')).length >= 4`)
	if b.str(`document.querySelector('#model .chart-table').open ? 'open' : 'closed'`) != "open" {
		t.Error("a poll that found nothing new redrew the model panel (an opened disclosure closed)")
	}

	f.publish(7)
	b.waitFor("v7 in the panel without a click", `document.querySelector('#model .model-version .big')?.textContent === 'v7'`)
	b.waitFor("the listener's songs of v7", `document.querySelector('#user-meta')?.textContent.includes('model version 7')`)
	b.assertNoNavigation(navs, "switching to a new version")
}

// TestSignInAlone: a server that needs a token shows the sign-in form and
// nothing else (issue 26 item 10): no "Loading…", no "HTTP 401" alert, no
// panels that jump away; after signing in, the panels and no form.
func TestSignInAlone(t *testing.T) {
	f, base := newFakeAPI(t, 50)
	f.requireToken("a-read-token-0123456789")
	b := newBrowser(t)
	b.run("open the page", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/#/users/user-00001"),
		chromedp.WaitVisible("#auth-token", chromedp.ByQuery))
	// Every panel's request has failed by now: the form is not the last to go.
	b.waitFor("the user view's request answered", `performance.getEntriesByType('resource').some((e) => e.name.includes('/recommendations'))`)
	visible := b.str(`document.body.innerText`)
	for _, bad := range []string{"Loading", "HTTP 401", "Could not", "Find a listener", "Model"} {
		if strings.Contains(visible, bad) {
			t.Errorf("before signing in the page shows %q next to the sign-in form:\n%s", bad, visible)
		}
	}
	if n := b.num(`[...document.querySelectorAll('main > *')].filter((e) => e.id !== 'auth' && e.getClientRects().length > 0).length`); n != 0 {
		t.Errorf("%d parts of the page are laid out next to the sign-in form, want none", n)
	}
	navs := b.navs.Load()
	b.typeInto("#auth-token", "a-read-token-0123456789")
	b.keys(kb.Enter)
	b.waitNavigated(navs)
	b.waitFor("the panels after signing in", `document.querySelector('#model .model-version') !== null && document.querySelectorAll('#recs li.song').length === 5`)
	if n := b.num(`document.querySelectorAll('#auth').length`); n != 0 {
		t.Error("the sign-in form is still there after a valid token")
	}
}

// brokenWords lists the words and numbers of the model panel's tables and
// parameter list that the browser broke across lines (each word's text
// range should sit on one line).
const brokenWords = `(() => {
	const bad = [];
	for (const cell of document.querySelectorAll(SCOPE)) {
		const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			for (const m of n.data.matchAll(/\S+/g)) {
				const r = document.createRange();
				r.setStart(n, m.index);
				r.setEnd(n, m.index + m[0].length);
				const lines = new Set([...r.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
				if (lines.size > 1) bad.push(m[0]);
			}
		}
	}
	return bad.join(' | ');
})()`

// TestTablesReadable: at 1280 px and on a phone no table cell of the model
// panel, the search view or Browse breaks inside a word or a number (issue
// 26 item 9: "0.1 239", "incu mb ent", "Versi on"), and the page is never
// wider than the screen (a wide table scrolls in its own box).
func TestTablesReadable(t *testing.T) {
	f, base := newFakeAPI(t, 50)
	f.exps = []map[string]any{{"id": 1, "name": "v5 vs v6", "control_version": 6, "challenger_version": 5, "share": 0.1, "alpha": 0.05, "mde": 0.02,
		"status": "stopped", "started_at": "2026-11-01T00:00:00Z", "ended_at": "2026-11-08T00:00:00Z", "serving": false}}
	b := newBrowser(t)
	cells := `'#model td, #model th, #model dt, #model dd, .view td, .view th'`
	loads := 0
	for _, size := range [][2]int64{{1280, 900}, {390, 844}} {
		for _, view := range []struct{ hash, ready string }{
			{"#/", `document.querySelector('#model .online table') !== null`},
			{"#/runs/5", `document.querySelectorAll('#runs-view table.trials tbody tr').length === 20`},
			{"#/runs", `document.querySelectorAll('#runs-view table.runs-table tbody tr').length > 0`},
			{"#/browse", `document.querySelectorAll('#browse-view table.browse-users tbody tr').length > 0`},
			{"#/browse/songs", `document.querySelectorAll('#browse-view table.browse-songs tbody tr').length > 0`},
			{"#/browse/users/user-00042", `document.querySelectorAll('#browse-view table.browse-history tbody tr').length > 0`},
			{"#/browse/experiments", `document.querySelectorAll('#browse-view table.browse-experiments tbody tr').length > 0`},
		} {
			// A fresh document each time (the query differs), in one
			// navigation: no about:blank in between to race with.
			loads++
			b.run("open "+view.hash, chromedp.EmulateViewport(size[0], size[1]), chromedp.Navigate(fmt.Sprintf("%s/?load=%d%s", base, loads, view.hash)))
			b.waitFor(view.hash, view.ready)
			b.eval(`document.querySelectorAll('#model details').forEach((d) => { d.open = true; })`, nil)
			if bad := b.str(strings.Replace(brokenWords, "SCOPE", cells, 1)); bad != "" {
				t.Errorf("at %d px %s breaks these inside: %s", size[0], view.hash, bad)
			}
			if w := b.num(`document.documentElement.scrollWidth`); w > int(size[0]) {
				t.Errorf("at %d px %s is %d px wide", size[0], view.hash, w)
			}
		}
	}
}

// waitNavigated waits until the tab loaded a new document since navs
// (signing in reloads the page) and its body is there.
func (b *browser) waitNavigated(navs int32) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for b.navs.Load() == navs {
		if time.Now().After(deadline) {
			b.t.Fatal("the page did not load anew")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.run("wait for the new document", chromedp.WaitReady("body", chromedp.ByQuery))
}
