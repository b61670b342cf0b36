SELECT string_agg(quote_literal(id), ',') AS ids, '{' || string_agg(id::text, ',') || '}' AS arr FROM (SELECT id FROM outbox WHERE completed_at IS NULL AND dispatched_at IS NOT NULL ORDER BY available_at LIMIT 500) s \gset
\echo === C1 current completion
BEGIN; EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) UPDATE outbox SET completed_at = now() WHERE id IN (:ids) AND completed_at IS NULL; ROLLBACK;
\echo === C1g generic plan, = ANY($1)
BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; PREPARE c1(uuid[]) AS UPDATE outbox SET completed_at = now() WHERE id = ANY($1) AND completed_at IS NULL;
EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) EXECUTE c1(:'arr'); ROLLBACK; DEALLOCATE c1;
\echo === A1 current claim
BEGIN; EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) UPDATE outbox SET dispatched_at = now() WHERE id IN (SELECT id FROM outbox WHERE completed_at IS NULL AND ((dispatched_at IS NULL AND available_at <= now() AND (attempt > 1 OR created_at <= now())) OR dispatched_at <= now() - interval '10 min') ORDER BY available_at LIMIT 500 FOR UPDATE SKIP LOCKED) RETURNING id; ROLLBACK;
\echo === A2 claim, = ANY(ARRAY(...))
BEGIN; EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) UPDATE outbox SET dispatched_at = now() WHERE id = ANY(ARRAY(SELECT id FROM outbox WHERE completed_at IS NULL AND ((dispatched_at IS NULL AND available_at <= now() AND (attempt > 1 OR created_at <= now())) OR dispatched_at <= now() - interval '10 min') ORDER BY available_at LIMIT 500 FOR UPDATE SKIP LOCKED)) RETURNING id; ROLLBACK;
\echo === C2 new completion
BEGIN; EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) UPDATE outbox SET completed_at = COALESCE(completed_at, now()) WHERE id IN (:ids); ROLLBACK;
\echo === C2g generic
BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; PREPARE c2(uuid[]) AS UPDATE outbox SET completed_at = COALESCE(completed_at, now()) WHERE id = ANY($1);
EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) EXECUTE c2(:'arr'); ROLLBACK; DEALLOCATE c2;
