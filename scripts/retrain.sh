#!/usr/bin/env bash
# `make retrain`: ask the running playground (`make run`) to train and
# publish a new model from the data it holds now (your likes included).
# `batch train` cannot do it while serve runs: serve owns the embedded
# store. This calls the playground's POST /v1/admin/retrain (loopback only,
# with the admin token the playground wrote to $SETLIST_DATA_DIR/admin-token,
# or $SETLIST_ADMIN_TOKEN), waits for the run and prints its outcome.
# FORCE=1 publishes even when the quality gate rejects the model.
# Exit status: 0 published, 3 rejected by the gate, 1 anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null || { echo "make retrain needs curl" >&2; exit 1; }
dir="${SETLIST_DATA_DIR:-.run}"
addr="${ADDR:-${SETLIST_ADDR:-127.0.0.1:8080}}"
case "$addr" in
	:*) addr="127.0.0.1$addr" ;;
	0.0.0.0:*) addr="127.0.0.1:${addr#0.0.0.0:}" ;;
	\[::\]:*) addr="[::1]:${addr#\[::\]:}" ;;
esac
base="http://$addr"
token="${SETLIST_ADMIN_TOKEN:-}"
if [[ -z "$token" ]]; then
	if [[ ! -r "$dir/admin-token" ]]; then
		echo "no admin token in $dir/admin-token: is the playground running (make run) with SETLIST_DATA_DIR=$dir?" >&2
		exit 1
	fi
	token="$(<"$dir/admin-token")"
fi
body='{}'
if [[ -n "${FORCE:-}" && "${FORCE}" != 0 ]]; then body='{"force":true}'; fi

# call METHOD: sets $code and $answer.
call() {
	local out
	out="$(curl -sS -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		${2:+--data "$2"} -w '\n%{http_code}' "$base/v1/admin/retrain")" || {
		echo "the playground does not answer at $base (set SETLIST_ADDR to where make run listens)" >&2
		exit 1
	}
	code="${out##*$'\n'}"
	answer="${out%$'\n'*}"
}

call POST "$body"
case "$code" in
	202) echo "retraining in $base ..." ;;
	409) echo "a retrain is already running; waiting for it ..." ;;
	*) echo "retrain refused (HTTP $code): $answer" >&2; exit 1 ;;
esac
while :; do
	sleep 1
	call GET
	if [[ "$code" != 200 ]]; then echo "retrain status (HTTP $code): $answer" >&2; exit 1; fi
	[[ "$answer" == *'"running":false'* ]] && break
done
field() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[0-9.e+-]*\).*/\1/p" <<<"$answer" | tr -d '"'; }
case "$(field outcome)" in
	published) printf 'published model version %s (run %s, NDCG@5 %.4f, %.1f s); the playground serves it now\n' \
		"$(field version)" "$(field run_id)" "$(field ndcg_at_5)" "$(field seconds)" ;;
	rejected) echo "the quality gate rejected the new model (run $(field run_id)): $(field reason); FORCE=1 make retrain publishes it anyway" >&2; exit 3 ;;
	*) echo "retrain failed: $answer" >&2; exit 1 ;;
esac
