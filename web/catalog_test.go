package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestCatalogOnThePage: song cards show their tags and "new" (released in
// the last 14 days); an admin-scope token gets Hide/Show on each song, a
// lower scope does not; the filter row asks for tags and one song per
// artist; the model panel says when the last refresh ran and what it added.
func TestCatalogOnThePage(t *testing.T) {
	f, base := newFakeAPI(t, 50)
	b := newBrowser(t)
	cards := `document.querySelectorAll('#recs li.song')`

	// A lower-scope token: tags, no Hide.
	b.run("open with a write token", chromedp.Navigate(base+"/"),
		chromedp.Evaluate(`sessionStorage.setItem('setlist.api-token', 'a-write-token-0123456789')`, nil),
		chromedp.Navigate(base+"/#/users/user-00001"))
	b.waitFor("five cards", cards+`.length === 5`)
	b.waitFor("tags drawn", `document.querySelectorAll('#recs .song-tags .tag').length > 0`)
	if n := b.num(`document.querySelectorAll('#recs .catalog-toggle').length`); n != 0 {
		t.Errorf("a write-scope token shows %d Hide/Show buttons", n)
	}

	// An admin token: Hide on each card; hiding marks the card and PATCHes.
	b.run("open with an admin token", chromedp.Evaluate(`sessionStorage.setItem('setlist.api-token', '`+fakeAdminToken+`')`, nil),
		chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/#/users/user-00001"))
	b.waitFor("Hide on every card", `document.querySelectorAll('#recs .catalog-toggle').length === 5`)
	// "new" exactly on the songs released in the last 14 days (id % 5 == 0 in the fake).
	newIDs := b.str(`[...document.querySelectorAll('#recs li.song')].filter(li => li.querySelector('.song-new')).map(li => li.dataset.songId).join(',')`)
	allIDs := b.str(`[...document.querySelectorAll('#recs li.song')].map(li => li.dataset.songId).join(',')`)
	for _, id := range strings.Split(allIDs, ",") {
		want := strings.HasSuffix(id, "0") || strings.HasSuffix(id, "5")
		if got := strings.Contains(","+newIDs+",", ","+id+","); got != want {
			t.Errorf("song %s: new mark %v, want %v (marked: %s)", id, got, want, newIDs)
		}
	}
	b.run("hide the first song", chromedp.Click(`#recs li.song:first-child .catalog-toggle`, chromedp.ByQuery))
	b.waitFor("the card marked hidden", `document.querySelector('#recs li.song:first-child').classList.contains('hidden-song') && document.querySelector('#recs li.song:first-child .catalog-toggle').textContent === 'Show'`)
	f.mu.Lock()
	patches := f.patches
	f.mu.Unlock()
	if patches != 1 {
		t.Errorf("%d songs patched, want 1 (the probe of the token's scope must change nothing)", patches)
	}

	// Filters: tags and one song per artist reach the request.
	b.typeInto("#filter-tags", "Rock")
	b.run("one per artist, apply", chromedp.Click("#filter-artist", chromedp.ByQuery), chromedp.Click(`#recs-filters button[type=submit]`, chromedp.ByQuery))
	b.waitFor("only rock songs", cards+`.length > 0 && [...`+cards+`].every(li => [...li.querySelectorAll('.tag')].some(t => t.textContent === 'rock'))`)
	artists := b.str(`[...document.querySelectorAll('#recs li.song .artist')].map(e => e.textContent).join('|')`)
	seen := map[string]bool{}
	for _, a := range strings.Split(artists, "|") {
		if seen[a] {
			t.Errorf("one song per artist, but %q twice: %s", a, artists)
		}
		seen[a] = true
	}

	// The model panel's refresh line.
	b.waitFor("the refresh line", `(document.querySelector('#model-body .model-refresh') || {}).textContent?.includes('added 3 new songs, updated 41 listeners')`)
}
