#!/usr/bin/env bash
# bench/api.sh — the api's two hottest reads against a bare async-graphql
# ceiling, interleaved in one run, reported as ratios (see bench/README.md).
#
#   bench/api.sh                      # 3 rounds of wrk -t2 -c64 -d10s per query and server:
#                                     # bare, api (catalog cache on), api-nocache (CATALOG_CACHE=off)
#   BENCH_ROUNDS=5 bench/api.sh       # more rounds, steadier medians
#   BENCH_REVS="11295f5 1a2ede7" bench/api.sh
#                                     # also the api as it was at those commits
#                                     # (before/after a change, in the same run)
#   BENCH_REVS=1a2ede7 BENCH_REVS_NOCACHE=1 bench/api.sh
#                                     # those commits with CATALOG_CACHE=off too
#   BENCH_REDIS=1 bench/api.sh        # every api on a private redis-server, as
#                                     # in production (rate limits, cost bucket)
#
# Needs: cargo, wrk, psql, curl, and a PostgreSQL server at BENCH_DATABASE_URL
# (else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres) where
# it may create and drop a database. perf (apt-get install linux-perf), when
# it may read the raw_syscalls tracepoint, adds system calls per request.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ADMIN_URL=${BENCH_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
WARMUP=${BENCH_WARMUP:-3s}
# The servers run under `timeout`, so even a SIGKILLed run leaves nothing behind for long.
LIFETIME=${BENCH_LIFETIME_SECS:-3600}

die() { echo "bench/api.sh: $*" >&2; exit 1; }
REVS=(${BENCH_REVS:-})
for tool in cargo wrk psql curl git; do
    command -v "$tool" >/dev/null || die "$tool is required (wrk: apt-get install wrk)"
done

# --- build -----------------------------------------------------------------
echo "building release binaries (api, example bare_graphql)…" >&2
(cd "$ROOT" && cargo build --release --quiet -p api --bin api --example bare_graphql)
BARE_BIN=$TARGET_DIR/release/examples/bare_graphql
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sf-bench-api.XXXXXX")
# The servers: "api" is the working tree; "api@REV" the api at commit REV.
# Older commits are built in one worktree (target/bench-revs/src), checked
# out at each in turn, into one target directory: the dependencies are
# built once, and each commit's binary is kept (target/bench-revs/bin), so
# a rerun builds nothing. (One worktree, not one per commit: with a worktree
# per commit, cargo would take one commit's workspace crates as fresh for
# another, as their build records point at the first worktree's files.)
# "api-nocache" is the same binary with CATALOG_CACHE=off: the uncached
# read path, side by side with the cached one.
SERVERS=(bare api api-nocache)
declare -A BIN=([api]="$TARGET_DIR/release/api" [api-nocache]="$TARGET_DIR/release/api")
declare -A SERVER_ENV=([api-nocache]="CATALOG_CACHE=off")
REV_SERVERS=()
REVS_DIR=$TARGET_DIR/bench-revs
for rev in "${REVS[@]}"; do
    short=$(git -C "$ROOT" rev-parse --short "$rev^{commit}") || die "unknown commit $rev"
    if [[ ! -x $REVS_DIR/bin/api-$short ]]; then
        echo "building the api at $short…" >&2
        if [[ ! -d $REVS_DIR/src ]]; then
            git -C "$ROOT" worktree add --quiet --detach "$REVS_DIR/src" "$short"
        else
            git -C "$REVS_DIR/src" checkout --quiet --force --detach "$short"
        fi
        (cd "$REVS_DIR/src" && CARGO_TARGET_DIR="$REVS_DIR/target" cargo build --release --quiet -p api --bin api)
        mkdir -p "$REVS_DIR/bin"
        cp "$REVS_DIR/target/release/api" "$REVS_DIR/bin/api-$short"
    fi
    SERVERS+=("api@$short")
    REV_SERVERS+=("api:api@$short")
    BIN[api@$short]="$REVS_DIR/bin/api-$short"
    if [[ ${BENCH_REVS_NOCACHE:-0} == 1 ]]; then
        SERVERS+=("api-nocache@$short")
        BIN[api-nocache@$short]="$REVS_DIR/bin/api-$short"
        SERVER_ENV[api-nocache@$short]="CATALOG_CACHE=off"
        REV_SERVERS+=("api-nocache:api-nocache@$short")
    fi
