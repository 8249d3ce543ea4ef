#!/usr/bin/env bash
# Fails with a clear message when PostgreSQL or Redis is unreachable: the
# integration tests must never silently skip.
set -u
pg_url=${SETLIST_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
redis_url=${SETLIST_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
fail=0
if ! go run ./scripts/ping "$pg_url" "$redis_url"; then
  echo "make test needs PostgreSQL ($pg_url) and Redis ($redis_url) running; 'bash .ci/run' starts them." >&2
  fail=1
fi
exit $fail
