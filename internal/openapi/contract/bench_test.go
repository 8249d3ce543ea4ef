package contract_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/openapi/contract"
)

// BenchmarkCheck is the contract's cost per exchange in the tests (none in
// production): one GET recommendations of 10 songs, request and response
// validated. docs/BENCHMARKS.md records it.
func BenchmarkCheck(b *testing.B) {
	c, err := contract.Load()
	if err != nil {
		b.Fatal(err)
	}
	var items []string
	for i := 1; i <= 10; i++ {
		items = append(items, fmt.Sprintf(`{"song_id":%d,"artist":"Artist %d","track":"Track %d","score":0.%d}`, i, i, i, 90-i))
	}
	body := []byte(`{"user_id":"ana","model_version":42,"arm":"none","source":"batch","items":[` + strings.Join(items, ",") + `]}`)
	req := httptest.NewRequest(http.MethodGet, "/v1/users/ana/recommendations?n=10", nil)
	res := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Check(req, nil, res, body); err != nil {
			b.Fatal(err)
		}
	}
}
