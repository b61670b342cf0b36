DROP TABLE IF EXISTS simlog; CREATE TABLE simlog (i int, what text, ms float8, n int);
CREATE OR REPLACE PROCEDURE simulate(batch int, lag int, iters int) LANGUAGE plpgsql AS $$
DECLARE claimed uuid[][]; ids uuid[]; t0 timestamptz; q uuid[]; k int;
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS pendingq (i int, ids uuid[]);
  FOR it IN 1..iters LOOP
    t0 := clock_timestamp();
    WITH c AS (UPDATE outbox SET dispatched_at = now() WHERE id IN (
      SELECT id FROM outbox WHERE completed_at IS NULL
        AND ((dispatched_at IS NULL AND available_at <= now() AND (attempt > 1 OR created_at <= now())) OR dispatched_at <= now() - interval '10 min')
      ORDER BY available_at LIMIT batch FOR UPDATE SKIP LOCKED) RETURNING id)
    SELECT array_agg(id) INTO ids FROM c;
    INSERT INTO simlog VALUES (it, 'claim', extract(epoch FROM clock_timestamp() - t0) * 1000, coalesce(array_length(ids, 1), 0));
    INSERT INTO pendingq VALUES (it, ids);
    COMMIT;
    SELECT p.ids INTO q FROM pendingq p WHERE p.i = it - lag;
    IF q IS NOT NULL THEN
      t0 := clock_timestamp();
      UPDATE outbox SET completed_at = now() WHERE id = ANY(q) AND completed_at IS NULL;
      GET DIAGNOSTICS k = ROW_COUNT;
      INSERT INTO simlog VALUES (it, 'complete', extract(epoch FROM clock_timestamp() - t0) * 1000, k);
      COMMIT;
    END IF;
  END LOOP;
END $$;
