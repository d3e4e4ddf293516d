-- V5: account controls of issue 3 (docs/accounts.md, "Schema additions").
-- Self-exclusion: the account cannot bet or deposit until this time; it is only ever
-- extended, never shortened (the engine refuses an earlier end).
ALTER TABLE users
    ADD COLUMN self_excluded_until TIMESTAMP WITH TIME ZONE;

-- Wallet history is read newest first with a stable tie-break on id.
CREATE INDEX idx_transactions_user_created_id
    ON transactions (user_id, created_at DESC, id DESC);

-- Audit filters by table and time, and by record; the trail is read newest first.
CREATE INDEX idx_audit_log_table_timestamp ON audit_log (table_name, timestamp DESC);
