package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
)

// benchData is the shared full data set; SETLIST_DATA points elsewhere. The
// default is relative to this package's directory, where go test runs.
func benchData(b *testing.B) string {
	b.Helper()
	path := os.Getenv("SETLIST_DATA")
	if path == "" {
		path = "../../../shared/data/spotify-playlists/interactions.csv.gz"
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("full data set not available (%v); set SETLIST_DATA to interactions.csv.gz to run this benchmark", err)
	}
	return path
}

// importFile imports path once, timing only the Import call.
func importFile(b *testing.B, db *postgres.DB, path string, perRowFK bool) (store.ImportSummary, time.Duration) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	sum, err := db.Import(context.Background(), f, store.ImportOptions{Source: path, PerRowFKChecks: perRowFK})
	if err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	var steps strings.Builder
	for _, st := range sum.Steps {
		fmt.Fprintf(&steps, " %s %.2fs;", st.Name, st.Duration.Seconds())
	}
	b.Logf("%.2fs:%s", d.Seconds(), steps.String())
	return sum, d
}

// BenchmarkImportFull measures a first import into an empty database, the
// cost of bootstrapping a new environment.
func BenchmarkImportFull(b *testing.B) { benchmarkFirstImport(b, false) }

// BenchmarkImportFullPerRowFK is BenchmarkImportFull with PostgreSQL's
// per-row foreign-key triggers, what a role without the right to set
// session_replication_role gets.
func BenchmarkImportFullPerRowFK(b *testing.B) { benchmarkFirstImport(b, true) }

func benchmarkFirstImport(b *testing.B, perRowFK bool) {
	path := benchData(b)
	var rows int64
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		db := pgtest.DB(b)
		b.StartTimer()
		sum, d := importFile(b, db, path, perRowFK)
		rows += sum.Rows
		elapsed += d
		if sum.Reactions.Inserted == 0 {
			b.Fatalf("first import inserted no reactions: %+v", sum)
		}
		b.Logf("%s: %.1fs, foreign keys checked %s", path, d.Seconds(), sum.FKChecks)
	}
	reportImport(b, rows, elapsed)
}

// BenchmarkReimportFull measures importing the same snapshot again, the
// nightly steady state: every row is looked up, none changes.
func BenchmarkReimportFull(b *testing.B) {
	path := benchData(b)
	var rows int64
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		db := pgtest.DB(b)
		importFile(b, db, path, false)
		b.StartTimer()
		sum, d := importFile(b, db, path, false)
		rows += sum.Rows
		elapsed += d
		if sum.Reactions.Inserted != 0 || sum.Reactions.Updated != 0 {
			b.Fatalf("re-import changed reactions: %+v", sum.Reactions)
		}
		b.Logf("%s: re-import %.1fs", path, d.Seconds())
	}
	reportImport(b, rows, elapsed)
}

func reportImport(b *testing.B, rows int64, elapsed time.Duration) {
	b.Helper()
	if elapsed > 0 {
		b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	}
	if hwm := peakRSS(); hwm > 0 {
		// VmHWM is the whole test process's peak, setup included: an upper
		// bound on what Import itself needs.
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MiB")
	}
}

// peakRSS reads the process's resident-set high-water mark in bytes, or 0
// where /proc is absent.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
