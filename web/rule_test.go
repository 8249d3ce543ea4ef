package web_test

import (
	"html"
	"io/fs"
	"regexp"
	"testing"

	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/web"
)

// TestSignUpFormMirrorsUserIDRule (issue 16 item 10): the sign-up form's
// user id field carries the server's rule, stated once in internal/store: its
// pattern is store.UserIDPattern (whose agreement with store.UserID is
// tested there) and its hint is store.UserIDRule.
func TestSignUpFormMirrorsUserIDRule(t *testing.T) {
	page, err := fs.ReadFile(web.Static(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	input := regexp.MustCompile(`<input id="reg-id"[^>]*>`).Find(page)
	if input == nil {
		t.Fatal("no #reg-id input on the page")
	}
	m := regexp.MustCompile(`\spattern="([^"]*)"`).FindSubmatch(input)
	if m == nil {
		t.Fatalf("#reg-id has no pattern: %s", input)
	}
	if got := html.UnescapeString(string(m[1])); got != store.UserIDPattern {
		t.Errorf("#reg-id pattern\n%s\nwant store.UserIDPattern\n%s", got, store.UserIDPattern)
	}
	hint := regexp.MustCompile(`<p id="reg-id-rule"[^>]*>([^<]*)</p>`).FindSubmatch(page)
	if hint == nil || html.UnescapeString(string(hint[1])) != store.UserIDRule {
		t.Errorf("#reg-id-rule hint %q, want store.UserIDRule %q", hint, store.UserIDRule)
	}
}
