#!/usr/bin/env bash
# bench/orders.sh — `placeOrder` from 64 concurrent customers on PostgreSQL:
# orders/s, p50/p99, what was refused and why, and an oversell check at the
# end (see bench/README.md).
#
#   bench/orders.sh                        # 10 s of load, then a sell-out, then the default limits
#   BENCH_DURATION=30s bench/orders.sh
#   BENCH_WORKER=0 bench/orders.sh         # the worker starts only after the load
#   BENCH_BIN_DIR=/some/release bench/orders.sh   # those api and worker binaries, not built here
#
# What runs, as in production: the release `api` with a private
# redis-server (REDIS_URL set, so no embedded worker: the api's dispatcher
# pushes each order's jobs to Redis right after commit; rate limits and the
# query cost bucket live in Redis) and one `worker run` settling payments
# and writing emails (as files) while the orders come in. Default pool
# sizes (api 20, worker 10). The api trusts 127.0.0.1 as its proxy, and
# each customer comes from its own address in X-Forwarded-For, as behind a
# load balancer.
#
# The customers are real accounts, registered (argon2 and all) before the
# clock starts; each request is one customer's order with its own token.
# Phases:
#  1. throughput: orders of 1–3 lines (1–3 units each) over the demo
#     catalog less the scarce products, stock plentiful; wrk -c64.
#  2. sell-out: the same customers order only BENCH_SCARCE_PRODUCTS (4)
#     products holding BENCH_SCARCE_STOCK (100) units each, until they are
#     gone: concurrent orders race for the last units (OUT_OF_STOCK).
#  3. default limits: 64 other customers, on an api with the default
#     placeOrder limit (30/h per user) and query cost bucket (1000 points,
#     50/s; placeOrder asks for ~100): what the defaults let through.
# Phases 1 and 2 run with the settings of a shop whose customers are
# integrations (a reseller's or a till's account, not a person clicking):
# RATE_LIMIT_PLACE_ORDER_USER=1200/1m and the cost bucket of Shopify's
# largest plan (COST_BUCKET_SIZE=20000, COST_RESTORE_RATE=2000); refusals
# are counted and printed whatever the setting.
#
# At the end, once every job has run: for every product, units on the
# orders (not cancelled or failed) = the stock's decrease = minus the sum of
# its stock movements, no stock below 0, and the scarce products sold out
# exactly.
#
# Needs: cargo, wrk, psql, curl, jq, redis-server, redis-cli, and a
# PostgreSQL server at BENCH_DATABASE_URL (else DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/postgres) where it may create and drop
# a database.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ADMIN_URL=${BENCH_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
CUSTOMERS=${BENCH_CUSTOMERS:-64}
CONNECTIONS=${BENCH_CONNECTIONS:-$CUSTOMERS}
THREADS=${BENCH_THREADS:-2}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
SELLOUT_DURATION=${BENCH_SELLOUT_DURATION:-5s}
LIMITS_DURATION=${BENCH_LIMITS_DURATION:-5s}
SCARCE=${BENCH_SCARCE_PRODUCTS:-4}
SCARCE_STOCK=${BENCH_SCARCE_STOCK:-100}
PLENTY_STOCK=10000000
WORKER=${BENCH_WORKER:-1}
ORDER_RATE=${BENCH_PLACE_ORDER_RATE:-1200/1m}
COST_SIZE=${BENCH_COST_BUCKET_SIZE:-20000}
COST_RATE=${BENCH_COST_RESTORE_RATE:-2000}
LIFETIME=${BENCH_LIFETIME_SECS:-3600}

die() { echo "bench/orders.sh: $*" >&2; exit 1; }
for tool in cargo wrk psql curl jq redis-server redis-cli; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# BENCH_BIN_DIR: run the api and worker found there (an older build, for a
# before/after) instead of building the working tree's.
BIN_DIR=${BENCH_BIN_DIR:-}
if [[ -z $BIN_DIR ]]; then
    echo "building release binaries (api, worker)…" >&2
    (cd "$ROOT" && cargo build --release --quiet -p api -p worker)
    BIN_DIR=$TARGET_DIR/release
