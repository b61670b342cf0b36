#!/usr/bin/env bash
# bench/order_cost.sh — what one order costs PostgreSQL and Redis: SQL
# statements (pg_stat_statements) and Redis commands (INFO commandstats) for
# placeOrder through settlement and both emails, with the background that
# idle processes cost (sweepers, heartbeats, queue polls) measured apart and
# subtracted. The figures of docs/OPERATIONS.md's capacity model.
#
#   bench/order_cost.sh                   # 50 orders, 20 s idle baseline
#   BENCH_ORDERS=200 BENCH_IDLE_SECS=30 bench/order_cost.sh
#   BENCH_BIN_DIR=/some/release bench/order_cost.sh   # those api and worker binaries, not built here
#
# Starts its own PostgreSQL (with pg_stat_statements) and redis-server on
# free loopback ports, one `api` and one `worker run` process with default
# settings (emails as .eml files), all under a temporary directory removed
# on exit. The api and the worker log in as different PostgreSQL roles, so
# their statements are counted apart. Counts do not depend on the build
# profile: BENCH_PROFILE=release only changes which binaries run (default:
# the debug ones, usually already built).
#
# Needs: cargo, psql, curl, jq, the PostgreSQL server binaries and
# redis-server (found as scripts/test finds them).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
ORDERS=${BENCH_ORDERS:-50}
IDLE_SECS=${BENCH_IDLE_SECS:-20}
PROFILE=${BENCH_PROFILE:-debug}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sf-order-cost.XXXXXX")
chmod 755 "$WORK"
SERVICES_DIR=$WORK/services
SERVICES_PROG=bench/order_cost.sh
# shellcheck source-path=SCRIPTDIR source=../scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

for tool in cargo psql curl jq; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
find_pg_bin_dir || die "PostgreSQL server binaries not found (apt-get install postgresql)"
find_redis_server || die "redis-server not found (apt-get install redis-server)"

API_PID=""
WORKER_PID=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    set +e
    [[ -n $API_PID ]] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null
    [[ -n $WORKER_PID ]] && kill "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null
    stop_private_services
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- build --------------------------------------------------------------------
# BENCH_BIN_DIR: run the api and worker found there (an older build, for a
# before/after) instead of building the working tree's.
BIN_DIR=${BENCH_BIN_DIR:-}
if [[ -n $BIN_DIR ]]; then
    PROFILE="prebuilt ($BIN_DIR)"
else
    echo "building api and worker ($PROFILE)…" >&2
    if [[ $PROFILE == release ]]; then
        (cd "$ROOT" && cargo build --release --quiet -p api -p worker)
    else
        (cd "$ROOT" && cargo build --quiet -p api -p worker)
    fi
    BIN_DIR=$TARGET_DIR/$PROFILE
fi
API_BIN=$BIN_DIR/api
WORKER_BIN=$BIN_DIR/worker
[[ -x $API_BIN && -x $WORKER_BIN ]] || die "no api and worker in $BIN_DIR"

# --- PostgreSQL with pg_stat_statements, Redis -----------------------------------
lock_services_dir
start_private_pg
cat >>"$PG_DATA_DIR/postgresql.conf" <<EOF

# --- bench/order_cost.sh ---
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.track_utility = on
pg_stat_statements.max = 10000
EOF
as_pg "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA_DIR" -w -t 60 -o "-p $PG_PORT" -l "$PG_WORK_DIR/postgres.log" \
    restart >/dev/null {SERVICES_LOCK_FD}>&-
PG_ADMIN="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
PG_DB="postgres://postgres@127.0.0.1:$PG_PORT/storefront"
psql -X -q "$PG_ADMIN" -v ON_ERROR_STOP=1 <<'SQL'
CREATE ROLE sf_api LOGIN SUPERUSER;
CREATE ROLE sf_worker LOGIN SUPERUSER;
CREATE DATABASE storefront;
SQL
psql -X -q "$PG_DB" -c 'CREATE EXTENSION pg_stat_statements' >/dev/null
start_private_redis
REDIS="redis-cli -h 127.0.0.1 -p $REDIS_PORT"
command -v redis-cli >/dev/null || die "redis-cli is required"

