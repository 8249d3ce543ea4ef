#!/usr/bin/env bash
# The large synthetic import against the physical limit (issue 27; figures in
# docs/BENCHMARKS.md, "CSV import"): `batch import` of ROWS synthetic rows
# (batch synth) into an empty database, timed with its peak memory, then a
# plain COPY of the same rows (as reactions stores them: user_id, song_id,
# kind, weight, binary) into the same table, emptied, in one transaction:
#   limit B: COPY into the bare table (indexes and primary key dropped), then
#            build them once, as the import's bulk load does;
#   limit A: COPY into the table as migrated (every index kept up row by row),
#            only with LIMITS=AB: at 50 M rows it runs for the better part of
#            an hour.
# Needs bin/batch (make build-batch), psql and /usr/bin/time; about 1 GB of
# disk per 3 M rows at peak (database, spool, exports). Drops its database
# and files at the end. Long: about 35 min for 50 M rows on 2 busy cores.
#
#   scripts/bench-import-synth.sh                 # 50 M rows, 1 M users, 100 k songs
#   ROWS=5000000 USERS=100000 scripts/bench-import-synth.sh
#   LIMITS=AB scripts/bench-import-synth.sh       # limit A too (the slowest)
set -euo pipefail
ROWS=${ROWS:-50000000}
USERS=${USERS:-1000000}
SONGS=${SONGS:-100000}
LIMITS=${LIMITS:-B}
SERVER=${SERVER:-postgres://postgres@127.0.0.1:5432}
DB=${DB:-setlist_bench_import}
BATCH=${BATCH:-bin/batch}
WORK=${WORK:-$(mktemp -d)}
CSV=${CSV:-$WORK/synth.csv.gz}
url="$SERVER/$DB?sslmode=disable"
psqldb() { psql "$url" -X -q -v ON_ERROR_STOP=1 "$@"; }
note() { echo "== $* | $(date -u +%H:%M:%S) | load $(cut -d' ' -f1-3 /proc/loadavg)"; }
cleanup() {
	psql "$SERVER/postgres?sslmode=disable" -X -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
	rm -f "$WORK/reactions.bin"
	[ -n "${KEEP_CSV:-}" ] || [ "$CSV" != "$WORK/synth.csv.gz" ] || rm -f "$CSV"
}
trap cleanup EXIT

note "start: $ROWS rows, $USERS users, $SONGS songs; disk free: $(df -h --output=avail "$WORK" | tail -1)"
if [ ! -s "$CSV" ]; then
	"$BATCH" synth --users "$USERS" --songs "$SONGS" --reactions "$ROWS" --seed 1 --out "$CSV"
	note "generated $CSV ($(du -h "$CSV" | cut -f1))"
fi
psql "$SERVER/postgres?sslmode=disable" -X -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"

note "import"
/usr/bin/time -f 'import: %e s wall, %U s user, %S s system, max RSS %M KB' \
	"$BATCH" --database-url "$url" import --csv "$CSV" 2>&1 | grep -v 'progress=\|status=' || true
note "import done; database $(psqldb -Atc "SELECT pg_size_pretty(pg_database_size(current_database()))")"

psqldb -c "\\copy (SELECT user_id, song_id, kind, weight FROM reactions) TO '$WORK/reactions.bin' WITH (FORMAT binary)"
note "exported $(du -h "$WORK/reactions.bin" | cut -f1)"

if [[ $LIMITS == *B* ]]; then
	note "limit B: COPY into the bare table, then build the indexes"
	defs=$(psqldb -At <<'SQL'
SELECT coalesce('ALTER TABLE reactions ADD CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid),
		pg_get_indexdef(i.indexrelid)) || ';'
FROM pg_index i LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
WHERE i.indrelid = 'reactions'::regclass ORDER BY k.oid IS NULL, 1;
SQL
)
	drops=$(psqldb -At <<'SQL'
SELECT coalesce('ALTER TABLE reactions DROP CONSTRAINT ' || quote_ident(k.conname), 'DROP INDEX ' || quote_ident(c.relname)) || ';'
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
WHERE i.indrelid = 'reactions'::regclass;
SQL
)
	psqldb <<SQL
BEGIN;
SET LOCAL session_replication_role = replica;
SET LOCAL maintenance_work_mem = '512MB';
TRUNCATE reactions;
$drops
\\timing on
\\copy reactions (user_id, song_id, kind, weight) FROM '$WORK/reactions.bin' WITH (FORMAT binary)
$defs
COMMIT;
SQL
	note "limit B done"
fi

if [[ $LIMITS == *A* ]]; then
	note "limit A: COPY into reactions with its indexes"
	psqldb <<SQL
BEGIN;
SET LOCAL session_replication_role = replica; -- no per-row FK triggers, as the import
TRUNCATE reactions;
\\timing on
\\copy reactions (user_id, song_id, kind, weight) FROM '$WORK/reactions.bin' WITH (FORMAT binary)
COMMIT;
SQL
	note "limit A done"
fi
