#!/usr/bin/env bash
# bench/profile.sh — where the api's instructions go for one read, counted
# with callgrind (repeatable whatever else the machine does; see
# bench/README.md).
#
#   bench/profile.sh                    # 300 cached products(first: 20)
#   BENCH_QUERY=slug bench/profile.sh   # product(slug: "black-tee")
#   BENCH_REQUESTS=100 CATALOG_CACHE=off bench/profile.sh
#   BENCH_SERVER=bare bench/profile.sh  # the bare async-graphql ceiling instead
#   BENCH_CONNECTIONS=64 bench/profile.sh  # under load: wrk -c64 for BENCH_SECONDS (20)
#   BENCH_API_BIN=target/bench-revs/bin/api-0456d07 bench/profile.sh
#                                       # an older api, as bench/api.sh's BENCH_REVS built it
#
# Runs the release api (built here) under `valgrind --tool=callgrind` on a
# fresh PostgreSQL database with the demo catalog, settings as bench/api.sh
# (no Redis, no worker), sends 50 warm-up requests, zeroes the counters,
# sends BENCH_REQUESTS one at a time (or, with BENCH_CONNECTIONS above 1,
# loads it with wrk for BENCH_SECONDS: concurrent reads then share the
# catalog freshness statement as they do under load), and prints
# instructions per request
# and the functions with the largest inclusive share. The raw profile stays
# in $BENCH_OUT (default target/profile) for callgrind_annotate.
# Needs valgrind, psql, curl (and wrk under load).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ADMIN_URL=${BENCH_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
QUERY=${BENCH_QUERY:-list}
REQUESTS=${BENCH_REQUESTS:-300}
CONNECTIONS=${BENCH_CONNECTIONS:-1}
DURATION=${BENCH_SECONDS:-20}
OUT=$(realpath -m "${BENCH_OUT:-$TARGET_DIR/profile}")
DB=storefront_profile_$$

SERVER=${BENCH_SERVER:-api}
API_BIN=$(realpath -m "${BENCH_API_BIN:-$TARGET_DIR/release/api}")
(cd "$ROOT" && cargo build --release --quiet -p api --bin api --example bare_graphql)
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.out.*
base=${ADMIN_URL%%\?*}
db_url="${base%/*}/$DB"
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null

PRODUCT_FIELDS='id sku slug name description price { amountMinor currency formatted } stock active createdAt'
case $QUERY in
list) BODY="{\"query\":\"{ products(first: 20) { edges { cursor node { $PRODUCT_FIELDS } } pageInfo { hasNextPage endCursor } } }\"}" ;;
slug) BODY="{\"query\":\"{ product(slug: \\\"black-tee\\\") { $PRODUCT_FIELDS } }\"}" ;;
*) echo "BENCH_QUERY: list or slug" >&2; exit 2 ;;
esac

cleanup() {
    [[ -n ${PID:-} ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT

mkdir -p "$OUT/var"
if [[ $SERVER == bare ]]; then
    (cd "$OUT" && exec valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
        "$TARGET_DIR/release/examples/bare_graphql" 127.0.0.1:0) >"$OUT/api.log" 2>&1 &
else
    (cd "$OUT" && exec env -i PATH="$PATH" HOME="$HOME" \
        APP_ENV=development DATABASE_URL="$db_url" SEED_DEMO_DATA=true EMBEDDED_WORKER=false \
        COST_BUCKET_SIZE=100000 COST_RESTORE_RATE=1000000 \
        GRAPHIQL=false API_BIND=127.0.0.1:0 DATA_DIR="$OUT/var" LOG_FORMAT=json \
        RUST_LOG=info,sqlx=warn CATALOG_CACHE="${CATALOG_CACHE:-on}" \
        valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
        "$API_BIN" serve) >"$OUT/api.log" 2>&1 &
fi
PID=$!
URL=
for _ in $(seq 1 600); do
    URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$OUT/api.log" | head -1 || true)
    [[ -n $URL ]] && break
    kill -0 "$PID" 2>/dev/null || { cat "$OUT/api.log" >&2; exit 1; }
    sleep 0.5
done
[[ -n $URL ]] || { echo "the api did not start" >&2; exit 1; }

ask() {
    curl -fsS -o /dev/null -H 'Content-Type: application/json' -d "$BODY" "$URL/graphql"
}
for _ in $(seq 1 50); do ask; done
callgrind_control -z "$PID" >/dev/null
if ((CONNECTIONS > 1)); then
    printf '%s' "$BODY" >"$OUT/body.json"
    cat >"$OUT/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$OUT/body.json"); wrk.body = f:read("*a"); f:close()
LUA
    load=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$OUT/post.lua" "$URL/graphql")
    REQUESTS=$(awk '/requests in/ { print $1 }' <<<"$load")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$load")
    [[ -z $non2xx ]] || { echo "$non2xx answers were not 2xx" >&2; exit 1; }
else
    for _ in $(seq 1 "$REQUESTS"); do ask; done
fi
callgrind_control -d "$PID" >/dev/null
sleep 1
profile=$(ls -t "$OUT"/callgrind.out.* | head -1)
total=$(callgrind_annotate "$profile" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
echo "server: $SERVER, query: $QUERY, cache ${CATALOG_CACHE:-on}, $REQUESTS requests, $CONNECTIONS at a time"
echo "instructions per request: $((total / REQUESTS))"
echo "largest inclusive shares (profile: $profile):"
callgrind_annotate --inclusive=yes "$profile" 2>/dev/null \
    | awk -v total="$total" '/^ *[0-9,]+ \(/ { n = $1; gsub(",", "", n); if (n / total > 0.02) print }' \
    | head -80
