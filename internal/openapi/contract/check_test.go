package contract_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/openapi/contract"
)

// fakeServe answers like serve would, or not, per path: the tap must tell
// the two apart.
func fakeServe(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	case r.URL.Path == "/v1/songs" && r.URL.Query().Get("query") == "wrong-shape":
		_, _ = io.WriteString(w, `{"songs":[{"song_id":"seven","artist":"A","track":"T"}]}`)
	case r.URL.Path == "/v1/songs" && r.URL.Query().Get("query") == "extra":
		_, _ = io.WriteString(w, `{"songs":[],"colour":"red"}`)
	case r.URL.Path == "/v1/songs" && r.URL.Query().Get("query") == "teapot":
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, `{"error":"i'm a teapot","detail":"no"}`)
	case r.URL.Path == "/v1/songs":
		_, _ = io.WriteString(w, `{"songs":[]}`)
	case r.URL.Path == "/v1/playlists":
		_, _ = io.WriteString(w, `{"playlists":[]}`)
	case r.URL.Path == "/v1/nothing":
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"not found","detail":"no such endpoint"}`)
	case r.URL.Path == "/v1/model" && r.Method == http.MethodPut:
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = io.WriteString(w, `{"error":"method not allowed","detail":"PUT"}`)
	case r.URL.Path == "/v1/users" && r.Method == http.MethodPost:
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"user_id":"zoe","display_name":"","created_at":"2026-12-04T10:00:00Z"}`)
	default:
		w.WriteHeader(http.StatusInternalServerError)
	}
}

// TestTransport: exchanges that agree with the document pass; a response
// of the wrong shape, an undocumented field or status, a route the
// document lacks and a request the document refuses but the server took
// each fail with a message naming what to change in the document.
func TestTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(fakeServe))
	defer srv.Close()
	tap := contract.NewTransport(nil)
	client := &http.Client{Transport: tap}
	for _, c := range []struct {
		name, method, path, body string
		want                     string // "" passes; else a substring of the error
	}{
		{"agrees", "GET", "/v1/songs?query=a", "", ""},
		{"probe", "GET", "/healthz", "", ""},
		{"the page is not the API", "GET", "/index.html", "", ""},
		{"unknown endpoint answered 404", "GET", "/v1/nothing", "", ""},
		{"405 with the document's methods", "PUT", "/v1/model", "", ""},
		{"created", "POST", "/v1/users", `{"user_id":"zoe"}`, ""},
		{"wrong type", "GET", "/v1/songs?query=wrong-shape", "", `paths["/v1/songs"].get.responses["200"]`},
		{"undocumented field", "GET", "/v1/songs?query=extra", "", "colour"},
		{"undocumented status", "GET", "/v1/songs?query=teapot", "", `responses has no "418"`},
		{"undocumented route", "GET", "/v1/playlists", "", `has no path for it`},
		{"refused by the document, accepted by the server", "POST", "/v1/users", `{"display_name":"no id"}`, "refuses this request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			req, _ := http.NewRequest(c.method, srv.URL+c.path, body)
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			res, err := client.Do(req)
			if err == nil {
				res.Body.Close()
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want it to pass, got %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("want a contract error containing %q, got none", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %v does not contain %q", err, c.want)
			}
		})
	}
	if got := len(tap.Violations()); got != 5 {
		t.Fatalf("%d violations kept, want 5", got)
	}
}
