-- 0002: a run can be staged: trained, gated, and its shared keys (item
-- factors, popular list, meta) written under its version, waiting for the
-- `batch precompute` shards of an Indexed Job to write every user's list;
-- the shard that completes the set switches the pointer and marks the run
-- published.
ALTER TABLE model_runs DROP CONSTRAINT model_runs_status_check;
ALTER TABLE model_runs ADD CONSTRAINT model_runs_status_check
    CHECK (status IN ('running', 'staged', 'published', 'rejected', 'failed', 'rolled_back'));
