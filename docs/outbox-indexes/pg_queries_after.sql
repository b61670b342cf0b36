BEGIN;
\echo '== due (sweeper + reaper), completed_at IS NULL factored out'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT * FROM outbox WHERE completed_at IS NULL AND ((dispatched_at IS NULL AND available_at <= now() AND (attempt > 1 OR created_at <= now() - interval '3 s')) OR dispatched_at <= now() - interval '600 s') ORDER BY available_at ASC LIMIT 200 FOR UPDATE SKIP LOCKED;
\echo '== due_on count'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT COUNT(*) FROM outbox WHERE job_name IN ('settle_payment.v1','void_payment.v1') AND dispatched_at IS NULL AND completed_at IS NULL AND available_at <= now();
\echo '== due_on oldest'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT * FROM outbox WHERE job_name IN ('settle_payment.v1','void_payment.v1') AND dispatched_at IS NULL AND completed_at IS NULL AND available_at <= now() ORDER BY available_at ASC LIMIT 1;
\echo '== backlog'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT COUNT(*) FROM outbox WHERE dispatched_at IS NULL AND completed_at IS NULL;
\echo '== redispatch_unfinished'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) UPDATE outbox SET dispatched_at = NULL WHERE dispatched_at IS NOT NULL AND completed_at IS NULL;
\echo '== prune'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE completed_at IS NOT NULL AND completed_at < now() - interval '7 days' LIMIT 500 FOR UPDATE SKIP LOCKED);
ROLLBACK;
