-- V47: bets partitioned by month of placed_at (docs/schema.md "V46-V49: partitions").
--
-- A primary key or a unique constraint of a partitioned table must contain its partition
-- key, so (id) and (user_id, idempotency_key) can no longer be enforced by bets itself
-- across months. They move to bet_keys, a small table of one narrow row per bet that is
-- never partitioned:
--   * bet_keys.id is the bet's id (primary key): no two bets share an id in any month, and
--     bet_selections, transactions and user_debts reference it, so a leg, a debit or a debt
--     can only name a bet that exists, whatever partition holds it now or later (a
--     detached month keeps its legs' and payments' keys valid);
--   * bets_user_idempotency_key UNIQUE (user_id, idempotency_key) is the same constraint
--     under the same name (the ledger writer recognizes a repeated key by that name);
--   * placed_at says which partition holds the bet, so a look-up by id can go through the
--     key to one partition.
-- The rows are written by a statement trigger from the inserted rows' transition table, in
-- the same statement as the bets (so in the same transaction): whoever inserts a bet cannot
-- skip its key. The key columns of a bet are fixed once written; moving a bet to another
-- month would be a delete from its partition, which the ledger refuses (V44).

-- 1. The old table out of the way; the references to bets(id) point at bet_keys(id)
-- instead (same names, same actions).
ALTER TABLE bet_selections DROP CONSTRAINT bet_selections_bet_id_fkey;
ALTER TABLE transactions DROP CONSTRAINT fk_transactions_related_bet;
ALTER TABLE user_debts DROP CONSTRAINT user_debts_bet_id_fkey;

ALTER TABLE bets RENAME TO bets_unpartitioned;
ALTER TABLE bets_unpartitioned DROP CONSTRAINT bets_pkey,
    DROP CONSTRAINT bets_user_idempotency_key;
DROP INDEX idx_bets_user_placed_at, idx_bets_status_placed_at, idx_bets_user_status_type;

-- The key table, filled from the existing bets.
CREATE TABLE bet_keys (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL,
    idempotency_key VARCHAR(100),
    placed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT bets_user_idempotency_key UNIQUE (user_id, idempotency_key)
);


INSERT INTO bet_keys (id, user_id, idempotency_key, placed_at)
SELECT id, user_id, idempotency_key, placed_at FROM bets_unpartitioned;

ALTER TABLE bet_selections ADD CONSTRAINT bet_selections_bet_id_fkey
    FOREIGN KEY (bet_id) REFERENCES bet_keys(id) ON DELETE CASCADE;
ALTER TABLE transactions ADD CONSTRAINT fk_transactions_related_bet
    FOREIGN KEY (related_bet_id) REFERENCES bet_keys(id);
ALTER TABLE user_debts ADD CONSTRAINT user_debts_bet_id_fkey
    FOREIGN KEY (bet_id) REFERENCES bet_keys(id);

-- 2. The partitioned table, its months, the rows.
CREATE TABLE bets (
    LIKE bets_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
        INCLUDING COMMENTS
) PARTITION BY RANGE (placed_at);

SELECT winzo_partition_monthly('bets', 'placed_at',
                               (SELECT min(placed_at) FROM bets_unpartitioned), 4);

INSERT INTO bets SELECT * FROM bets_unpartitioned;
DROP TABLE bets_unpartitioned;

ALTER TABLE bets
    ADD CONSTRAINT bets_pkey PRIMARY KEY (id, placed_at),
    ADD CONSTRAINT fk_bets_user_id FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

CREATE INDEX idx_bets_user_placed_at ON bets (user_id, placed_at DESC);
CREATE INDEX idx_bets_status_placed_at ON bets (status, placed_at DESC);
CREATE INDEX idx_bets_user_status_type ON bets (user_id, status, type);

-- 3. Triggers, as they were (V3, V40, V44), plus the keys.
CREATE CONSTRAINT TRIGGER trigger_check_bet_placement
    AFTER INSERT ON bets
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION check_bet_placement();

CREATE TRIGGER trigger_audit_bets_update AFTER UPDATE ON bets
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION audit_statement_change('id');
CREATE TRIGGER trigger_audit_bets_delete AFTER DELETE ON bets
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION audit_statement_change('id');

CREATE TRIGGER trigger_bets_append_only BEFORE DELETE ON bets
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_bets_no_truncate BEFORE TRUNCATE ON bets
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_bet_keys_append_only BEFORE DELETE ON bet_keys
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_bet_keys_no_truncate BEFORE TRUNCATE ON bet_keys
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_delete();

CREATE FUNCTION record_bet_keys() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bet_keys (id, user_id, idempotency_key, placed_at)
    SELECT id, user_id, idempotency_key, placed_at FROM bets_new;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trigger_bets_keys AFTER INSERT ON bets
    REFERENCING NEW TABLE AS bets_new
    FOR EACH STATEMENT EXECUTE FUNCTION record_bet_keys();

-- The key columns of a ledger row never change (TG_ARGV: what to name in the message).
CREATE FUNCTION refuse_key_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the key columns of % (%) are fixed once written', TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER trigger_bets_keys_fixed
    BEFORE UPDATE OF id, user_id, idempotency_key, placed_at ON bets
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_key_change('id, user_id, idempotency_key, placed_at');
CREATE TRIGGER trigger_bet_keys_fixed BEFORE UPDATE ON bet_keys
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_key_change('every column');
