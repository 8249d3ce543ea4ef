package k8s_test

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/setlist/setlist/k8s/k8stest"
)

// scalingDoc reads docs/scaling.md's machine-readable rows: every table
// row whose first cell is a `name` in backticks, as name → its numeric
// cells (commas dropped; a cell that is not a number is skipped), and the
// plan table's user counts from its header row ("| plan | 10,000,000 |…").
func scalingDoc(t *testing.T) (rows map[string][]float64, users []float64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8stest.Root(t), "docs", "scaling.md"))
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile("^`([a-z0-9_]+)`$")
	num := func(s string) (float64, bool) {
		s = strings.ReplaceAll(strings.Trim(strings.TrimSpace(s), "*"), ",", "")
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	rows = map[string][]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(l), "|"), "|")
		first := strings.TrimSpace(cells[0])
		if first == "plan" {
			for _, c := range cells[1:] {
				if v, ok := num(c); ok {
					users = append(users, v)
				}
			}
			continue
		}
		m := name.FindStringSubmatch(first)
		if m == nil {
			continue
		}
		if _, dup := rows[m[1]]; dup {
			t.Fatalf("docs/scaling.md: %s appears twice", m[1])
		}
		for _, c := range cells[1:] {
			if v, ok := num(c); ok {
				rows[m[1]] = append(rows[m[1]], v)
			}
		}
	}
	if len(users) == 0 {
		t.Fatal("docs/scaling.md: no plan table (a header row starting \"| plan |\" with user counts)")
	}
	return rows, users
}

// TestScalingArithmetic recomputes docs/scaling.md's plan from its figures
// table, so the page cannot drift from its own inputs (issue 25 item 6: it
// once called 12 masters of 8 GB 75 % full for 100 M users, which its own
// figures make 90 %, and said both one and three serve replicas per
// master). Every derived cell must be what the figures give, to the
// precision it is written with; each size's master count must be the
// fewest that keep the fill under the planning ceiling; and the precompute
// Job's memory limit must hold the measured peak RSS with room to spare.
func TestScalingArithmetic(t *testing.T) {
	rows, users := scalingDoc(t)
	fig := func(name string) float64 {
		t.Helper()
		v := rows[name]
		if len(v) != 1 {
			t.Fatalf("docs/scaling.md: figure %s has %d values, want 1", name, len(v))
		}
		return v[0]
	}
	plan := func(name string) []float64 {
		t.Helper()
		v := rows[name]
		if len(v) != len(users) {
			t.Fatalf("docs/scaling.md: plan row %s has %d values for %d sizes", name, len(v), len(users))
		}
		return v
	}
	// near: the doc rounds; a cell must be within half a unit of its last
	// written digit, or 0.5 % for large values.
	near := func(name string, i int, got, want float64) {
		t.Helper()
		tol := math.Max(0.51, 0.005*math.Abs(want))
		if math.Abs(want) < 20 {
			tol = 0.051 * math.Max(1, math.Abs(want)/10)
		}
		if math.Abs(got-want) > tol {
			t.Errorf("docs/scaling.md: %s for %.0f users is %v; its figures give %.3g", name, users[i], got, want)
		}
	}

	bytesPerUser := fig("redis_bytes_per_user_version")
	versions := fig("live_versions")
	overhead := fig("redis_overhead")
	ceiling := fig("master_fill_ceiling_pct") / 100
	mgets := fig("master_mgets_per_s")
	hits := fig("serve_batch_hits_per_s")
	publishRate := fig("publish_keys_per_s_per_master")
	precomputeMS := fig("precompute_cpu_ms_per_user")
	precomputeRSS := fig("precompute_peak_rss_mib")
	trainerKB := fig("trainer_core_kb_per_user")
	pipelineFactor := fig("pipeline_memory_factor")

	perVersion, masterGB := plan("redis_gb_per_version"), plan("redis_gb_masters")
	masters, size, fill := plan("masters"), plan("master_maxmemory_gb"), plan("master_fill_pct")
	pods, publish := plan("redis_pods"), plan("publish_s")
	cpuHours, shards := plan("precompute_cpu_hours"), plan("precompute_pods_for_1h")
	trainer := plan("trainer_pipeline_gb")
	for i, u := range users {
		near("redis_gb_per_version", i, perVersion[i], u*bytesPerUser/1e9)
		need := u * bytesPerUser * versions * overhead / 1e9
		near("redis_gb_masters", i, masterGB[i], need)
		near("master_fill_pct", i, fill[i], 100*need/(masters[i]*size[i]))
		if need > ceiling*masters[i]*size[i] {
			t.Errorf("docs/scaling.md: %.0f masters of %.0f GB for %.0f users are %.0f %% full, over the %.0f %% ceiling",
				masters[i], size[i], u, 100*need/(masters[i]*size[i]), 100*ceiling)
		}
		if masters[i] > 1 && need <= ceiling*(masters[i]-1)*size[i] {
			t.Errorf("docs/scaling.md: %.0f masters of %.0f GB for %.0f users; %.0f would do", masters[i], size[i], u, masters[i]-1)
		}
		if pods[i] != 2*masters[i] {
			t.Errorf("docs/scaling.md: %.0f Redis pods for %.0f masters with one replica each", pods[i], masters[i])
		}
		near("publish_s", i, publish[i], u/(masters[i]*publishRate))
		near("precompute_cpu_hours", i, cpuHours[i], u*precomputeMS/1000/3600)
		if shards[i] != math.Ceil(u*precomputeMS/1000/3600) {
			t.Errorf("docs/scaling.md: %.0f one-CPU precompute pods finish %.0f users in an hour; the figures need %.0f",
				shards[i], u, math.Ceil(u*precomputeMS/1000/3600))
		}
		near("trainer_pipeline_gb", i, trainer[i], u*trainerKB*pipelineFactor/1e6)
	}
	near("serve_replicas_per_master", 0, fig("serve_replicas_per_master"), mgets/hits)

	// The Job's template holds the measured peak with at least 2× room.
	var limit int64
	for _, o := range k8stest.Files(t) {
		if cj, ok := o.Obj.(*batchv1.CronJob); ok && cj.Name == "setlist-precompute" {
			c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
			limit = c.Resources.Limits.Memory().Value()
			if req := c.Resources.Requests[corev1.ResourceMemory]; req.Value() != limit {
				t.Errorf("setlist-precompute requests %s of memory but is limited to %d bytes: request what it may use", req.String(), limit)
			}
		}
	}
	if limit == 0 {
		t.Fatal("no setlist-precompute CronJob with a memory limit under cronjobs/")
	}
	if mib := float64(limit) / (1 << 20); mib < 2*precomputeRSS {
		t.Errorf("setlist-precompute's memory limit %.0f MiB is under twice the measured peak RSS %.0f MiB (docs/scaling.md)", mib, precomputeRSS)
	}
	if got := fig("precompute_pod_memory_mib"); got != float64(limit)/(1<<20) {
		t.Errorf("docs/scaling.md says the precompute pod has %.0f MiB; the manifest gives %d MiB", got, limit>>20)
	}
}
