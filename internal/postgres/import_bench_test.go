package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
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

// importRun is one timed Import and the CPU time it cost, so a figure
// taken on a busy machine can still be compared: this process's and that
// of the database's server processes (on a local server, where /proc shows
// them; 0 otherwise). The server's figure misses parallel workers, which
// exit before it is read. (WAL is not reported: the server's WAL position
// moves with every other database's writes too.)
type importRun struct {
	sum          store.ImportSummary
	wall         time.Duration
	goCPU, pgCPU time.Duration
}

// importFile imports path once, timing only the Import call.
func importFile(b *testing.B, db *postgres.DB, path string, perRowFK bool) importRun {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	pg0, go0 := serverCPU(b, db), processCPU()
	start := time.Now()
	sum, err := db.Import(ctx, f, store.ImportOptions{Source: path, PerRowFKChecks: perRowFK})
	if err != nil {
		b.Fatal(err)
	}
	run := importRun{sum: sum, wall: time.Since(start), goCPU: processCPU() - go0}
	for pid, t := range serverCPU(b, db) {
		run.pgCPU += t - pg0[pid]
	}
	var steps strings.Builder
	for _, st := range sum.Steps {
		fmt.Fprintf(&steps, " %s %.2fs;", st.Name, st.Duration.Seconds())
	}
	b.Logf("%.2fs wall, CPU %.2fs here + %.2fs PostgreSQL, foreign keys checked %q, %d indexes rebuilt:%s",
		run.wall.Seconds(), run.goCPU.Seconds(), run.pgCPU.Seconds(), sum.FKChecks, sum.RebuiltIndexes, steps.String())
	return run
}

// serverCPU returns the CPU time so far of every server process connected
// to db's database, by pid, read from /proc: empty when the server is not
// on this machine.
func serverCPU(b *testing.B, db *postgres.DB) map[int]time.Duration {
	b.Helper()
	rows, err := db.Pool.Query(context.Background(), "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields 14 and 15, counted after the parenthesised command name,
		// are user and system time in clock ticks (100 a second on Linux).
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = time.Duration(u+s) * (time.Second / 100)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkImportFull measures a first import into an empty database, the
// cost of bootstrapping a new environment.
func BenchmarkImportFull(b *testing.B) { benchmarkFirstImport(b, false) }

// BenchmarkImportFullPerRowFK is BenchmarkImportFull with PostgreSQL's
// per-row foreign-key triggers, what a role without the right to set
// session_replication_role gets (it never takes the bulk path).
func BenchmarkImportFullPerRowFK(b *testing.B) { benchmarkFirstImport(b, true) }

func benchmarkFirstImport(b *testing.B, perRowFK bool) {
	path := benchData(b)
	var runs []importRun
	for b.Loop() {
		b.StopTimer()
		db := pgtest.DB(b)
		b.StartTimer()
		run := importFile(b, db, path, perRowFK)
		if run.sum.Reactions.Inserted == 0 {
			b.Fatalf("first import inserted no reactions: %+v", run.sum)
		}
		runs = append(runs, run)
	}
	reportImport(b, runs)
}

// BenchmarkReimportFull measures importing the same snapshot again, the
// nightly steady state: every row is looked up, none changes.
func BenchmarkReimportFull(b *testing.B) {
	path := benchData(b)
	var runs []importRun
	for b.Loop() {
		b.StopTimer()
		db := pgtest.DB(b)
		importFile(b, db, path, false)
		b.StartTimer()
		run := importFile(b, db, path, false)
		if r := run.sum.Reactions; r.Inserted != 0 || r.Updated != 0 || run.sum.RebuiltIndexes != 0 {
			b.Fatalf("re-import wrote: %+v, %d indexes rebuilt", r, run.sum.RebuiltIndexes)
		}
		runs = append(runs, run)
	}
	reportImport(b, runs)
}

func reportImport(b *testing.B, runs []importRun) {
	b.Helper()
	var rows int64
	var total importRun
	for _, r := range runs {
		rows += r.sum.Rows
		total.wall += r.wall
		total.goCPU += r.goCPU
		total.pgCPU += r.pgCPU
	}
	if len(runs) == 0 || total.wall <= 0 {
		return
	}
	n := float64(len(runs))
	b.ReportMetric(float64(rows)/total.wall.Seconds(), "rows/s")
	b.ReportMetric(total.goCPU.Seconds()/n, "go-cpu-s/op")
	b.ReportMetric(total.pgCPU.Seconds()/n, "pg-cpu-s/op")
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
