-- The outbox as the first migration made it (m20261123_000001_schema), filled with a steady-state history.
DROP TABLE IF EXISTS outbox;
CREATE TABLE outbox (id uuid_text NOT NULL PRIMARY KEY, job_name varchar(64) NOT NULL, payload json_text NOT NULL,
  attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1), available_at timestamp_with_timezone_text NOT NULL,
  created_at timestamp_with_timezone_text NOT NULL, dispatched_at timestamp_with_timezone_text NULL,
  completed_at timestamp_with_timezone_text NULL, dispatch_attempts integer NOT NULL DEFAULT 0, last_error text NULL);
CREATE INDEX ix_outbox_dispatched_at_available_at ON outbox (dispatched_at, available_at);
CREATE INDEX ix_outbox_completed_at_dispatched_at ON outbox (completed_at, dispatched_at);
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 202000)
INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at, dispatched_at, completed_at)
SELECT lower(hex(randomblob(16))), CASE WHEN n % 3 = 0 THEN 'settle_payment.v1' ELSE 'send_email.v1' END, '{"n":' || n || '}', 1,
  strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-7 days', '-1 hour', '+' || (n * 3) || ' seconds'),
  strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-7 days', '-1 hour', '+' || (n * 3) || ' seconds'),
  strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-7 days', '-1 hour', '+' || (n * 3) || ' seconds'),
  strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-7 days', '-1 hour', '+' || (n * 3) || ' seconds') FROM g;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 700)
INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at)
SELECT lower(hex(randomblob(16))), 'send_email.v1', '{}', 1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-10 seconds'), strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-10 seconds') FROM g;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 200)
INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at, dispatched_at)
SELECT lower(hex(randomblob(16))), 'settle_payment.v1', '{}', 1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-1 minutes'), strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-1 minutes'), strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-30 seconds') FROM g;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 100)
INSERT INTO outbox (id, job_name, payload, attempt, available_at, created_at)
SELECT lower(hex(randomblob(16))), 'send_email.v1', '{}', 3, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '+5 minutes'), strftime('%Y-%m-%d %H:%M:%f+00:00', 'now') FROM g;
ANALYZE;
