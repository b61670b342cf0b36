DROP INDEX ix_outbox_dispatched_at_available_at;
DROP INDEX ix_outbox_completed_at_dispatched_at;
CREATE INDEX ix_outbox_unfinished_available_at ON outbox (available_at) WHERE completed_at IS NULL;
CREATE INDEX ix_outbox_completed_at ON outbox (completed_at) WHERE completed_at IS NOT NULL;
ANALYZE outbox;
