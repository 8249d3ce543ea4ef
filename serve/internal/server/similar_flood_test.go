package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/setlist/setlist"
)

// TestSimilarComputedOnce (issue 24 item 4): 64 parallel requests for one
// song's similar songs, at different n, compute its list once; later
// requests (any n up to 100) are answered from the cache, and the answers
// are the same list cut at n.
func TestSimilarComputedOnce(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	song := w.songs[3]
	for _, c := range parallelGets(t, in, 64, func(i int) string { return fmt.Sprintf("/v1/songs/%d/similar?n=%d", song, 1+i%30) })() {
		if c != http.StatusOK {
			t.Fatalf("a similar request answered %d", c)
		}
	}
	var full, five struct {
		Items []struct {
			SongID setlist.SongID `json:"song_id"`
		} `json:"items"`
	}
	in.get(t, fmt.Sprintf("/v1/songs/%d/similar?n=100", song)).json(t, &full)
	in.get(t, fmt.Sprintf("/v1/songs/%d/similar?n=5", song)).json(t, &five)
	if len(full.Items) != 39 || len(five.Items) != 5 {
		t.Fatalf("n=100 gave %d songs (want the 39 others), n=5 gave %d", len(full.Items), len(five.Items))
	}
	for i := range five.Items {
		if five.Items[i] != full.Items[i] {
			t.Fatalf("n=5 is not n=100 cut at 5: %v vs %v", five.Items, full.Items[:5])
		}
	}
	if n := in.metric(t, `setlist_serve_similar_requests_total{outcome="computed"}`); n != 1 {
		t.Errorf("66 requests for one song's similar songs computed %v lists; want 1", n)
	}
	if n := in.metric(t, `setlist_serve_similar_requests_total{outcome="cached"}`) + in.metric(t, `setlist_serve_similar_requests_total{outcome="shared"}`); n != 65 {
		t.Errorf("%v requests were answered from the cache or a shared computation; want 65", n)
	}
}
