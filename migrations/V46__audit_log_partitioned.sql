-- V46: audit_log partitioned by month of its timestamp, with only the indexes its queries
-- need (docs/schema.md "V46-V49: partitions"; docs/operations.md "Partitions").
--
-- Readers of the trail (GET /api/v1/trading/audit, src/db/audit.rs) filter by table, by
-- record, by acting user and by time, newest first. What each index is for:
--   idx_audit_log_table_record    (table_name, record_id)     one record's history
--   idx_audit_log_table_timestamp (table_name, timestamp DESC) one table, newest first
--   idx_audit_log_user_timestamp  (user_id, timestamp)         one actor's changes, and the
--       ON DELETE SET NULL from users; partial (user_id IS NOT NULL): the engine's own
--       changes (no actor) are most of the trail and are never looked up by actor
--   idx_audit_log_timestamp       BRIN (timestamp)            time ranges inside a month;
--       the column grows with the insert order, so a block range summary does the work of a
--       B-tree at a fraction of its size and of its cost per insert
-- The B-tree primary key over random UUIDs is gone: nothing looks a trail row up by id, and
-- on a partitioned table it would have to include the timestamp anyway. id keeps its
-- default (gen_random_uuid()).
--
-- Existing rows are carried over: the old table is renamed, the partitioned one created
-- in its place with the same columns, partitions from the oldest row's month to four
-- months ahead, then the rows are moved and the old table dropped.

ALTER TABLE audit_log RENAME TO audit_log_unpartitioned;
ALTER TABLE audit_log_unpartitioned DROP CONSTRAINT audit_log_pkey;
DROP INDEX idx_audit_log_table_record, idx_audit_log_user_timestamp, idx_audit_log_timestamp,
    idx_audit_log_table_timestamp;

CREATE TABLE audit_log (
    LIKE audit_log_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
        INCLUDING COMMENTS
) PARTITION BY RANGE (timestamp);

SELECT winzo_partition_monthly('audit_log', 'timestamp',
                               (SELECT min(timestamp) FROM audit_log_unpartitioned), 4);

INSERT INTO audit_log SELECT * FROM audit_log_unpartitioned;
DROP TABLE audit_log_unpartitioned;

-- [C8g] as in V1: the trail outlives the account.
ALTER TABLE audit_log ADD CONSTRAINT audit_log_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL;

CREATE INDEX idx_audit_log_table_record ON audit_log (table_name, record_id);
CREATE INDEX idx_audit_log_table_timestamp ON audit_log (table_name, timestamp DESC);
CREATE INDEX idx_audit_log_user_timestamp ON audit_log (user_id, timestamp)
    WHERE user_id IS NOT NULL;
CREATE INDEX idx_audit_log_timestamp ON audit_log USING BRIN (timestamp);