done
APIS=("${SERVERS[@]:1}")

# --- a fresh database per api, cleaned up on exit ----------------------------
DB_PREFIX="sf_bench_api_$(date +%s)_$$"
# ADMIN_URL with its database name replaced by $1 (query parameters kept).
db_url() {
    local base=${ADMIN_URL%%\?*} query rest
    query=${ADMIN_URL#"$base"}
    rest=${base#*://}
    if [[ $rest == */* ]]; then base=${base%/*}; fi
    echo "$base/$1$query"
}

declare -A PID=()
REDIS_PID=""
cleanup() {
    for pid in "${PID[@]}" $REDIS_PID; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    for i in "${!APIS[@]}"; do
        psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"${DB_PREFIX}_$i\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
for i in "${!APIS[@]}"; do
    psql "$ADMIN_URL" -qAtc "CREATE DATABASE \"${DB_PREFIX}_$i\"" >/dev/null || die "cannot create a database at $ADMIN_URL"
done

REDIS_URL=""
if [[ ${BENCH_REDIS:-0} == 1 ]]; then
    command -v redis-server >/dev/null || die "BENCH_REDIS=1 needs redis-server"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    REDIS_URL="redis://127.0.0.1:$port"
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# Waits for "http://127.0.0.1:PORT/graphql" in a log; prints that URL.
wait_for_url() {
    local log=$1 pid=$2 url
    for _ in $(seq 1 300); do
        url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/graphql' "$log" | head -n1 || true)
        if [[ -n $url ]]; then echo "$url"; return; fi
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "the server exited"; }
        sleep 0.2
    done
    cat "$log" >&2
    die "the server did not start within 60 s"
}

# --- the servers -------------------------------------------------------------
# Every api keeps a pool open, loaded or not: together they must fit in the
# server's max_connections (less a few for psql and the others), so with
# several apis each gets the same smaller pool (unless DATABASE_MAX_CONNECTIONS
# is set), else the last started would starve.
MAX_CONNECTIONS=$(psql "$ADMIN_URL" -qAtc "SHOW max_connections")
POOL=${DATABASE_MAX_CONNECTIONS:-$(( (MAX_CONNECTIONS - 10) / ${#APIS[@]} < 20 ? (MAX_CONNECTIONS - 10) / ${#APIS[@]} : 20 ))}

# A clean environment, so nothing from the caller's shell (REDIS_URL, .env,
# RUST_LOG…) changes what is measured; cwd is a fresh directory so no .env is read.
# wrk is one client asking thousands of times a second, far beyond what its
# query cost bucket holds and restores (1000 points, 50 a second): its
# bucket holds 100,000 and refills a million a second instead, so every
# request is still charged and refunded (the cost of the check is measured)
# but none is refused. (Older commits ignore the two variables.)
declare -A URL=() DB_OF=()
for i in "${!APIS[@]}"; do
    s=${APIS[$i]}
    dir="$WORK/run-$i"
    mkdir -p "$dir/var"
    (cd "$dir" && exec env -i PATH="$PATH" HOME="$HOME" \
        APP_ENV=development DATABASE_URL="$(db_url "${DB_PREFIX}_$i")" SEED_DEMO_DATA=true EMBEDDED_WORKER=false \
        COST_BUCKET_SIZE=100000 COST_RESTORE_RATE=1000000 \
        GRAPHIQL=false API_BIND=127.0.0.1:0 DATA_DIR="$dir/var" LOG_FORMAT=json \
        RUST_LOG=info,sqlx=warn ${REDIS_URL:+REDIS_URL=$REDIS_URL} \
        DATABASE_MAX_CONNECTIONS="$POOL" ${SERVER_ENV[$s]:-} \
        timeout -k 10 "$LIFETIME" "${BIN[$s]}" serve) >"$dir/api.log" 2>&1 &
    PID[$s]=$!
    DB_OF[$s]="${DB_PREFIX}_$i"
    URL[$s]=$(wait_for_url "$dir/api.log" "${PID[$s]}")
done
(cd "$WORK" && exec timeout -k 10 "$LIFETIME" "$BARE_BIN" 127.0.0.1:0) >"$WORK/bare.log" 2>&1 &
PID[bare]=$!
URL[bare]=$(wait_for_url "$WORK/bare.log" "${PID[bare]}")

# --- the queries ---------------------------------------------------------------
PRODUCT_FIELDS='id sku slug name description price { amountMinor currency formatted } stock active createdAt'
LIST_BODY="{\"query\":\"{ products(first: 20) { edges { cursor node { $PRODUCT_FIELDS } } pageInfo { hasNextPage endCursor } } }\"}"
SLUG_BODY="{\"query\":\"{ product(slug: \\\"black-tee\\\") { $PRODUCT_FIELDS } }\"}"
QUERIES=(list slug)
declare -A BODY=([list]="$LIST_BODY" [slug]="$SLUG_BODY")
declare -A LABEL=([list]='products(first: 20)' [slug]='product(slug: "black-tee")')

for q in "${QUERIES[@]}"; do
    cat >"$WORK/$q.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[${BODY[$q]}]==]
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %d %d %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
LUA
done

# Both servers must give the same, error-free answer before being loaded.
for q in "${QUERIES[@]}"; do
    for s in "${SERVERS[@]}"; do
        answer=$(curl -sS -H 'Content-Type: application/json' --data-binary "${BODY[$q]}" "${URL[$s]}")
        if [[ $answer != *'"data"'* || $answer == *'"errors"'* || $answer != *'black-tee'* ]]; then
            die "$s answered ${LABEL[$q]} with: ${answer:0:400}"
        fi
        if [[ $q == list ]]; then
            nodes=$(grep -o '"cursor"' <<<"$answer" | wc -l)
            [[ $nodes -eq 20 ]] || die "$s listed $nodes products, not 20"
        fi
    done
done

# --- load --------------------------------------------------------------------
# The server's own pid (the child of its `timeout`).
server_pid() {
    local children
    children=$(cat "/proc/$1/task/$1/children")
    echo "${children%% *}"
}
# CPU ticks (user + system) used so far by the given pids.
ticks_of() {
    local total=0 pid stat
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        total=$((total + $(awk '{ print $12 + $13 }' <<<"$stat")))
    done
    echo "$total"
}
# User and system CPU ticks used so far by one pid.
user_system_of() {
    local stat
    stat=$(cat "/proc/$1/stat")
    awk '{ print $12, $13 }' <<<"${stat##*) }"
}
# Busy and total ticks of the whole machine.
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
HZ=$(getconf CLK_TCK)
# System calls are counted with perf's raw_syscalls tracepoint where the
# kernel lets perf read it (else the column shows "-").
PERF_SYSCALLS=0
if command -v perf >/dev/null && perf stat -x, -e raw_syscalls:sys_enter -o /dev/null true 2>/dev/null; then
    PERF_SYSCALLS=1
fi
# Transactions committed so far in server $1's database (0 for bare): every
# statement a read path runs outside a transaction is one.
statements_of() {
    [[ -n ${DB_OF[$1]:-} ]] || { echo 0; return; }
    psql "$ADMIN_URL" -qAtc "SELECT xact_commit FROM pg_stat_database WHERE datname = '${DB_OF[$1]}'"
}
# Prints "rps p50_us p99_us non2xx socket_errors server_cores postgres_cores
# machine_busy_% user_us system_us postgres_us syscalls statements": the CPU
# the server and PostgreSQL (every postgres process on this host) used
# during the load, in cores, how busy the whole machine was, then per
# request: the server's user and system CPU, PostgreSQL's CPU, the server's
# system calls and its database's statements (transactions; PostgreSQL
# publishes them about once a second, so this is approximate).
load() {
    local server=$1 q=$2 duration=$3 out pid pg pg0 pg1 busy0 total0 busy1 total1 started ended
    local user0 system0 user1 system1 statements0 statements1 perf_out=$WORK/perf.$$ perf_pid="" syscalls=-
    pid=$(server_pid "${PID[$server]}")
    pg=$(pgrep -x postgres | tr '\n' ' ' || true)
    pg0=$(ticks_of $pg)
    read -r user0 system0 < <(user_system_of "$pid")
    statements0=$(statements_of "$server")
    read -r busy0 total0 < <(machine_ticks)
    if ((PERF_SYSCALLS)); then
        perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$perf_out" -- sleep "$duration" 2>/dev/null &
        perf_pid=$!
    fi
    started=$(date +%s.%N)
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" -s "$WORK/$q.lua" "${URL[$server]}")
    ended=$(date +%s.%N)
    read -r busy1 total1 < <(machine_ticks)
    read -r user1 system1 < <(user_system_of "$pid")
    pg1=$(ticks_of $pg)
    statements1=$(statements_of "$server")
    if [[ -n $perf_pid ]]; then
        wait "$perf_pid" || true
        syscalls=$(awk -F, '/raw_syscalls/ { print $1 }' "$perf_out" 2>/dev/null)
        syscalls=${syscalls:--}
    fi
    echo "$(grep '^RESULT ' <<<"$out" | cut -d' ' -f2-) $(awk -v s="$((user1 - user0 + system1 - system0))" \
        -v p="$((pg1 - pg0))" -v b="$((busy1 - busy0))" -v t="$((total1 - total0))" \
        -v u="$((user1 - user0))" -v k="$((system1 - system0))" -v sc="$syscalls" \
        -v st="$((statements1 - statements0))" -v rps="$(grep '^RESULT ' <<<"$out" | cut -d' ' -f2)" \
        -v hz="$HZ" -v d="$(awk -v a="$started" -v b="$ended" 'BEGIN { print b - a }')" \
        'BEGIN { n = rps * d; if (n < 1) n = 1; us = 1e6 / hz / n
                 printf "%.2f %.2f %.0f %.1f %.1f %.1f %s %.3f", s / hz / d, p / hz / d, t ? 100 * b / t : 0,
                     u * us, k * us, p * us, sc == "-" ? "-" : sprintf("%.2f", sc / n), st / n }')"
}

echo "warming up (${WARMUP} per server and query)…" >&2
for q in "${QUERIES[@]}"; do for s in "${SERVERS[@]}"; do load "$s" "$q" "$WARMUP" >/dev/null; done; done

RESULTS=$WORK/results
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    # Rotate which server goes first, so drift does not favour one.
    order=("${SERVERS[@]:round % ${#SERVERS[@]}}" "${SERVERS[@]:0:round % ${#SERVERS[@]}}")
    for q in "${QUERIES[@]}"; do
        for s in "${order[@]}"; do
            echo "round $round/$ROUNDS: $s ${LABEL[$q]}…" >&2
            echo "$q $s $round $(load "$s" "$q" "$DURATION")" >>"$RESULTS"
        done
    done
done

# VmHWM of the server under `timeout` $1.
vm() {
    awk -v k="$2:" '$1 == k { printf "%.1f MiB", $2 / 1024 }' "/proc/$(server_pid "$1")/status"
}
HWM=""
for s in "${SERVERS[@]}"; do HWM+="$s $(vm "${PID[$s]}" VmHWM), "; done

# --- report ------------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_of() { awk -v q="$1" -v s="$2" -v c="$3" '$1 == q && $2 == s { print $c }' "$RESULTS"; }

echo
echo "Storefront api vs bare async-graphql (ceiling), one interleaved run"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, medians; $(nproc) CPUs shared by server, wrk and PostgreSQL"
echo "each api's pool: $POOL connections (PostgreSQL max_connections $MAX_CONNECTIONS, ${#APIS[@]} apis)"
echo "api: release, PostgreSQL ${ADMIN_URL%%@*}@…, 32 demo products, ${REDIS_URL:+private }${REDIS_URL:-no }Redis, no embedded worker; commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
declare -A RATIO=() P99=()
printf '%-28s %-12s %10s %9s %9s %7s %7s %7s %5s  %s\n' query server 'req/s' p50 p99 ratio \
    'server' 'pg' 'busy' 'ratio per round'
for q in "${QUERIES[@]}"; do
    for s in "${SERVERS[@]}"; do
        rps=$(column_of "$q" "$s" 4 | median)
        p50=$(column_of "$q" "$s" 5 | median)
        p99=$(column_of "$q" "$s" 6 | median)
        server_cpu=$(column_of "$q" "$s" 9 | median)
        pg_cpu=$(column_of "$q" "$s" 10 | median)
        busy=$(column_of "$q" "$s" 11 | median)
        if [[ $s == bare ]]; then
            ratio=1.00
            rounds=""
        else
            per_round=$(awk -v q="$q" -v s="$s" '$1 == q { r[$3, $2] = $4 } END { for (k in r) { split(k, p, SUBSEP); if (p[2] == s) printf "%.3f\n", r[k] / r[p[1], "bare"] } }' "$RESULTS" | sort -g)
            ratio=$(median <<<"$per_round" | awk '{ printf "%.2f", $1 }')
            rounds=$(tr '\n' ' ' <<<"$per_round" | awk '{ $1 = $1; print }')
        fi
        RATIO[$q $s]=$ratio
        P99[$q $s]=$(awk -v v="$p99" 'BEGIN { print v / 1000 }')
        printf '%-28s %-12s %10.0f %7.2fms %7.2fms %7s %7s %7s %4s%%  %s\n' "${LABEL[$q]}" "$s" "$rps" \
            "$(awk -v v="$p50" 'BEGIN { print v / 1000 }')" "$(awk -v v="$p99" 'BEGIN { print v / 1000 }')" "$ratio" \
            "$server_cpu" "$pg_cpu" "$busy" "$rounds"
    done
done
echo "(server, pg: CPU cores used by the server and by all postgres processes during the load; busy: the whole machine)"
echo
echo "per request (medians): the server's user and system CPU, PostgreSQL's CPU, the server's system calls, its statements"
printf '%-28s %-12s %9s %9s %9s %9s %11s\n' query server 'user µs' 'system µs' 'pg µs' syscalls statements
for q in "${QUERIES[@]}"; do
    for s in "${SERVERS[@]}"; do
        printf '%-28s %-12s %9s %9s %9s %9s %11s\n' "${LABEL[$q]}" "$s" "$(column_of "$q" "$s" 12 | median)" \
            "$(column_of "$q" "$s" 13 | median)" "$(column_of "$q" "$s" 14 | median)" \
            "$( ((PERF_SYSCALLS)) && column_of "$q" "$s" 15 | median || echo -)" "$(column_of "$q" "$s" 16 | median)"
    done
done
echo
echo "peak RSS (VmHWM): ${HWM%, }"
# The performance issue's read-path targets, met or not in this run.
target() {
    local what=$1 value=$2 op=$3 bound=$4 met
    met=$(awk -v v="$value" -v b="$bound" -v op="$op" 'BEGIN { print ((op == ">=" ? v >= b : v <= b) ? "met" : "NOT met") }')
    printf '  %-44s %8s  (target %s %s) %s\n' "$what" "$value" "$op" "$bound" "$met"
}
echo "targets:"
target "listing with the cache, ratio to bare" "${RATIO[list api]}" ">=" 0.8
target "by slug with the cache, ratio to bare" "${RATIO[slug api]}" ">=" 0.8
target "listing without the cache, ratio to bare" "${RATIO[list api-nocache]}" ">=" 0.5
target "by slug without the cache, ratio to bare" "${RATIO[slug api-nocache]}" ">=" 0.35
for q in "${QUERIES[@]}"; do
    for s in api api-nocache; do target "p99 $s ${LABEL[$q]} (ms)" "${P99[$q $s]}" "<=" 50; done
done
for s in api api-nocache; do
    target "peak RSS $s (MiB)" "$(vm "${PID[$s]}" VmHWM | cut -d' ' -f1)" "<=" 64
done
# Before/after: the working tree's api against each older one (cached
# against cached, uncached against uncached), round by round.
for pair in "${REV_SERVERS[@]}"; do
    base=${pair%%:*} rev_server=${pair#*:}
    for q in "${QUERIES[@]}"; do
        per_round=$(awk -v q="$q" -v s="$rev_server" -v b="$base" '$1 == q { r[$3, $2] = $4 } END { for (k in r) { split(k, p, SUBSEP); if (p[2] == b) printf "%.3f\n", r[k] / r[p[1], s] } }' "$RESULTS" | sort -g)
        printf '%s / %-12s %-28s %s  (per round: %s)\n' "$base" "$rev_server" "${LABEL[$q]}" \
            "$(median <<<"$per_round" | awk '{ printf "%.2f", $1 }')" "$(tr '\n' ' ' <<<"$per_round" | awk '{ $1 = $1; print }')"
    done
done
errors=$(awk '{ s += $7 + $8 } END { print s + 0 }' "$RESULTS")
if ((errors > 0)); then
    echo "WARNING: $errors non-2xx responses or socket errors during the run:"
    awk '$7 + $8 > 0 { print "  " $0 }' "$RESULTS"
fi
