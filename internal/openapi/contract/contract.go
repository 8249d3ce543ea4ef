// Package contract holds serve to its OpenAPI document (internal/openapi):
// it loads and validates the document with kin-openapi, lists its
// operations for the tests that compare it with the router and the guide,
// and checks HTTP exchanges against it (Check, Transport). Tests only:
// nothing in production links it.
package contract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/setlist/setlist/internal/openapi"
)

// File is where the document lives, for messages that say what to edit.
const File = "internal/openapi/openapi.json"

// Contract is the loaded document and its router.
type Contract struct {
	Doc    *openapi3.T
	router routers.Router
}

var (
	loadOnce sync.Once
	loaded   *Contract
	loadErr  error
)

// Load parses and validates the embedded document (once per process).
func Load() (*Contract, error) {
	loadOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(openapi.JSON())
		if err != nil {
			loadErr = fmt.Errorf("load %s: %w", File, err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			loadErr = fmt.Errorf("validate %s: %w", File, err)
			return
		}
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			loadErr = fmt.Errorf("route %s: %w", File, err)
			return
		}
		loaded = &Contract{Doc: doc, router: r}
	})
	return loaded, loadErr
}

// Operation is one method on one path of the document.
type Operation struct {
	Method string // upper case
	Path   string // as the document writes it: /v1/users/{user_id}
	// Scopes are the bearer scopes its security requirement names; nil
	// for an operation that needs no token.
	Scopes []string
}

func (o Operation) String() string { return o.Method + " " + o.Path }

// Operations lists the document's operations sorted by path, then method.
func (c *Contract) Operations() []Operation {
	var ops []Operation
	for path, item := range c.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			o := Operation{Method: strings.ToUpper(method), Path: path}
			sec := c.Doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			for _, req := range sec {
				o.Scopes = append(o.Scopes, req["bearer"]...)
			}
			ops = append(ops, o)
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return ops
}

// Described reports whether serve's document covers path: the API under
// /v1 and the probes. The rest is the web page's files, which it does not
// describe.
func Described(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, "/v1/") || path == "/healthz" || path == "/readyz"
}

// Check validates one exchange: the request against its operation and the
// response against that operation's response for the status. The rules:
//   - a path the document lacks must be answered 404, a method it lacks on
//     a known path 405 with Allow naming the document's methods;
//   - a request the document refuses must be refused (4xx);
//   - every response's status must be documented for its operation, with
//     the documented body and headers.
//
// reqBody and resBody are the bodies sent and received. The error says
// what to add to or change in the document.
func (c *Contract) Check(req *http.Request, reqBody []byte, res *http.Response, resBody []byte) error {
	if !Described(req.URL.Path) || res.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
		// The page's files; and 431, which fasthttp answers before the
		// app sees the request.
		return nil
	}
	ctx := context.Background()
	what := req.Method + " " + req.URL.RequestURI()
	method := req.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	probe := req.Clone(ctx)
	probe.Method = method
	probe.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := c.router.FindRoute(probe)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		if res.StatusCode == http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("contract: %s was answered %d, but %s has no path for it: add it under \"paths\" (ids as {user_id}/{song_id}) with its %s operation, parameters, requestBody, responses and security",
			what, res.StatusCode, File, strings.ToLower(method))
	case errors.Is(err, routers.ErrMethodNotAllowed):
		if res.StatusCode == http.StatusMethodNotAllowed {
			return c.checkAllow(req, res)
		}
		return fmt.Errorf("contract: %s was answered %d, but %s has no %s operation on this path: add paths[...].%s with its parameters, requestBody, responses and security",
			what, res.StatusCode, File, method, strings.ToLower(method))
	case err != nil:
		return fmt.Errorf("contract: route %s: %w", what, err)
	}
	where := fmt.Sprintf("paths[%q].%s", route.Path, strings.ToLower(route.Method))
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: false}}
	if reqErr := openapi3filter.ValidateRequest(ctx, in); reqErr != nil && res.StatusCode < 400 {
		return fmt.Errorf("contract: %s: %s refuses this request (%v), but the server accepted it (%d): widen the request's schema in %s or make the server refuse it",
			what, where, reqErr, res.StatusCode, File)
	}
	if route.Operation.Responses.Status(res.StatusCode) == nil && route.Operation.Responses.Default() == nil {
		return fmt.Errorf("contract: %s was answered %d (%s), but %s.responses has no %q: add it to %s (an error: {\"$ref\": \"#/components/responses/...\"})",
			what, res.StatusCode, clip(resBody), where, fmt.Sprint(res.StatusCode), File)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: req.Method == http.MethodHead}}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("contract: %s answered %d %s, which %s.responses[%q] in %s does not allow: %v",
			what, res.StatusCode, clip(resBody), where, fmt.Sprint(res.StatusCode), File, err)
	}
	return nil
}

// checkAllow compares a 405's Allow header with the document's methods on
// the path.
func (c *Contract) checkAllow(req *http.Request, res *http.Response) error {
	var doc []string
	for _, p := range c.Doc.Paths.Map() {
		_ = p
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := req.Clone(context.Background())
		probe.Method = m
		if _, _, err := c.router.FindRoute(probe); err == nil {
			doc = append(doc, m)
		}
	}
	var got []string
	for _, m := range strings.Split(res.Header.Get("Allow"), ",") {
		if m = strings.TrimSpace(m); m != "" && m != http.MethodHead {
			got = append(got, m)
		}
	}
	slices.Sort(got)
	slices.Sort(doc)
	if !slices.Equal(got, doc) {
		return fmt.Errorf("contract: %s %s was answered 405 with Allow %v, but %s describes %v on this path: describe the missing methods",
			req.Method, req.URL.Path, got, File, doc)
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
