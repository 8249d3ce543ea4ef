#!/usr/bin/env bash
# `make run`: migrate, import the committed sample, train and serve, against
# the local PostgreSQL and Redis. Later starts reuse the data.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/batch migrate
exec bin/serve --addr "${ADDR:-:8080}"
