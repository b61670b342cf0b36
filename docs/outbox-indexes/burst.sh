#!/bin/bash
# The burst of docs/outbox-indexes.md ("During a burst"): burst.sh URL DB [history]
# creates DB with the migrations (target/release/migration), optionally 100,000 completed rows
# analysed (stale statistics), then 100,000 pending no-op rows (enqueue_noop) and 10 rounds of
# claim (500) + completion (the batch claimed 4 rounds before). Then: psql URL/DB -f burst_queries.sql
set -e
P=$1; DB=$2
psql $P/postgres -qc "drop database if exists $DB" -c "create database $DB"
DATABASE_URL=$P/$DB ${TARGET_DIR:-target}/release/migration up >/dev/null 2>&1
if [[ ${3:-} == history ]]; then
  psql $P/$DB -qc "INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at, dispatched_at, completed_at) SELECT gen_random_uuid(), 'send_email.v1', '{}', 1, now() - g * interval '1 s', now() - g * interval '1 s', now() - g * interval '1 s', now() - g * interval '1 s' FROM generate_series(1, 100000) g" -c "ANALYZE outbox"
fi
DATABASE_URL=$P/$DB ${TARGET_DIR:-target}/release/examples/enqueue_noop --noop 100000 >/dev/null
psql $P/$DB -q -f "$(dirname "$0")/burst_rounds.sql" 2>/dev/null
psql $P/$DB -qc "CALL simulate(500, 4, 10)"
