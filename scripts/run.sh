#!/usr/bin/env bash
# `make run`: the playground in one process, needing nothing but Go:
# serve-playground (serve/playground) with the embedded store (SQLite and an
# in-process Redis in $SETLIST_DATA_DIR, .run/ by default). The first start
# imports the committed sample, trains and publishes; later starts reuse the
# data and the published model.
#
# The address is serve's own setting: SETLIST_ADDR (or `make run ADDR=...`,
# passed as --addr), else the playground's default. `make run-prod` (or
# SETLIST_STORE=postgres+redis make run) does the same against the
# PostgreSQL and Redis servers at DATABASE_URL and REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
export SETLIST_STORE="${SETLIST_STORE:-embedded}"
export SETLIST_DATA_DIR="${SETLIST_DATA_DIR:-.run}"
# The playground listens on 127.0.0.1:8080 unless ADDR (or SETLIST_ADDR)
# says otherwise: it has a write API and no authentication (docs/SECURITY.md).
args=()
if [[ -n "${ADDR:-}" ]]; then
	args+=(--addr "$ADDR")
fi
# SETLIST_SERVE_BIN: another build of serve-playground (the script's tests
# use one).
exec "${SETLIST_SERVE_BIN:-bin/serve-playground}" "${args[@]}"
