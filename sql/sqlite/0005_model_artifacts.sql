-- 0005: durable model artifacts, the same data as
-- sql/postgres/0005_model_artifacts.sql: every published or staged version's
-- artifact in chunks, checked against sha256 on every read.
CREATE TABLE model_artifacts (
    version    INTEGER PRIMARY KEY REFERENCES model_runs (id) ON DELETE CASCADE,
    family     TEXT    NOT NULL CHECK (family <> ''),
    bytes      INTEGER NOT NULL CHECK (bytes >= 0),
    sha256     TEXT    NOT NULL CHECK (length(sha256) = 64),
    chunks     INTEGER NOT NULL CHECK (chunks >= 0),
    pinned     INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    created_at INTEGER NOT NULL
);

CREATE TABLE model_artifact_chunks (
    version INTEGER NOT NULL REFERENCES model_artifacts (version) ON DELETE CASCADE,
    seq     INTEGER NOT NULL CHECK (seq >= 0),
    data    BLOB    NOT NULL,
    PRIMARY KEY (version, seq)
) WITHOUT ROWID;
