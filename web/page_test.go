package web_test

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestPageAgainstFakeAPI drives the page against the in-memory fake API:
// the same journeys as the end-to-end test, plus what real sample data
// cannot show: 13k users, hostile names, deep links to unknown users.
func TestPageAgainstFakeAPI(t *testing.T) {
	_, base := newFakeAPI(t, 13000)
	b := newBrowser(t)
	runScenario(t, b, scenario{
		base:        base,
		userPrefix:  "user-1",
		songQueries: [2]string{"bruno", "daft"},
		newUserID:   "newbie",
		shots:       os.Getenv("SETLIST_FAKE_SHOTS"),
	})
	checkOnlineFake(t, b)

	// Hostile names are shown as text and never run.
	b.run("reset viewport", chromedp.EmulateViewport(1280, 900))
	b.clearInput("#user-q")
	b.typeInto("#user-q", "hostile")
	b.waitFor("hostile users", `document.querySelectorAll('#user-list [role=option]').length === 5`)
	labels := b.str(`[...document.querySelectorAll('#user-list .option-label')].map(e => e.textContent).join('\n')`)
	for _, name := range hostileNames {
		if !strings.Contains(labels, name) {
			t.Errorf("the option list does not show %.40q as text; options:\n%.300s", name, labels)
		}
	}
	if n := b.num(`document.querySelectorAll('#user-list img, #user-list script, #user-list b').length`); n != 0 {
		t.Errorf("server text became %d elements in the option list", n)
	}
	b.pickOption("#user-q", "#user-list", 0)
	b.waitFor("the hostile user's songs", `document.querySelectorAll('#recs li.song').length === 5`)
	if got := b.str(`document.querySelector('#user-h').textContent`); got != hostileNames[0] {
		t.Errorf("heading is %q, want the name as text", got)
	}
	if got := b.num(`window.__xss || 0`); got != 0 {
		t.Fatal("a name containing markup ran script on the page")
	}
	// A 10 KB name wraps instead of widening the page.
	b.run("open the long name", chromedp.Navigate(base+"/#/users/hostile-4"))
	b.waitFor("the long-named user's songs", `document.querySelectorAll('#recs li.song').length === 5`)
	if w := b.num(`document.documentElement.scrollWidth`); w > 1280 {
		t.Errorf("a 10 KB name widens the page to %dpx", w)
	}

	// Deep links open a user directly, headed by their name; an unknown one
	// explains itself.
	b.run("deep link on a fresh load", chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/#/users/user-00042"))
	b.waitFor("the deep-linked user's songs", `document.querySelectorAll('#recs li.song').length === 5`)
	b.waitFor("the deep-linked user's name", `document.querySelector('#user-h').textContent === 'Listener 42'`)
	if got := b.str(`document.querySelector('#user-meta').textContent`); !strings.Contains(got, "id user-00042") {
		t.Errorf("deep-linked user's meta %q does not show the id under the name", got)
	}
	// user-00042 only played their song: the because says so.
	b.waitFor("a because line", `document.querySelector('#recs .because') !== null`)
	if got := b.str(`document.querySelector('#recs .because').textContent`); !strings.HasPrefix(got, "Because you played") {
		t.Errorf("because for a played-only song reads %q, want \"Because you played …\"", got)
	}

	// A full id pasted and Enter pressed at once opens that listener.
	b.eval(`window.__marker = 1`, nil)
	loads := b.navs.Load()
	b.clearInput("#user-q")
	b.pasteInto("#user-q", "user-00777")
	b.keys(kb.Enter)
	b.waitFor("the pasted user's songs", `location.hash === '#/users/user-00777' && document.querySelectorAll('#recs li.song').length === 5`)
	if got := b.str(`document.querySelector('#user-h').textContent`); got != "Listener 777" {
		t.Errorf("after pasting an id and Enter the heading is %q, want Listener 777", got)
	}
	b.assertNoNavigation(loads, "pasting an id")

	// The runs table says which version is served, which a rollback would
	// restore, and which are retired, not "published" for all.
	if got := b.str(`[...document.querySelectorAll('#model .chart-table tbody tr')].map((r) => r.cells[0].textContent + ' ' + r.cells[1].textContent).join(', ')`); got !=
		"v1 retired, v2 retired, v3 retired, v4 retired, v5 previous, v6 current" {
		t.Errorf("runs table statuses: %s", got)
	}
	b.run("deep link to nobody", chromedp.Navigate(base+"/#/users/nobody"))
	b.waitFor("the unknown-user alert", `document.querySelector('#user-alert').textContent.includes('No listener')`)

	// Escape closes the popup without clearing what was typed.
	b.clearInput("#user-q")
	b.typeInto("#user-q", "user-0")
	b.waitFor("options", `document.querySelector('#user-q').getAttribute('aria-expanded') === 'true'`)
	b.keys("\x1b") // Escape
	if got := b.str(`document.querySelector('#user-q').getAttribute('aria-expanded') + '|' + document.querySelector('#user-q').value`); got != "false|user-0" {
		t.Errorf("after Escape the combobox is %q, want closed with the text kept", got)
	}

	// The model panel shows the version, relative time, metrics and a chart.
	if got := b.str(`document.querySelector('#model-body').textContent`); !strings.Contains(got, "v6") || !strings.Contains(got, "minutes ago") || !strings.Contains(got, "0.1100") {
		t.Errorf("model panel text %q lacks the version, trained time or metrics", got)
	}
	if n := b.num(`document.querySelectorAll('#model figure.chart:not(.tuning-chart) svg polyline').length`); n != 2 {
		t.Errorf("model chart has %d lines, want precision and NDCG", n)
	}
}
