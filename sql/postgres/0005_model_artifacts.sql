-- 0005: durable model artifacts. Every published or staged version keeps
-- what is needed to put it back in Redis (item side, user factors, the
-- songs each user is never recommended, popular list, meta, id maps): Redis
-- is a cache of these, rebuilt by `batch republish` and `batch rollback
-- --to`. The bytes are split into chunks (one bytea value per chunk keeps
-- each row well under the 1 GB value limit and lets COPY stream them) and
-- checked against sha256 on every read.
CREATE TABLE model_artifacts (
    version    BIGINT      PRIMARY KEY REFERENCES model_runs (id) ON DELETE CASCADE,  -- the run id = model version
    family     TEXT        NOT NULL CHECK (family <> ''),   -- model family ("als"; more later), decides the codec
    bytes      BIGINT      NOT NULL CHECK (bytes >= 0),
    sha256     TEXT        NOT NULL CHECK (length(sha256) = 64),  -- hex digest of the whole artifact
    chunks     INTEGER     NOT NULL CHECK (chunks >= 0),
    pinned     BOOLEAN     NOT NULL DEFAULT false,          -- exempt from retention (`batch pin`)
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE model_artifact_chunks (
    version BIGINT  NOT NULL REFERENCES model_artifacts (version) ON DELETE CASCADE,
    seq     INTEGER NOT NULL CHECK (seq >= 0),
    data    BYTEA   NOT NULL,
    PRIMARY KEY (version, seq)                              -- one artifact's chunks in order: a PK range scan
);
-- Factors are float noise to a compressor: store the chunks out of line
-- without trying pglz on every write.
ALTER TABLE model_artifact_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