# --- api and worker ------------------------------------------------------------------
API_PORT=$(free_port)
WORKER_PORT=$(free_port)
API="http://127.0.0.1:$API_PORT"
mkdir -p "$WORK/var"
# ROLE PROGRAM ARGS...: runs PROGRAM in place of the calling (sub)shell, with
# the shared environment, in $WORK (no .env); `run … &` makes $! its pid.
# One customer places every order, beyond its order limit (30/h) and its
# query cost bucket: the limit is off and the bucket roomy, so each order
# still pays its rate-limit and cost-bucket calls (they are counted) but
# none is refused.
run() {
    local role=$1
    shift
    cd "$WORK" && exec env -i PATH="$PATH" HOME="$HOME" APP_ENV=development \
        DATABASE_URL="postgres://$role@127.0.0.1:$PG_PORT/storefront" \
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT" EMBEDDED_WORKER=false SEED_DEMO_DATA=false \
        GRAPHIQL=false JWT_SECRET=bench-order-cost-secret-bench-order-cost \
        RATE_LIMIT_PLACE_ORDER_USER=off COST_BUCKET_SIZE=100000 COST_RESTORE_RATE=1000000 \
        API_BIND="127.0.0.1:$API_PORT" WORKER_BIND="127.0.0.1:$WORKER_PORT" DATA_DIR="$WORK/var" \
        LOG_FORMAT=json RUST_LOG=info,sqlx=warn "$@"
}
ADMIN_PASSWORD=bench-admin-password
(run sf_api "$API_BIN" create-admin --email admin@example.com --password "$ADMIN_PASSWORD") >"$WORK/admin.log" 2>&1 ||
    { cat "$WORK/admin.log" >&2; die "create-admin failed"; }
run sf_api "$API_BIN" serve >"$WORK/api.log" 2>&1 &
API_PID=$!
run sf_worker "$WORKER_BIN" run >"$WORK/worker.log" 2>&1 &
WORKER_PID=$!
wait_ready() { # URL PID LOG
    for _ in $(seq 1 300); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "$3: the process exited"; }
        sleep 0.2
    done
    die "$1 did not answer within 60 s"
}
wait_ready "$API/readyz" "$API_PID" "$WORK/api.log"
wait_ready "http://127.0.0.1:$WORKER_PORT/readyz" "$WORKER_PID" "$WORK/worker.log"

