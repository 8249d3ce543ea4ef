package store

import (
	"os"
	"testing"
)

// BenchmarkRowsShared parses the shared data set the way Import does
// (gunzip, CSV, every field's rules) without a database: the client-side
// share of an import's time. SETLIST_DATA overrides the path; it skips when
// the file is absent.
func BenchmarkRowsShared(b *testing.B) {
	path := os.Getenv("SETLIST_DATA")
	if path == "" {
		path = "../../../shared/data/spotify-playlists/interactions.csv.gz"
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("full data set not available (%v); set SETLIST_DATA to interactions.csv.gz to run this benchmark", err)
	}
	var rows int64
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		src, err := NewRows(f, ImportOptions{Source: path})
		if err != nil {
			b.Fatal(err)
		}
		for src.Next() {
			if _, err := src.Values(); err != nil {
				b.Fatal(err)
			}
		}
		if err := src.Err(); err != nil {
			b.Fatal(err)
		}
		n, _, _ := src.Counts()
		rows += n
		f.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
