-- The outbox as the first migration made it (m20261123_000001_schema), filled with a steady-state history.
DROP TABLE IF EXISTS outbox;
CREATE TABLE outbox (
  id uuid PRIMARY KEY, job_name varchar(64) NOT NULL, payload jsonb NOT NULL,
  attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
  available_at timestamptz NOT NULL, created_at timestamptz NOT NULL,
  dispatched_at timestamptz NULL, completed_at timestamptz NULL,
  dispatch_attempts integer NOT NULL DEFAULT 0 CHECK (dispatch_attempts >= 0),
  last_error text NULL);
CREATE INDEX ix_outbox_dispatched_at_available_at ON outbox (dispatched_at, available_at);
CREATE INDEX ix_outbox_completed_at_dispatched_at ON outbox (completed_at, dispatched_at);
-- steady state: 200k completed within the 7-day retention, 2k just past it
-- (what accumulates between two prune rounds at a busy shop's pace),
-- inserted oldest first as a live outbox is
INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at, dispatched_at, completed_at)
SELECT gen_random_uuid(), CASE WHEN g % 3 = 0 THEN 'settle_payment.v1' ELSE 'send_email.v1' END,
       jsonb_build_object('order_id', gen_random_uuid()), 1, t, t, t + interval '10 ms', t + interval '50 ms'
FROM (SELECT g, now() - interval '7 days 1 hour' + (g * interval '3 seconds') AS t FROM generate_series(1, 202000) g) s;
-- 1k unfinished: 700 waiting and due, 200 dispatched in flight, 100 retries in the future
INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at)
SELECT gen_random_uuid(), 'send_email.v1', '{}'::jsonb, 1, now() - interval '10 s', now() - interval '10 s' FROM generate_series(1, 700);
INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at, dispatched_at)
SELECT gen_random_uuid(), 'settle_payment.v1', '{}'::jsonb, 1, now() - interval '1 min', now() - interval '1 min', now() - interval '30 s' FROM generate_series(1, 200);
INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at)
SELECT gen_random_uuid(), 'send_email.v1', '{}'::jsonb, 3, now() + interval '5 min', now() FROM generate_series(1, 100);
ANALYZE outbox;
SELECT count(*) FILTER (WHERE completed_at < now() - interval '7 days') AS past_retention, count(*) FILTER (WHERE completed_at IS NULL) AS unfinished, count(*) FROM outbox;
