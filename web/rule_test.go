package web_test

import (
	"html"
	"io/fs"
	"regexp"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/web"
)

// TestSignUpFormMirrorsUserIDRule (issue 16 item 10): the sign-up form's
// user id field carries the server's rule, stated once in internal/store: its
// pattern is setlist.UserIDPattern (whose agreement with setlist.ParseUserID is
// tested there) and its hint is setlist.UserIDRule.
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
	if got := html.UnescapeString(string(m[1])); got != setlist.UserIDPattern {
		t.Errorf("#reg-id pattern\n%s\nwant setlist.UserIDPattern\n%s", got, setlist.UserIDPattern)
	}
	hint := regexp.MustCompile(`<p id="reg-id-rule"[^>]*>([^<]*)</p>`).FindSubmatch(page)
	if hint == nil || html.UnescapeString(string(hint[1])) != setlist.UserIDRule {
		t.Errorf("#reg-id-rule hint %q, want setlist.UserIDRule %q", hint, setlist.UserIDRule)
	}
}
