-- 5,000 jobs through their life: insert, mark dispatched (5 rows at a time), mark completed; WAL bytes written
CREATE TEMP TABLE ids AS SELECT gen_random_uuid() AS id, g FROM generate_series(1, 5000) g;
CHECKPOINT;
SELECT pg_current_wal_lsn() AS start \gset
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT id FROM ids LOOP
    INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at) VALUES (r.id, 'send_email.v1', '{}', 1, now(), now());
  END LOOP;
  FOR r IN SELECT id FROM ids LOOP UPDATE outbox SET dispatched_at = now() WHERE id = r.id AND completed_at IS NULL; END LOOP;
  FOR r IN SELECT id FROM ids LOOP UPDATE outbox SET completed_at = now() WHERE id = r.id; END LOOP;
END $$;
SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), :'start')) AS wal_for_5000_jobs;
SELECT indexrelname, pg_size_pretty(pg_relation_size(indexrelid)) FROM pg_stat_user_indexes WHERE relname = 'outbox';
SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'outbox';
