.print '== due (sweeper + reaper), as sea-orm sends it today'
EXPLAIN QUERY PLAN SELECT * FROM outbox WHERE (dispatched_at IS NULL AND completed_at IS NULL AND available_at <= ?1 AND (attempt > 1 OR created_at <= ?2)) OR (completed_at IS NULL AND dispatched_at <= ?3) ORDER BY available_at ASC LIMIT 200;
.print '== due_on count'
EXPLAIN QUERY PLAN SELECT COUNT(*) FROM outbox WHERE job_name IN ('settle_payment.v1','void_payment.v1') AND dispatched_at IS NULL AND completed_at IS NULL AND available_at <= ?1;
.print '== due_on oldest'
EXPLAIN QUERY PLAN SELECT * FROM outbox WHERE job_name IN ('settle_payment.v1','void_payment.v1') AND dispatched_at IS NULL AND completed_at IS NULL AND available_at <= ?1 ORDER BY available_at ASC LIMIT 1;
.print '== backlog'
EXPLAIN QUERY PLAN SELECT COUNT(*) FROM outbox WHERE dispatched_at IS NULL AND completed_at IS NULL;
.print '== redispatch_unfinished'
EXPLAIN QUERY PLAN UPDATE outbox SET dispatched_at = NULL WHERE dispatched_at IS NOT NULL AND completed_at IS NULL;
.print '== prune'
EXPLAIN QUERY PLAN DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE completed_at IS NOT NULL AND completed_at < ?1 LIMIT 500);
