package als

import (
	"testing"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
)

// loadReal is the shared benchmark data (realdata.CSR): optional, it
// skips the test when absent.
func loadReal(tb testing.TB) *feedback.CSR {
	tb.Helper()
	return realdata.CSR(tb)
}
