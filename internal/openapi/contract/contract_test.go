package contract_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/openapi/contract"
)

// TestDocumentValid: the document parses and validates as OpenAPI 3.1 with
// kin-openapi (make lint checks it again with redocly).
func TestDocumentValid(t *testing.T) {
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Doc.OpenAPI; v != "3.1.0" {
		t.Fatalf("openapi is %q, want 3.1.0", v)
	}
	for _, op := range c.Operations() {
		item := c.Doc.Paths.Find(op.Path)
		o := item.GetOperation(op.Method)
		if o.OperationID == "" || o.Summary == "" {
			t.Errorf("%s: give it an operationId and a summary in %s", op, contract.File)
		}
	}
}

// guideRoute finds the routes docs/API.md documents: "`METHOD /path`" in
// its headings.
var guideRoute = regexp.MustCompile("`(GET|POST|PUT|PATCH|DELETE) (/[^`?\\s]*)[^`]*`")

// notInDocument are the guide's routes the document rightly leaves out,
// with why.
var notInDocument = map[string]string{
	"GET /":        "the web page's files, not the API",
	"GET /metrics": "served on --metrics-addr, not on the API's address",
	"GET /docs":    "the interactive reference, a page",
}

// TestAPIGuideRoutes: every route docs/API.md documents in a heading is in
// the OpenAPI document, and every operation of the document has a heading
// in the guide.
func TestAPIGuideRoutes(t *testing.T) {
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile("../../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	inGuide := map[string]bool{}
	for line := range strings.Lines(string(guide)) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		for _, m := range guideRoute.FindAllStringSubmatch(line, -1) {
			inGuide[m[1]+" "+m[2]] = true
		}
	}
	var inDoc []string
	for _, op := range c.Operations() {
		inDoc = append(inDoc, op.String())
		if !inGuide[op.String()] {
			t.Errorf("%s is in %s but no heading of docs/API.md names it: add a \"### `%s`\" section (or name it in an existing heading)", op, contract.File, op)
		}
	}
	for r := range inGuide {
		if _, ok := notInDocument[r]; ok || slices.Contains(inDoc, r) {
			continue
		}
		t.Errorf("docs/API.md documents %s but %s does not: add the operation to %s (or fix the heading)", r, contract.File, contract.File)
	}
}
