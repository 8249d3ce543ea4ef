package web_test

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
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

	// Deep links open a user directly; an unknown one explains itself.
	b.run("deep link on a fresh load", chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/#/users/user-00042"))
	b.waitFor("the deep-linked user's songs", `document.querySelectorAll('#recs li.song').length === 5`)
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
	if n := b.num(`document.querySelectorAll('#model svg polyline').length`); n != 2 {
		t.Errorf("model chart has %d lines, want precision and NDCG", n)
	}
}
