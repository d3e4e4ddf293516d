-- V48: transactions partitioned by month of created_at (docs/schema.md "V46-V49:
-- partitions").
--
-- As for bets (V47), the keys that must hold across months move to a small table that is
-- never partitioned, transaction_keys, written by a statement trigger in the same statement
-- as the transactions:
--   * transactions_reference_key UNIQUE (reference): a booking's reference (bet:<id>,
--     settle:<bet>:<seq>, the wallet's own) is written once, ever;
--   * transactions_user_idempotency_key UNIQUE (user_id, idempotency_key): the wallet's
--     idempotency (the wallet shard reads a unique violation as "another node wrote this
--     key first");
--   * id, the transaction's id, as its primary key.
-- Only rows carrying a reference or an idempotency key get a key row: a row with neither
-- has nothing that must be unique beyond its random id. The rows' primary key on the
-- partitioned table is (id, created_at).

ALTER TABLE transactions RENAME TO transactions_unpartitioned;
ALTER TABLE transactions_unpartitioned DROP CONSTRAINT transactions_pkey,
    DROP CONSTRAINT transactions_reference_key;
DROP INDEX transactions_user_idempotency_key, idx_transactions_user_created_at,
    idx_transactions_type_status, idx_transactions_related_bet, idx_transactions_payment_method,
    idx_transactions_user_created_id;

CREATE TABLE transaction_keys (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL,
    reference VARCHAR(100) CONSTRAINT transactions_reference_key UNIQUE,
    idempotency_key VARCHAR(100),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT transaction_keys_some_key CHECK (reference IS NOT NULL
                                                OR idempotency_key IS NOT NULL)
);


INSERT INTO transaction_keys (id, user_id, reference, idempotency_key, created_at)
SELECT id, user_id, reference, idempotency_key, created_at FROM transactions_unpartitioned
WHERE reference IS NOT NULL OR idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX transactions_user_idempotency_key
    ON transaction_keys (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE transactions (
    LIKE transactions_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED
        INCLUDING STORAGE INCLUDING COMMENTS
) PARTITION BY RANGE (created_at);

SELECT winzo_partition_monthly('transactions', 'created_at',
                               (SELECT min(created_at) FROM transactions_unpartitioned), 4);

-- Every column but the generated net_amount, in table order.
DO $$
DECLARE
    v_columns TEXT;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_columns
    FROM pg_attribute
    WHERE attrelid = 'transactions_unpartitioned'::regclass AND attnum > 0
      AND NOT attisdropped AND attgenerated = '';
    EXECUTE format('INSERT INTO transactions (%s) SELECT %s FROM transactions_unpartitioned',
                   v_columns, v_columns);
END;
$$;
DROP TABLE transactions_unpartitioned;

ALTER TABLE transactions
    ADD CONSTRAINT transactions_pkey PRIMARY KEY (id, created_at),
    ADD CONSTRAINT transactions_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    ADD CONSTRAINT fk_transactions_payment_method
        FOREIGN KEY (payment_method_id) REFERENCES payment_methods(id) ON DELETE SET NULL,
    ADD CONSTRAINT fk_transactions_related_bet
        FOREIGN KEY (related_bet_id) REFERENCES bet_keys(id);

CREATE INDEX idx_transactions_user_created_at ON transactions (user_id, created_at DESC);
CREATE INDEX idx_transactions_type_status ON transactions (type, status);
CREATE INDEX idx_transactions_related_bet ON transactions (related_bet_id)
    WHERE related_bet_id IS NOT NULL;
CREATE INDEX idx_transactions_payment_method ON transactions (payment_method_id)
    WHERE payment_method_id IS NOT NULL;
CREATE INDEX idx_transactions_user_created_id ON transactions (user_id, created_at DESC, id DESC);
-- The wallet's replay of a key reads the row itself (not unique here: transaction_keys is).
CREATE INDEX idx_transactions_user_idempotency ON transactions (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TRIGGER trigger_transactions_updated_at BEFORE UPDATE ON transactions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_audit_transactions_update AFTER UPDATE ON transactions
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION audit_statement_change('id');
CREATE TRIGGER trigger_audit_transactions_delete AFTER DELETE ON transactions
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION audit_statement_change('id');
CREATE TRIGGER trigger_transactions_append_only BEFORE DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_transactions_no_truncate BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_transaction_keys_append_only BEFORE DELETE ON transaction_keys
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_transaction_keys_no_truncate BEFORE TRUNCATE ON transaction_keys
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_delete();

CREATE FUNCTION record_transaction_keys() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transaction_keys (id, user_id, reference, idempotency_key, created_at)
    SELECT id, user_id, reference, idempotency_key, created_at FROM transactions_new
    WHERE reference IS NOT NULL OR idempotency_key IS NOT NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trigger_transactions_keys AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS transactions_new
    FOR EACH STATEMENT EXECUTE FUNCTION record_transaction_keys();
CREATE TRIGGER trigger_transactions_keys_fixed
    BEFORE UPDATE OF id, user_id, reference, idempotency_key, created_at ON transactions
    FOR EACH STATEMENT
    EXECUTE FUNCTION refuse_key_change('id, user_id, reference, idempotency_key, created_at');
CREATE TRIGGER trigger_transaction_keys_fixed BEFORE UPDATE ON transaction_keys
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_key_change('every column');
