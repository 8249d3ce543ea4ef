#!/usr/bin/env bash
# `make run`: the playground in one process, needing nothing but Go: serve
# with the embedded store (SQLite and an in-process Redis in $SETLIST_DATA_DIR,
# .run/ by default). The first start imports the committed sample, trains and
# publishes; later starts reuse the data and the published model.
#
# `make run-prod` (or SETLIST_STORE=postgres+redis make run) does the same
# against the PostgreSQL and Redis servers at DATABASE_URL and REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
export SETLIST_STORE="${SETLIST_STORE:-embedded}"
export SETLIST_DATA_DIR="${SETLIST_DATA_DIR:-.run}"
exec bin/serve --playground --addr "${ADDR:-:8080}"
