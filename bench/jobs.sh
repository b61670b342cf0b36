#!/usr/bin/env bash
# bench/jobs.sh — end-to-end job throughput: outbox → queue → worker →
# outcome recorded, for 1, 2 and 4 `worker run` processes on Redis +
# PostgreSQL, and one worker on the embedded SQLite queue (see bench/README.md).
# Each Redis configuration runs twice: the no-op job (`bench_noop.v1`, the
# worker built with the `bench-noop` feature: the pipeline alone) and the
# cheapest real job (a settlement of a payment already SETTLED).
#
#   bench/jobs.sh                         # 20,000 jobs per configuration
#   BENCH_JOBS=50000 BENCH_PROCS="1 4" bench/jobs.sh
#   SWEEP_INTERVAL_MS=100 bench/jobs.sh   # worker settings pass through (listed below)
#   BENCH_SQLITE=0 bench/jobs.sh          # Redis configurations only
#   BENCH_PROCS=" " BENCH_PEERS=0 bench/jobs.sh   # the SQLite runs only
#   BENCH_SQLITE_JOBS="2000 20000" bench/jobs.sh  # the SQLite sizes (default)
#   BENCH_PEERS=0 bench/jobs.sh           # without the peers (below)
#
# The peers a user would pick instead run in the same run, on the same
# PostgreSQL and Redis, with the same number of no-op jobs (bench/peers/,
# versions pinned in its package-lock.json, installed with `npm ci` on first
# use): graphile-worker 0.18 in its default mode and with its performance
# docs' settings (local queue of 500, batched completion), and BullMQ 5.
#
# Needs: cargo, psql, redis-server, and a PostgreSQL server at
# BENCH_DATABASE_URL (else DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/postgres) where it may create and drop
# databases. Redis is a private redis-server on a free port (no
# persistence), or BENCH_REDIS_URL (a fresh key namespace per run).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ADMIN_URL=${BENCH_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
JOBS=${BENCH_JOBS:-20000}
PROCS=${BENCH_PROCS:-1 2 4}
TIMEOUT_SECS=${BENCH_TIMEOUT_SECS:-600}
LIFETIME=$((TIMEOUT_SECS + 60))
# Worker settings: these defaults, or the caller's value when set.
WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-64}
# The SQLite runs: jobs at a time, and the sizes run (the rate of the last
# over the first is the "no slow-down as the outbox grows" ratio).
SQLITE_CONCURRENCY=${SQLITE_CONCURRENCY:-8}
SQLITE_JOBS=${BENCH_SQLITE_JOBS:-2000 20000}
PASS_THROUGH=(SWEEP_INTERVAL_MS QUEUE_HIGH_WATER JOB_MAX_ATTEMPTS DATABASE_MAX_CONNECTIONS
    DISPATCH_BATCH COMPLETION_BATCH COMPLETION_FLUSH_MS QUEUE_FETCH_BATCH)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sf-bench-jobs.XXXXXX")
# The private Redis is started the way scripts/test starts its own.
SERVICES_DIR=$WORK
SERVICES_PROG=bench/jobs.sh
# shellcheck source=../scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
lock_services_dir
for tool in cargo psql; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
PEERS=${BENCH_PEERS:-1}
if [[ $PEERS == 1 ]]; then
    for tool in node npm; do
        command -v "$tool" >/dev/null || die "$tool is required for the peers (or BENCH_PEERS=0)"
    done
    if [[ ! -d $ROOT/bench/peers/node_modules ]]; then
        echo "installing the peers (npm ci in bench/peers)…" >&2
        (cd "$ROOT/bench/peers" && npm ci --no-audit --no-fund --loglevel=error >&2)
    fi
fi
if [[ -z ${BENCH_REDIS_URL:-} ]]; then
    find_redis_server || die "redis-server is required (or set BENCH_REDIS_URL)"
fi

# The bench's worker accepts the no-op job (feature `bench-noop`); a
# production build does not. The binary is rebuilt without it by the next
# plain `cargo build --release -p worker`.
echo "building release binaries (worker with bench-noop, migration, example enqueue_noop)…" >&2
(cd "$ROOT" && cargo build --release --quiet -p worker -p migration --bin worker --bin migration --example enqueue_noop --features worker/bench-noop)
WORKER_BIN=$TARGET_DIR/release/worker
MIGRATION_BIN=$TARGET_DIR/release/migration
ENQUEUE_BIN=$TARGET_DIR/release/examples/enqueue_noop

DATABASES=()
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_private_redis || true
    for db in "${DATABASES[@]}"; do
        psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# ADMIN_URL with its database name replaced by $1 (query parameters kept).