fi
API_BIN=$BIN_DIR/api
WORKER_BIN=$BIN_DIR/worker
[[ -x $API_BIN && -x $WORKER_BIN ]] || die "no api and worker in $BIN_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sf-bench-orders.XXXXXX")

# --- a fresh database, a private Redis --------------------------------------
DB="sf_bench_orders_$(date +%s)_$$"
db_url() { # ADMIN_URL with its database name replaced by $1
    local base=${ADMIN_URL%%\?*} query rest
    query=${ADMIN_URL#"$base"}
    rest=${base#*://}
    if [[ $rest == */* ]]; then base=${base%/*}; fi
    echo "$base/$1$query"
}
DB_URL=$(db_url "$DB")
API_PID=""
WORKER_PID=""
REDIS_PID=""
stop() { # PID…: TERM, then wait
    local pid
    for pid in "$@"; do
        if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; fi
    done
}
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    set +e
    stop "$API_PID" "$WORKER_PID" "$REDIS_PID"
    psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
psql "$ADMIN_URL" -qAtc "CREATE DATABASE \"$DB\"" >/dev/null || die "cannot create a database at $ADMIN_URL"
sql() { psql -X -q -A -t -F ' ' "$DB_URL" -c "$1"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# --- api and worker ------------------------------------------------------------
API_PORT=$(free_port)
WORKER_PORT=$(free_port)
API="http://127.0.0.1:$API_PORT"
mkdir -p "$WORK/var"
# run PROGRAM ARGS… [with VAR=VALUE… before it]: in place of the calling
# subshell, with a clean environment (nothing from the caller's shell or a
# .env changes what is measured), so `run … &` makes $! the process itself.
run() {
    cd "$WORK" && exec env -i PATH="$PATH" HOME="$HOME" APP_ENV=development \
        DATABASE_URL="$DB_URL" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SEED_DEMO_DATA=true \
        GRAPHIQL=false JWT_SECRET=bench-orders-secret-bench-orders-secret TRUSTED_PROXIES=127.0.0.1 \
        API_BIND="127.0.0.1:$API_PORT" WORKER_BIND="127.0.0.1:$WORKER_PORT" DATA_DIR="$WORK/var" \
        LOG_FORMAT=json RUST_LOG=info,sqlx=warn "$@"
}
wait_ready() { # URL PID LOG
    for _ in $(seq 1 300); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "$3: the process exited"; }
        sleep 0.2
    done
    die "$1 did not answer within 60 s"
}
start_api() { # VAR=VALUE… (the settings of this api)
    (run "$@" timeout -k 10 "$LIFETIME" "$API_BIN" serve) >>"$WORK/api.log" 2>&1 &
    API_PID=$!
    wait_ready "$API/readyz" "$API_PID" "$WORK/api.log"
}
start_worker() {
    (run timeout -k 10 "$LIFETIME" "$WORKER_BIN" run) >"$WORK/worker.log" 2>&1 &
    WORKER_PID=$!
    wait_ready "http://127.0.0.1:$WORKER_PORT/readyz" "$WORKER_PID" "$WORK/worker.log"
}
INTEGRATION_SETTINGS=(RATE_LIMIT_PLACE_ORDER_USER="$ORDER_RATE" COST_BUCKET_SIZE="$COST_SIZE" COST_RESTORE_RATE="$COST_RATE")
start_api "${INTEGRATION_SETTINGS[@]}"
if [[ $WORKER == 1 ]]; then start_worker; fi

# --- customers and products -------------------------------------------------
# register PREFIX N: account PREFIX-N from address 10.PREFIX_NUM.x.y; prints "TOKEN ADDRESS".
register() {
    local email="$1-$2@example.com" address body token
    address="10.$3.$(($2 / 250)).$(($2 % 250 + 1))"
    body=$(jq -nc --arg e "$email" '{query: "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        variables: {i: {email: $e, password: "correct horse battery staple", name: "Bench customer"}}}')
    token=$(curl -sS -H 'content-type: application/json' -H "x-forwarded-for: $address" --data "$body" "$API/graphql" |
        jq -er .data.register.accessToken) || die "could not register $email"
    echo "$token $address"
}
register_all() { # PREFIX NET FILE
    local i pids=()
    for i in $(seq 0 $((CUSTOMERS - 1))); do
        register "$1" "$i" "$2" >"$3.$i" &
        pids+=($!)
        if ((${#pids[@]} == 4)); then wait "${pids[@]}"; pids=(); fi
    done
    if ((${#pids[@]} > 0)); then wait "${pids[@]}"; fi
    cat "$3".* >"$3"
    [[ $(wc -l <"$3") == "$CUSTOMERS" ]] || die "registered $(wc -l <"$3") of $CUSTOMERS customers"
}
echo "registering $((2 * CUSTOMERS)) customers…" >&2
register_all bench 1 "$WORK/customers"
register_all limits 2 "$WORK/limits_customers"

# The demo catalog's products that placeOrder can name without a variant
# (exactly one active variant; stock lives on variants): the first SCARCE
# by sku are scarce, the others plentiful.
ORDERABLE="SELECT p.id FROM products p WHERE p.active
           AND (SELECT count(*) FROM product_variants v WHERE v.product_id = p.id AND v.active) = 1 ORDER BY p.sku"
sql "$ORDERABLE LIMIT $SCARCE" >"$WORK/scarce"
sql "$ORDERABLE OFFSET $SCARCE" >"$WORK/plenty"
[[ $(wc -l <"$WORK/scarce") == "$SCARCE" && $(wc -l <"$WORK/plenty") -ge 3 ]] || die "the demo catalog is too small"
sql "UPDATE product_variants SET stock = CASE WHEN product_id IN ($ORDERABLE LIMIT $SCARCE)
                                              THEN $SCARCE_STOCK ELSE $PLENTY_STOCK END;
     CREATE TABLE bench_initial AS
         SELECT id, sku, (SELECT sum(stock) FROM product_variants v WHERE v.product_id = p.id) AS stock,
                (SELECT coalesce(sum(delta), 0) FROM stock_movements m WHERE m.product_id = p.id) AS moved
         FROM products p WHERE p.id IN ($ORDERABLE)" >/dev/null

# --- CPU ------------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
proc_cpu() { # PID → utime + stime, in seconds (0 when gone)
    awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# "WHO SECONDS" lines: the api, the worker, Redis, each PostgreSQL process
# serving this database or working for all (WAL writer, checkpointer…), and
# the whole machine's busy time.
cpu_sample() {
    local pid
    echo "api $(proc_cpu "$(cat "/proc/$API_PID/task/$API_PID/children" 2>/dev/null | awk '{ print $1 }')")"
    [[ -n $WORKER_PID ]] && echo "worker $(proc_cpu "$(awk '{ print $1 }' "/proc/$WORKER_PID/task/$WORKER_PID/children" 2>/dev/null)")"
    echo "redis $(proc_cpu "$REDIS_PID")"
    for pid in $(sql "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()
                      OR backend_type <> 'client backend'"); do
        echo "pg:$pid $(proc_cpu "$pid")"
    done
    awk -v t="$CLK_TCK" '$1 == "cpu" { print "machine", ($2 + $3 + $4 + $7 + $8) / t }' /proc/stat
}
# cpu_used BEFORE AFTER SECONDS → "api 93% worker 20% …" (of one CPU)
cpu_used() {
    awk -v secs="$3" 'FNR == NR { a[$1] = $2; next }
         { who = $1 ~ /^pg:/ ? "postgres" : $1; used[who] += $2 - a[$1] }
         END { n = split("api worker postgres redis machine", order, " ")
               for (i = 1; i <= n; i++) if (order[i] in used) printf "%s %.0f%% ", order[i], 100 * used[order[i]] / secs }' "$1" "$2"
}

# --- load ----------------------------------------------------------------------------
# load NAME CUSTOMERS_FILE PRODUCTS_FILE MAX_LINES MAX_QTY DURATION: one wrk
# run; its RESULT/REFUSED lines in $WORK/NAME, its CPU in $WORK/NAME.cpu.
load() {
    local name=$1 before after
    cpu_sample >"$WORK/$name.cpu0"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$6" --timeout 10s -s "$ROOT/bench/orders.lua" "$API" \
        -- "$2" "$3" "$4" "$5" "$name" "$THREADS" >"$WORK/$name.out"
    cpu_sample >"$WORK/$name.cpu1"
    grep -E '^(RESULT|REFUSED) ' "$WORK/$name.out" >"$WORK/$name" || { cat "$WORK/$name.out" >&2; die "wrk printed no result"; }
    cpu_used "$WORK/$name.cpu0" "$WORK/$name.cpu1" "$(awk '$1 == "RESULT" { print $2 }' "$WORK/$name")" >"$WORK/$name.cpu"
}

echo "warming up ($WARMUP)…" >&2
load warmup "$WORK/customers" "$WORK/plenty" 3 3 "$WARMUP"
echo "throughput: $DURATION of orders from $CUSTOMERS customers…" >&2
load throughput "$WORK/customers" "$WORK/plenty" 3 3 "$DURATION"
echo "sell-out: $SCARCE products of $SCARCE_STOCK units…" >&2
load sellout "$WORK/customers" "$WORK/scarce" 3 3 "$SELLOUT_DURATION"
echo "default limits: $LIMITS_DURATION from $CUSTOMERS other customers…" >&2
stop "$API_PID"
start_api
load limits "$WORK/limits_customers" "$WORK/plenty" 3 3 "$LIMITS_DURATION"

# --- settle, then check -------------------------------------------------------------------
if [[ $WORKER != 1 ]]; then start_worker; fi
echo "waiting for every job to run…" >&2
for i in $(seq 1 600); do
    left=$(sql "SELECT (SELECT count(*) FROM outbox WHERE completed_at IS NULL)
                     + (SELECT count(*) FROM orders WHERE status = 'PENDING_PAYMENT')")
    [[ $left == 0 ]] && break
    if ((i % 20 == 0)); then echo "  $left jobs and pending orders left…" >&2; fi
    sleep 0.5
done
PENDING=$(sql "SELECT count(*) FROM orders WHERE status = 'PENDING_PAYMENT'")
STATUSES=$(sql "SELECT status || ' ' || count(*) FROM orders GROUP BY status ORDER BY 1" | tr '\n' ',' | sed 's/,$//; s/,/, /g')

# Per product: initial stock, stock now, units on live orders, sum of its stock movements.
sql "WITH sold AS (SELECT l.product_id, sum(l.quantity) AS units FROM order_lines l
                   JOIN orders o ON o.id = l.order_id
                   WHERE o.status NOT IN ('CANCELLED', 'PAYMENT_FAILED') GROUP BY 1),
          moved AS (SELECT product_id, sum(delta) AS delta FROM stock_movements GROUP BY 1),
          now AS (SELECT product_id, sum(stock) AS stock FROM product_variants GROUP BY 1)
     SELECT b.sku, b.stock, p.stock, coalesce(s.units, 0), coalesce(m.delta, 0) - b.moved
     FROM bench_initial b JOIN now p ON p.product_id = b.id
     LEFT JOIN sold s ON s.product_id = b.id LEFT JOIN moved m ON m.product_id = b.id
     ORDER BY b.sku" >"$WORK/stock"
OVERSOLD=$(awk '$3 < 0 || $2 - $3 != $4 || $5 != $3 - $2' "$WORK/stock")
# What the api logged as errors (an INTERNAL answer logs its cause), by message.
API_ERRORS=$(jq -r 'select(.level == "ERROR") | .fields.message + " " + (.fields.error // .fields.cause // "" | tostring)' \
    "$WORK/api.log" 2>/dev/null | cut -c1-160 | sort | uniq -c | sort -rn | head -5)
SCARCE_LEFT=$(awk -v n="$SCARCE" 'NR <= n { s += $3 } END { print s + 0 }' "$WORK/stock")
SCARCE_SOLD=$(awk -v n="$SCARCE" 'NR <= n { s += $4 } END { print s + 0 }' "$WORK/stock")
ORDERS_IN_DB=$(sql "SELECT count(*) FROM orders")
PLACED=$(awk '$1 == "RESULT" { s += $3 } END { print s }' "$WORK/warmup" "$WORK/throughput" "$WORK/sellout" "$WORK/limits")
SOCKET_ERRORS=$(awk '$1 == "RESULT" { s += $6 } END { print s }' "$WORK/warmup" "$WORK/throughput" "$WORK/sellout" "$WORK/limits")

# --- report --------------------------------------------------------------------------------
echo
if [[ -n ${BENCH_BIN_DIR:-} ]]; then BUILT="binaries of $BENCH_BIN_DIR"; else BUILT="commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"; fi
echo "Storefront placeOrder, $CUSTOMERS customers, wrk -t$THREADS -c$CONNECTIONS; $BUILT"
echo "release api + private Redis (dispatcher pushes after commit) + $([[ $WORKER == 1 ]] && echo "1 worker settling alongside" || echo "worker started after the load"); PostgreSQL ${ADMIN_URL%%@*}@…; $(nproc) CPUs shared by all"
echo "phases 1–2: RATE_LIMIT_PLACE_ORDER_USER=$ORDER_RATE COST_BUCKET_SIZE=$COST_SIZE COST_RESTORE_RATE=$COST_RATE; phase 3: defaults"
echo
printf '%-34s %7s %8s %9s %9s  %s\n' phase placed 'orders/s' p50 p99 'refused'
row() { # NAME LABEL
    awk -v label="$2" '
        $1 == "RESULT" { secs = $2; placed = $3; p50 = $4; p99 = $5 }
        $1 == "REFUSED" { refused = refused sprintf("%s %d, ", $2, $3) }
        END { sub(/, $/, "", refused)
              printf "%-34s %7d %8.0f %7.2fms %7.2fms  %s\n", label, placed, placed / secs, p50 / 1000, p99 / 1000, refused == "" ? "none" : refused }' "$WORK/$1"
}
row throughput "1 throughput ($DURATION, 1–3 lines)"
row sellout "2 sell-out ($SCARCE × $SCARCE_STOCK units, $SELLOUT_DURATION)"
row limits "3 default limits ($LIMITS_DURATION)"
echo
echo "CPU (100% = one CPU; machine: all processes, out of $(( $(nproc) * 100 ))%):"
for phase in throughput sellout limits; do printf '  %-10s %s\n' "$phase" "$(cat "$WORK/$phase.cpu")"; done
echo
# wrk stops at the deadline without reading the answers still in flight
# (at most one per connection and phase), whose orders may still commit.
IN_FLIGHT=$((4 * CONNECTIONS))
echo "After every job ran: orders $STATUSES; $ORDERS_IN_DB orders in the database, $PLACED answered as placed"
echo "  (+ up to $IN_FLIGHT unanswered at each phase's deadline); socket errors: $SOCKET_ERRORS"
if [[ -n $API_ERRORS ]]; then echo "api errors logged (count, message):"; sed 's/^/  /' <<<"$API_ERRORS"; fi
echo "scarce products: $SCARCE_SOLD of $((SCARCE * SCARCE_STOCK)) units sold, $SCARCE_LEFT left"
failed=0
if [[ -n $OVERSOLD ]]; then
    echo "oversell check: FAILED (sku initial now ordered movements):"
    sed 's/^/  /' <<<"$OVERSOLD"
    failed=1
else
    echo "oversell check: OK — for each of $(wc -l <"$WORK/stock") products, units on orders = stock decrease = stock movements; none below 0"
fi
if [[ $SCARCE_LEFT != 0 ]]; then echo "the scarce products did not sell out: no race for the last units was tested"; failed=1; fi
if [[ $PENDING != 0 ]]; then echo "$PENDING orders still PENDING_PAYMENT: the worker did not finish"; failed=1; fi
if ((ORDERS_IN_DB < PLACED || ORDERS_IN_DB > PLACED + IN_FLIGHT)); then
    echo "$ORDERS_IN_DB orders in the database for $PLACED answered as placed"
    failed=1
fi
exit "$failed"
