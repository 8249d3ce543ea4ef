package contract

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"slices"
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
	// passed are the exchanges already found to agree, by digest: an
	// identical exchange (a flood of the same GET) is checked once, which
	// keeps the tap's CPU out of tests that measure latency on 2 cores.
	passed sync.Map
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
	key := digest(req, reqBody, res, resBody)
	if _, ok := t.passed.Load(key); ok {
		return res, nil
	}
	c, _ := Load()
	if cerr := c.Check(req, reqBody, res, resBody); cerr != nil {
		t.mu.Lock()
		t.violations = append(t.violations, cerr.Error())
		t.mu.Unlock()
		return nil, cerr
	}
	t.passed.Store(key, struct{}{})
	return res, nil
}

// digest identifies everything Check reads of an exchange: the request's
// method, URL, content type and body; the response's status, headers (but
// the per-request Date and X-Request-ID) and body.
func digest(req *http.Request, reqBody []byte, res *http.Response, resBody []byte) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n%s\n%d\n", req.Method, req.URL.RequestURI(), req.Header.Get("Content-Type"), len(reqBody))
	h.Write(reqBody)
	fmt.Fprintf(h, "\n%d\n", res.StatusCode)
	names := make([]string, 0, len(res.Header))
	for k := range res.Header {
		if k != "Date" && k != "X-Request-Id" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(h, "%s: %q\n", k, res.Header[k])
	}
	h.Write(resBody)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
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
