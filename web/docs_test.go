package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/setlist/setlist/internal/openapi"
	"github.com/setlist/setlist/web"
)

// pageCSP is serve's Content-Security-Policy for the page and its files
// (serve/internal/api/security.go, which web cannot import): /docs must
// work under it, with no inline script and nothing from another origin.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// TestDocsRenders: Chromium renders /docs/ (Swagger UI, vendored) under the
// page's CSP from the served OpenAPI document, finds the recommendations
// operation and offers the bearer "Authorize" dialog; no CSP violation, no
// uncaught error.
func TestDocsRenders(t *testing.T) {
	files := http.FileServerFS(web.Static())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", pageCSP)
		if r.URL.Path == "/v1/openapi.json" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(openapi.JSON())
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	b := newBrowser(t)
	// The violation listener is installed before any of the page's
	// scripts run, so a refused script or style is seen.
	b.run("open /docs/",
		chromedp.ActionFunc(func(ctx context.Context) error {
			_, err := page.AddScriptToEvaluateOnNewDocument(
				`window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI))`).Do(ctx)
			return err
		}),
		chromedp.Navigate(srv.URL+"/docs/"))
	b.waitFor("the recommendations operation", `!!document.getElementById('operations-recommendations-getRecommendations')`)
	b.waitFor("the Authorize button", `!!document.querySelector('.btn.authorize')`)
	if v := b.str(`(window.__csp || []).join('; ')`); v != "" {
		t.Fatalf("CSP violations on /docs/: %s", v)
	}
	if n := b.num(`document.querySelectorAll('.opblock').length`); n < 15 {
		t.Fatalf("/docs/ shows %d operations, want every one of the document's", n)
	}
}
