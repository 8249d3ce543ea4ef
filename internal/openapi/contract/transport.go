package contract

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Transport is an http.RoundTripper that checks every exchange it carries
// against the document (Check): a test's client made of it fails the
// request, with the reason, when the server and the document disagree. The
// violation is also kept (Violations), so a test that tolerates transport
// errors (outages, floods) cannot swallow it: the package's TestMain fails
// on any.
type Transport struct {
	Next http.RoundTripper // nil: http.DefaultTransport

	mu         sync.Mutex
	violations []string
}

// NewTransport loads the document and wraps next (nil: the default
// transport). It panics if the document does not load: every test using it
// would fail anyway, and the load error says why.
func NewTransport(next http.RoundTripper) *Transport {
	if _, err := Load(); err != nil {
		panic(err)
	}
	return &Transport{Next: next}
}

// RoundTrip sends req and checks the exchange.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	res, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resBody, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	if err != nil {
		return res, nil // a cut connection is the test's business, not the contract's
	}
	c, _ := Load()
	if cerr := c.Check(req, reqBody, res, resBody); cerr != nil {
		t.mu.Lock()
		t.violations = append(t.violations, cerr.Error())
		t.mu.Unlock()
		return nil, cerr
	}
	return res, nil
}

// Violations are the disagreements seen so far.
func (t *Transport) Violations() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.violations...)
}

// Report prints the violations to w and returns how many there were.
func (t *Transport) Report(w io.Writer) int {
	v := t.Violations()
	for _, s := range v {
		fmt.Fprintln(w, s)
	}
	return len(v)
}
