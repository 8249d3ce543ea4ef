package api

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/openapi/contract"
)

// routeParam is a Fiber path parameter (":user_id"), which OpenAPI writes
// "{user_id}".
var routeParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestRoutes walks the router and the OpenAPI document both ways: every
// route serve registers is described, and every described operation is a
// route. The static page ("/*") is not the API.
func TestRoutes(t *testing.T) {
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	tokens := &Tokens{}
	tokens.Add(ScopeAdmin, "an-admin-token-of-enough-length")
	a, err := New(Config{Tokens: tokens, RequireAuth: true}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range a.App.GetRoutes(true) {
		if r.Method == http.MethodHead || strings.Contains(r.Path, "*") {
			continue // HEAD comes with GET; "/*" is the page
		}
		route := r.Method + " " + routeParam.ReplaceAllString(r.Path, "{$1}")
		if !slices.Contains(routes, route) {
			routes = append(routes, route)
		}
	}
	var described []string
	for _, op := range c.Operations() {
		described = append(described, op.String())
	}
	for _, r := range routes {
		if !slices.Contains(described, r) {
			method, path, _ := strings.Cut(r, " ")
			t.Errorf("serve routes %s but %s does not describe it: add paths[%q].%s with its summary, parameters, requestBody, responses (each status, errors as $ref to #/components/responses) and security [{\"bearer\": [\"<scope>\"]}]",
				r, contract.File, path, strings.ToLower(method))
		}
	}
	for _, d := range described {
		if !slices.Contains(routes, d) {
			t.Errorf("%s describes %s but serve has no such route: remove it from the document or register the route", contract.File, d)
		}
	}
}