database_url() {
    local base=${ADMIN_URL%%\?*} query rest
    query=${ADMIN_URL#"$base"}
    rest=${base#*://}
    if [[ $rest == */* ]]; then base=${base%/*}; fi
    echo "$base/$1$query"
}

# --- Redis ---------------------------------------------------------------------
if [[ -n ${BENCH_REDIS_URL:-} ]]; then
    REDIS_URL=$BENCH_REDIS_URL
    REDIS_DESC="Redis at $REDIS_URL"
else
    start_private_redis
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT
    REDIS_DESC="private redis-server $("$REDIS_SERVER_BIN" --version | grep -o 'v=[0-9.]*' | cut -c3-) (no persistence)"
fi

# CPU time (utime + stime, clock ticks) of the given processes.
cpu_ticks() {
    local total=0 pid t
    for pid in "$@"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}
# Busy and total clock ticks of the whole machine so far.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
TICKS_PER_SEC=$(getconf CLK_TCK)

# Runs the workers of one configuration until every row is completed; sets
# SECONDS_TAKEN, PEAK_RSS_KIB (the largest VmHWM of the processes) and
# CPU_USE (cores used during the run by the workers, by the database's
# backends serving them, by the private Redis, and by the whole machine —
# which other work on it shares).
#   $1 DATABASE_URL, $2 processes, $3 REDIS_URL or "" (SQLite queue), $4 concurrency,
#   $5 the queues to consume, $6 the database's name on PostgreSQL ("" on SQLite)
run_workers() {
    local url=$1 procs=$2 redis=$3 concurrency=$4 queues=$5 dbname=${6:-} started finished i pid hwm=0 h namespace
    local workers=() backends=() redis_before=0 machine_before machine_after
    namespace="bench-$$-$RANDOM"
    local env=(PATH="$PATH" HOME="$HOME" DATABASE_URL="$url" QUEUE_NAMESPACE="$namespace"
        WORKER_CONCURRENCY="$concurrency" WORKER_QUEUES="$queues" DISPATCH_GRACE_MS=0
        WORKER_BIND=127.0.0.1:0 DATA_DIR="$WORK/var" RUST_LOG=warn)
    if [[ -n $redis ]]; then env+=(REDIS_URL="$redis"); fi
    for name in "${PASS_THROUGH[@]}"; do
        if [[ -n ${!name:-} ]]; then env+=("$name=${!name}"); fi
    done
    PIDS=()
    if [[ -n ${REDIS_PID:-} ]]; then redis_before=$(cpu_ticks "$REDIS_PID"); fi
    machine_before=$(machine_ticks)
    started=$(date +%s.%N)
    for i in $(seq 1 "$procs"); do
        # `timeout` bounds a worker's life even if this script is SIGKILLed
        # (it forwards SIGTERM, so the stop below is still graceful).
        (cd "$WORK" && exec env -i "${env[@]}" timeout -k 10 "$LIFETIME" "$WORKER_BIN" run) \
            >>"$WORK/worker-$i.log" 2>&1 &
        PIDS+=($!)
    done
    DATABASE_URL=$url "$ENQUEUE_BIN" --wait "$TIMEOUT_SECS" >"$WORK/wait.log" 2>&1 ||
        { cat "$WORK/wait.log" "$WORK"/worker-*.log >&2; die "the jobs did not complete"; }
    finished=$(date +%s.%N)
    machine_after=$(machine_ticks)
    for pid in "${PIDS[@]}"; do
        worker=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
        workers+=("${worker%% *}")
        h=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/${worker%% *}/status" 2>/dev/null || echo 0)
        if ((h > hwm)); then hwm=$h; fi
    done
    # The workers' pools' backends (and the waiting poller's) lived only for
    # this run: their whole CPU time is this run's.
    if [[ -n $dbname ]]; then
        mapfile -t backends < <(psql "$ADMIN_URL" -qAtc "SELECT pid FROM pg_stat_activity WHERE datname = '$dbname'")
    fi
    CPU_USE=$(awk -v w="$(cpu_ticks "${workers[@]}")" -v p="$(cpu_ticks "${backends[@]}")" \
        -v r="$(($(if [[ -n ${REDIS_PID:-} ]]; then cpu_ticks "$REDIS_PID"; else echo 0; fi) - redis_before))" \
        -v mb="$machine_before" -v ma="$machine_after" -v hz="$TICKS_PER_SEC" -v a="$started" -v b="$finished" '
        BEGIN {
            s = (b - a) * hz; split(mb, x, " "); split(ma, y, " ")
            printf "workers %.2f, PostgreSQL %.2f, Redis %.2f, machine %.0f%% busy", w / s, p / s, r / s, 100 * (y[1] - x[1]) / (y[2] - x[2])
        }')
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    grep -q ', 0 dead jobs' "$WORK/wait.log" || { cat "$WORK/wait.log" >&2; die "some jobs died"; }
    SECONDS_TAKEN=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.2f", b - a }')
    PEAK_RSS_KIB=$hwm
}

# Migrates a fresh database and fills its outbox with settlements, or with
# no-op jobs when $2 is --noop.
prepare() {
    local url=$1
    DATABASE_URL=$url "$MIGRATION_BIN" up >"$WORK/migration.log" 2>&1 ||
        { cat "$WORK/migration.log" >&2; die "migrations failed"; }
    DATABASE_URL=$url "$ENQUEUE_BIN" ${2:+"$2"} "$JOBS" >&2
}

ROWS=()
CPU_ROWS=()
declare -A RATE=()
row() { # label seconds hwm_kib [key]
    local rate
    rate=$(awk -v n="$JOBS" -v s="$2" 'BEGIN { printf "%.0f", n / s }')
    if [[ -n ${4:-} ]]; then RATE[$4]=$rate; fi
    ROWS+=("$(printf '%-46s %9s %9ss %9s %8.1f MiB' "$1" "$JOBS" "$2" "$rate" "$(awk -v k="$3" 'BEGIN { print k / 1024 }')")")
}

mkdir -p "$WORK/var"
for procs in $PROCS; do
    for kind in noop settlement; do
        db="sf_bench_jobs_$(date +%s)_${procs}_${kind}_$$"
        psql "$ADMIN_URL" -qAtc "CREATE DATABASE \"$db\"" >/dev/null || die "cannot create a database at $ADMIN_URL"
        DATABASES+=("$db")
        url=$(database_url "$db")
        echo "== $procs worker process(es), Redis + PostgreSQL, $kind jobs" >&2
        if [[ $kind == noop ]]; then
            prepare "$url" --noop
            run_workers "$url" "$procs" "$REDIS_URL" "$WORKER_CONCURRENCY" emails "$db"
            label="$procs x worker run, no-op job" key="storefront-$procs"
        else
            prepare "$url"
            run_workers "$url" "$procs" "$REDIS_URL" "$WORKER_CONCURRENCY" settlements "$db"
            label="$procs x worker run, settlement (no-op UPDATE)" key="settlement-$procs"
        fi
        row "$label" "$SECONDS_TAKEN" "$PEAK_RSS_KIB" "$key"
        CPU_ROWS+=("$(printf '%-46s %s' "$label" "$CPU_USE")")
        psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
done

# SQLite: one process on the queue in the app's SQLite file, each kind of
# job at two sizes (BENCH_SQLITE_JOBS): the rate must hold as the outbox and
# the queue's table grow (the ratio of the last size over the first).
if [[ ${BENCH_SQLITE:-1} == 1 ]]; then
    all_jobs=$JOBS
    for kind in noop settlement; do
        for JOBS in $SQLITE_JOBS; do
            echo "== 1 worker process, embedded SQLite queue, $JOBS $kind jobs" >&2
            sqlite_url="sqlite://$WORK/embedded-$kind-$JOBS.db?mode=rwc"
            if [[ $kind == noop ]]; then
                prepare "$sqlite_url" --noop
                run_workers "$sqlite_url" 1 "" "$SQLITE_CONCURRENCY" emails
                label="1 x worker run, SQLite, no-op job"
            else
                prepare "$sqlite_url"
                run_workers "$sqlite_url" 1 "" "$SQLITE_CONCURRENCY" settlements
                label="1 x worker run, SQLite, settlement"
            fi
            row "$label" "$SECONDS_TAKEN" "$PEAK_RSS_KIB" "sqlite-$kind-$JOBS"
            CPU_ROWS+=("$(printf '%-46s %s' "$label ($JOBS)" "$CPU_USE")")
        done
    done
    JOBS=$all_jobs
fi

# --- the peers -------------------------------------------------------------------
# One JSON line per run: {"peer", "jobs", "ran", "seconds", "rss_kib"}.
peer_row() { # label key json
    local seconds ran rss
    seconds=$(grep -o '"seconds":[0-9.e+-]*' <<<"$3" | cut -d: -f2)
    ran=$(grep -o '"ran":[0-9]*' <<<"$3" | cut -d: -f2)
    rss=$(grep -o '"rss_kib":[0-9]*' <<<"$3" | cut -d: -f2)
    [[ $ran == "$JOBS" ]] || die "$1 ran $ran of $JOBS jobs: $3"
    row "$1" "$(awk -v s="$seconds" 'BEGIN { printf "%.2f", s }')" "$rss" "$2"
}
if [[ $PEERS == 1 ]]; then
    for mode in default batched; do
        db="sf_bench_graphile_$(date +%s)_${mode}_$$"
        psql "$ADMIN_URL" -qAtc "CREATE DATABASE \"$db\"" >/dev/null || die "cannot create a database at $ADMIN_URL"
        DATABASES+=("$db")
        echo "== graphile-worker, $mode" >&2
        out=$(cd "$ROOT/bench/peers" && DATABASE_URL=$(database_url "$db") timeout "$TIMEOUT_SECS" node graphile.mjs "$mode" "$JOBS" 2>"$WORK/graphile-$mode.log") ||
            { cat "$WORK/graphile-$mode.log" >&2; die "graphile-worker ($mode) failed"; }
        if [[ $mode == default ]]; then label="graphile-worker 0.18, default, conc. 24"; else label="graphile-worker 0.18, localQueue+batch"; fi
        peer_row "$label" "graphile-$mode" "$out"
        psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    echo "== BullMQ" >&2
    out=$(cd "$ROOT/bench/peers" && REDIS_URL=$REDIS_URL timeout "$TIMEOUT_SECS" node bullmq.mjs "$JOBS" 2>"$WORK/bullmq.log") ||
        { cat "$WORK/bullmq.log" >&2; die "BullMQ failed"; }
    peer_row "BullMQ 5 (Redis only), conc. 64" bullmq "$out"
fi

echo
echo "Storefront jobs end to end, outbox → queue → outcome: $JOBS bench_noop.v1 jobs (a handler that does nothing), and $JOBS settle_payment.v1 (payment already SETTLED: one UPDATE that matches nothing)"
settings="WORKER_CONCURRENCY=$WORKER_CONCURRENCY"
for name in "${PASS_THROUGH[@]}"; do
    if [[ -n ${!name:-} ]]; then settings+=" $name=${!name}"; fi
done
if [[ ${BENCH_SQLITE:-1} == 1 ]]; then settings+=" (SQLite runs: SQLITE_CONCURRENCY=$SQLITE_CONCURRENCY)"; fi
echo "release binaries, $(nproc) CPUs shared by workers, PostgreSQL and Redis; $REDIS_DESC; $settings (other settings: defaults)"
echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); time from starting the workers to the last outbox row completed"
echo
printf '%-46s %9s %10s %9s %12s\n' configuration jobs time 'jobs/s' 'worker RSS'
for r in "${ROWS[@]}"; do echo "$r"; done
echo
echo "CPU during each run (cores; PostgreSQL: the backends of the run's database):"
for r in "${CPU_ROWS[@]}"; do echo "$r"; done

# Ratios within this run (a rate over another), for the comparisons the
# performance issue sets targets on.
ratio() { # label numerator denominator
    if [[ -n ${RATE[$2]:-} && -n ${RATE[$3]:-} ]]; then
        printf '%-54s %6s\n' "$1" "$(awk -v a="${RATE[$2]}" -v b="${RATE[$3]}" 'BEGIN { printf "%.2f", a / b }')"
    fi
}
echo
echo "ratios (jobs/s over jobs/s, this run):"
ratio "1 x worker (no-op) / graphile-worker default" storefront-1 graphile-default
ratio "1 x worker (no-op) / graphile-worker localQueue + batch" storefront-1 graphile-batched
ratio "1 x worker (no-op) / BullMQ" storefront-1 bullmq
fastest=""
for key in graphile-default graphile-batched bullmq; do
    if [[ -n ${RATE[$key]:-} ]] && { [[ -z $fastest ]] || ((RATE[$key] > RATE[$fastest])); }; then fastest=$key; fi
done
if [[ -n $fastest ]]; then ratio "1 x worker (no-op) / fastest peer ($fastest)" storefront-1 "$fastest"; fi
ratio "2 x worker / 1 x worker (no-op)" storefront-2 storefront-1
ratio "4 x worker / 1 x worker (no-op)" storefront-4 storefront-1
ratio "1 x worker (settlement) / graphile-worker default" settlement-1 graphile-default
ratio "2 x worker / 1 x worker (settlement)" settlement-2 settlement-1
sqlite_first=${SQLITE_JOBS%% *} sqlite_last=${SQLITE_JOBS##* }
if [[ $sqlite_first != "$sqlite_last" ]]; then
    ratio "SQLite no-op: $sqlite_last jobs / $sqlite_first jobs" "sqlite-noop-$sqlite_last" "sqlite-noop-$sqlite_first"
    ratio "SQLite settlement: $sqlite_last jobs / $sqlite_first jobs" "sqlite-settlement-$sqlite_last" "sqlite-settlement-$sqlite_first"
fi
