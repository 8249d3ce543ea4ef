package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestGuideErrorExamples: the error details docs/API.md quotes are the
// server's own text, word for word (issue 26 item 15: the guide's example
// differed from what serve says).
func TestGuideErrorExamples(t *testing.T) {
	guide, err := os.ReadFile("../../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/v1/users", `{"user_id": "a", "likes": [{"song_id": 1}, {"song_id": 1e3}]}`, http.StatusBadRequest},
		{http.MethodPost, "/v1/users", `[]`, http.StatusBadRequest},
		{http.MethodGet, "/v1/users/batchy/recommendations?n=500", "", http.StatusBadRequest},
		{http.MethodPost, "/v1/users", `{"user_id": "a", "colour": "red"}`, http.StatusBadRequest},
		{http.MethodPost, "/v1/users", `{"user_id": "a", "user_id": "b"}`, http.StatusBadRequest},
		{http.MethodGet, "/v1/users/x", "", http.StatusNotFound},
	} {
		var r response
		if c.body == "" {
			r = in.do(t, c.method, c.path, nil)
		} else {
			r = in.do(t, c.method, c.path, c.body)
		}
		wantStatus(t, r, c.status)
		var e struct{ Detail string }
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(guide), "`"+e.Detail+"`") {
			t.Errorf("%s %s %s: the server says `%s`; docs/API.md's Errors section must quote it as such", c.method, c.path, c.body, e.Detail)
		}
	}
}