# --- GraphQL --------------------------------------------------------------------------
gql() { # TOKEN QUERY VARIABLES_JSON → the response body
    curl -sS -H 'content-type: application/json' ${1:+-H "authorization: Bearer $1"} \
        --data "$(jq -nc --arg q "$2" --argjson v "$3" '{query: $q, variables: $v}')" "$API/graphql"
}
field() { # JQ_PATH BODY → the value, or die showing the body
    local value
    value=$(jq -er "$1" <<<"$2") || die "unexpected answer: ${2:0:400}"
    echo "$value"
}
ADMIN_TOKEN=$(field .data.login.accessToken "$(gql "" 'mutation($i: LoginInput!) { login(input: $i) { accessToken } }' \
    "{\"i\": {\"email\": \"admin@example.com\", \"password\": \"$ADMIN_PASSWORD\"}}")")
PRODUCT=$(field .data.createProduct.id "$(gql "$ADMIN_TOKEN" 'mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }' \
    '{"i": {"sku": "COST-1", "slug": "cost-1", "name": "Cost", "description": "One unit", "priceMinor": 1500, "currency": "EUR", "stock": 1000000}}')")
CUSTOMER_TOKEN=$(field .data.register.accessToken "$(gql "" 'mutation($i: RegisterInput!) { register(input: $i) { accessToken } }' \
    '{"i": {"email": "cost@example.com", "password": "correct horse battery", "name": "Cost"}}')")

sql() { psql -X -q -A -t "$PG_DB" -c "$1"; }
mails() { find "$WORK/var/mail" -name '*.eml' 2>/dev/null | wc -l; }
# Waits until every outbox row is completed and MAIL emails were written.
wait_settled() {
    local mail=$1 orders=${2:-0}
    for _ in $(seq 1 600); do
        if [[ $(sql "SELECT count(*) FROM outbox WHERE completed_at IS NULL") == 0 &&
            $(mails) -ge $mail &&
            $(sql "SELECT count(*) FROM orders WHERE status = 'PAID'") -ge $orders ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "jobs did not finish within 60 s: $(sql "SELECT job_name, count(*) FROM outbox WHERE completed_at IS NULL GROUP BY 1")"
}
wait_settled 1

# --- counting ---------------------------------------------------------------------------
reset_counts() {
    sql "SELECT pg_stat_statements_reset()" >/dev/null
    $REDIS config resetstat >/dev/null
}
# Writes "ROLE KIND CALLS" (KIND: the statement's first word, or FK-CHECK
# for the foreign-key checks PostgreSQL's triggers run inside an INSERT) and
# "redis COMMAND CALLS" lines to FILE. The probes of this script run as
# `postgres` and are left out; so are Redis' `info` and `config` (ours).
snapshot() {
    sql "SELECT r.rolname,
                CASE WHEN s.query LIKE '%FOR KEY SHARE OF x' THEN 'FK-CHECK'
                     ELSE upper(split_part(ltrim(s.query), ' ', 1)) END,
                sum(s.calls)
         FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
         WHERE r.rolname IN ('sf_api', 'sf_worker') GROUP BY 1, 2" | tr '|' ' ' >"$1"
    $REDIS info commandstats | tr -d '\r' |
        sed -nE 's/^cmdstat_([^:]+):calls=([0-9]+),.*/redis \1 \2/p' |
        grep -vE '^redis (info|config)[ |]' >>"$1" || true
}
top_statements() { # the statements of the order phase, most called first
    sql "SELECT r.rolname, s.calls, round((s.total_exec_time / s.calls)::numeric, 3),
                left(regexp_replace(s.query, '\s+', ' ', 'g'), 100)
         FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
         WHERE r.rolname IN ('sf_api', 'sf_worker') ORDER BY s.calls DESC LIMIT 40" | tr '|' '\t'
}
now() { date +%s.%N; }

# CPU seconds used so far: "WHO SECONDS" for the api, the worker, Redis, and
# "pg:PID SECONDS" for each PostgreSQL process serving the api and the worker
# or working for everyone (WAL writer, checkpointer, autovacuum…) — not the
# short-lived backends of this script's own psql probes.
CLK_TCK=$(getconf CLK_TCK)
proc_cpu() { # PID → utime + stime, in seconds (0 when gone)
    awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
cpu_sample() {
    local pid
    echo "api $(proc_cpu "$API_PID")"
    echo "worker $(proc_cpu "$WORKER_PID")"
    $REDIS info cpu | tr -d '\r' | awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { print "redis " s }'
    for pid in $(sql "SELECT pid FROM pg_stat_activity
                      WHERE usename IN ('sf_api', 'sf_worker') OR backend_type <> 'client backend'"); do
        echo "pg:$pid $(proc_cpu "$pid")"
    done
}
# cpu_used BEFORE AFTER → "WHO SECONDS" used in between (PostgreSQL's
# processes summed as "postgres"; one started in between counts from 0).
cpu_used() {
    awk 'FNR == NR { a[$1] = $2; next }
         { who = $1 ~ /^pg:/ ? "postgres" : $1; used[who] += $2 - a[$1] }
         END { for (w in used) printf "%s %.4f\n", w, used[w] }' "$1" "$2" | sort
}

echo "idle baseline: ${IDLE_SECS} s…" >&2
reset_counts
cpu_sample >"$WORK/cpu0"
start=$(now)
sleep "$IDLE_SECS"
snapshot "$WORK/idle"
cpu_sample >"$WORK/cpu1"
IDLE_TIME=$(awk -v a="$start" -v b="$(now)" 'BEGIN { print b - a }')

echo "placing $ORDERS orders one after another, waiting for every job…" >&2
reset_counts
DB_BYTES_BEFORE=$(sql "SELECT pg_database_size('storefront')")
cpu_sample >"$WORK/cpu2"
start=$(now)
for _ in $(seq 1 "$ORDERS"); do
    key=$(cat /proc/sys/kernel/random/uuid)
    field .data.placeOrder.id "$(gql "$CUSTOMER_TOKEN" 'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }' \
        "{\"i\": {\"lines\": [{\"productId\": \"$PRODUCT\", \"quantity\": 1}], \"paymentToken\": \"sandbox_ok\", \"idempotencyKey\": \"$key\"}}")" >/dev/null
done
wait_settled $((1 + 2 * ORDERS)) "$ORDERS"
snapshot "$WORK/orders"
cpu_sample >"$WORK/cpu3"
sql "CHECKPOINT" >/dev/null
DB_BYTES_AFTER=$(sql "SELECT pg_database_size('storefront')")
ROWS=$(sql "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE n_live_tup > 0 ORDER BY 1" | tr '|' ' ' | tr '\n' ';')
ORDER_TIME=$(awk -v a="$start" -v b="$(now)" 'BEGIN { print b - a }')
top_statements >"$WORK/top"

echo "reads: 100 × products(first: 20), 100 × order(id) with lines and payment…" >&2
ORDER_ID=$(sql "SELECT id FROM orders LIMIT 1")
reset_counts
cpu_sample >"$WORK/cpu4"
start=$(now)
for _ in $(seq 1 100); do
    gql "" '{ products(first: 20) { edges { node { id sku slug name description price { formatted } stock active } } } }' '{}' >/dev/null
done
snapshot "$WORK/listing"
cpu_sample >"$WORK/cpu5"
LISTING_TIME=$(awk -v a="$start" -v b="$(now)" 'BEGIN { print b - a }')
reset_counts
cpu_sample >"$WORK/cpu6"
start=$(now)
for _ in $(seq 1 100); do
    gql "$CUSTOMER_TOKEN" 'query($id: ID!) { order(id: $id) { status total { formatted } lines { quantity product { name } } payment { status } } }' \
        "{\"id\": \"$ORDER_ID\"}" >/dev/null
done
snapshot "$WORK/order_read"
cpu_sample >"$WORK/cpu7"
ORDER_READ_TIME=$(awk -v a="$start" -v b="$(now)" 'BEGIN { print b - a }')

# --- report -------------------------------------------------------------------------------
# per_unit FILE UNITS [IDLE_FILE IDLE_SECS PHASE_SECS]: "WHO WHAT PER_UNIT",
# the idle rate times the phase's duration subtracted first.
per_unit() {
    awk -v units="$2" -v idle_secs="${4:-1}" -v secs="${5:-0}" '
        FILENAME == ARGV[1] { idle[$1 " " $2] = $3; next }
        { total[$1 " " $2] = $3 }
        END {
            for (k in idle) if (!(k in total)) total[k] = 0
            for (k in total) printf "%s %.2f\n", k, (total[k] - idle[k] / idle_secs * secs) / units
        }' "${3:-/dev/null}" "$1" | sort
}
sum_role() { awk -v r="$1" '$1 == r { s += $3 } END { printf "%.1f", s }'; }

echo
echo "Storefront: what one order costs PostgreSQL and Redis (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "1 api + 1 worker ($PROFILE), default settings; $ORDERS sandbox_ok orders one after another, each"
echo "placed, settled, confirmed and receipted (emails as files); background of idle processes"
echo "measured for ${IDLE_TIME%.*} s and subtracted over the ${ORDER_TIME%.*} s the orders took."
echo
echo "Background, idle (per second, both processes):"
awk -v s="$IDLE_TIME" '{ t[$1] += $3 } END { for (r in t) printf "  %-10s %6.1f\n", r, t[r] / s }' "$WORK/idle" | sort
echo
PER_ORDER=$(per_unit "$WORK/orders" "$ORDERS" "$WORK/idle" "$IDLE_TIME" "$ORDER_TIME")
echo "Per order (placeOrder → PAID, confirmation and receipt sent):"
printf '  %-10s %-24s %8s\n' who what count
awk '$3 + 0 >= 0.05 || $3 + 0 <= -0.05 { printf "  %-10s %-24s %8.2f\n", $1, $2, $3 }' <<<"$PER_ORDER"
printf '  %-10s %-24s %8s\n' sf_api 'all statements' "$(sum_role sf_api <<<"$PER_ORDER")"
printf '  %-10s %-24s %8s\n' sf_worker 'all statements' "$(sum_role sf_worker <<<"$PER_ORDER")"
printf '  %-10s %-24s %8s\n' redis 'all commands' "$(sum_role redis <<<"$PER_ORDER")"
echo
echo "CPU per order, milliseconds (idle background subtracted; api and worker are $PROFILE builds):"
cpu_used "$WORK/cpu0" "$WORK/cpu1" >"$WORK/cpu_idle"
cpu_used "$WORK/cpu2" "$WORK/cpu3" >"$WORK/cpu_orders"
awk -v n="$ORDERS" -v idle="$IDLE_TIME" -v secs="$ORDER_TIME" '
    FNR == NR { bg[$1] = $2; next }
    { printf "  %-10s %8.2f   (idle: %.1f ms/s)\n", $1, ($2 - bg[$1] / idle * secs) / n * 1000, bg[$1] / idle * 1000 }' \
    "$WORK/cpu_idle" "$WORK/cpu_orders"
echo
echo "Database growth: $(( (DB_BYTES_AFTER - DB_BYTES_BEFORE) / ORDERS )) bytes per order (tables and indexes;"
echo "  rows now: $ROWS)"
echo
echo "Per read request:"
cpu_used "$WORK/cpu4" "$WORK/cpu5" >"$WORK/cpu_listing"
cpu_used "$WORK/cpu6" "$WORK/cpu7" >"$WORK/cpu_order_read"
declare -A PHASE_TIME=([listing]=$LISTING_TIME [order_read]=$ORDER_READ_TIME)
for phase in listing order_read; do
    per=$(per_unit "$WORK/$phase" 100 "$WORK/idle" "$IDLE_TIME" "${PHASE_TIME[$phase]}")
    printf '  %-12s statements %5s, Redis commands %5s; CPU ms:%s\n' "$phase" \
        "$(sum_role sf_api <<<"$per")" "$(sum_role redis <<<"$per")" \
        "$(awk -v idle="$IDLE_TIME" -v secs="${PHASE_TIME[$phase]}" '
            FNR == NR { bg[$1] = $2; next }
            { printf " %s %.2f", $1, ($2 - bg[$1] / idle * secs) * 10 }' "$WORK/cpu_idle" "$WORK/cpu_$phase")"
done
echo
echo "The order phase's statements, most called first (calls include the background; mean execution ms):"
awk -F '\t' '{ printf "  %-9s %6d %7.3f  %s\n", $1, $2, $3, $4 }' "$WORK/top"
