package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/openapi/contract"
	"github.com/setlist/setlist/serve/internal/api"
)

// TestDocumentScopes: each operation's security scope in the OpenAPI
// document is exactly the scope serve's route demands: without a token it
// is 401, with a token one scope below 403, with a token of the documented
// scope neither; an operation documented without security needs no token.
func TestDocumentScopes(t *testing.T) {
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.Tokens, cfg.API.RequireAuth = testTokens(t), true
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	tokens := map[string]string{"read": readToken, "write": writeToken, "admin": adminToken}
	for _, op := range c.Operations() {
		path := strings.NewReplacer("{user_id}", "batchy", "{song_id}", fmt.Sprint(w.songs[30]), "{run_id}", "1").Replace(op.Path)
		body := ""
		if op.Method == http.MethodPost {
			body = "{}"
		}
		send := func(token string) response {
			h := map[string]string{}
			if token != "" {
				h = bearer(token)
			}
			return in.doHeaders(t, op.Method, path, body, h)
		}
		if len(op.Scopes) == 0 {
			if r := send(""); r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
				t.Errorf("%s is documented without security but needs a token (%d %s): add \"security\": [{\"bearer\": [\"<scope>\"]}] in %s", op, r.status, r.body, contract.File)
			}
			continue
		}
		if len(op.Scopes) != 1 {
			t.Errorf("%s: give its security requirement exactly one scope, not %v", op, op.Scopes)
			continue
		}
		need, err := api.ParseScope(op.Scopes[0])
		if err != nil {
			t.Errorf("%s: %v", op, err)
			continue
		}
		if r := send(""); r.status != http.StatusUnauthorized {
			t.Errorf("%s is documented with scope %s but answered %d %s without a token: remove its security in %s or guard the route", op, need, r.status, r.body, contract.File)
		}
		if below := need - 1; below >= api.ScopeRead {
			if r := send(tokens[below.String()]); r.status != http.StatusForbidden {
				t.Errorf("%s is documented with scope %s but a %s token got %d %s: the route needs less; fix its security in %s", op, need, below, r.status, r.body, contract.File)
			}
		}
		if r := send(tokens[need.String()]); r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
			t.Errorf("%s is documented with scope %s but a %s token got %d %s: the route needs more; fix its security in %s", op, need, need, r.status, r.body, contract.File)
		}
	}
}

// TestDocsServed: /docs redirects to /docs/, which serve answers from
// memory with the page's security headers; the document is at
// /v1/openapi.json without a token, revalidated by its ETag.
func TestDocsServed(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.Tokens, cfg.API.RequireAuth = testTokens(t), true
	in := w.start(t, cfg, nil)
	r := in.get(t, "/docs") // the client follows the redirect
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), "swagger-ui-bundle.js") || r.header.Get("Content-Security-Policy") == "" {
		t.Fatalf("/docs: %s, CSP %q", r.body, r.header.Get("Content-Security-Policy"))
	}
	doc := in.get(t, "/v1/openapi.json")
	wantStatus(t, doc, http.StatusOK)
	again := in.doHeaders(t, http.MethodGet, "/v1/openapi.json", "", map[string]string{"If-None-Match": doc.header.Get("ETag")})
	wantStatus(t, again, http.StatusNotModified)
}
