package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/store"
)

// brokenStore is a database whose artifact writes fail, as an
// unreachable one's would.
type brokenStore struct{ pipeline.Artifacts }

func (brokenStore) SaveArtifact(context.Context, int64, string, []byte) (store.ArtifactInfo, error) {
	return store.ArtifactInfo{}, fmt.Errorf("save artifact: %w", setlist.ErrUnavailable)
}

// TestStagedVersionHasArtifact: a stage-only run stores the artifact too
// (the precompute shards may never finish; the version must stay
// restorable), with every user's factors and the run's list length.
func TestStagedVersionHasArtifact(t *testing.T) {
	e := newEnv(t)
	cfg := smallConfig()
	cfg.StageOnly, cfg.Force, cfg.K = true, true, 7
	deps := e.deps()
	deps.Artifacts = e.db
	res, err := pipeline.Run(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	a, err := artifact.Load(context.Background(), e.db, res.Version)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Users) != res.Counts.Users || a.Meta.K != 7 || a.Side.Factors != 16 || a.Source != artifact.SourceTrained ||
		a.Exclude.NNZ() != res.Counts.NNZ || res.Counts.ArtifactBytes == 0 {
		t.Errorf("staged artifact: %d users, k %d, %d factors, %d excluded (run: %+v)", len(a.Users), a.Meta.K, a.Side.Factors, a.Exclude.NNZ(), res.Counts)
	}
	if _, err := e.rdb.Get(context.Background(), e.keys.Current()).Result(); err == nil {
		t.Error("a stage-only run switched the pointer")
	}
}

// TestArtifactFailureFailsRun: a version whose artifact cannot be stored
// is never switched to (it could not be restored).
func TestArtifactFailureFailsRun(t *testing.T) {
	e := newEnv(t)
	deps := e.deps()
	deps.Artifacts = brokenStore{e.db}
	_, err := pipeline.Run(context.Background(), smallConfig(), deps)
	if !errors.Is(err, setlist.ErrUnavailable) {
		t.Fatalf("run with a failing artifact store: %v", err)
	}
	if _, err := e.rdb.Get(context.Background(), e.keys.Current()).Result(); err == nil {
		t.Error("the pointer switched to a version without an artifact")
	}
}
