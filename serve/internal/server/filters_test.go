package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestFilterParamsRejected: a malformed filter value or an unknown query
// parameter is a 400 naming it, on both filtered routes.
func TestFilterParamsRejected(t *testing.T) {
	w := newWorld(t)
	a := w.start(t, fastConfig(), nil)
	a.waitModel(t, 1)
	for _, base := range []string{"/v1/users/batchy/recommendations?", "/v1/songs/1/similar?"} {
		for _, tc := range []struct{ query, names string }{
			{"exclude_artist=X", "exclude_artist"},
			{"foo=1", "foo"},
			{"exclude_songs=abc", "exclude_songs"},
			{"exclude_songs=0", "exclude_songs"},
			{"tags=Bad%20Tag!", "tags"},
			{"exclude_tags=%21", "exclude_tags"},
			{"max_per_artist=0", "max_per_artist"},
			{"max_per_artist=x", "max_per_artist"},
			{"released_after=2026-13-01", "released_after"},
		} {
			r := a.get(t, base+tc.query)
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), tc.names) {
				t.Errorf("%s%s: %d %s, want 400 naming %s", base, tc.query, r.status, r.body, tc.names)
			}
		}
	}
	// Well-formed filters answer.
	wantStatus(t, a.get(t, "/v1/users/batchy/recommendations?n=3&exclude_artists=Artist%201&exclude_songs=1,2&max_per_artist=1"), http.StatusOK)
}
