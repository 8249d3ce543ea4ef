#!/usr/bin/env bash
# `make run`: migrate, import the committed sample, train once, and serve, against
# the local PostgreSQL and Redis. Later starts reuse the data and the model.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/batch import --csv data/sample.csv.gz   # a snapshot: re-importing changes nothing
if bin/batch status | grep -q "No model is published"; then
  bin/batch train
fi
echo "setlist is serving at http://localhost${ADDR:-:8080}/"
exec bin/serve --addr "${ADDR:-:8080}"
