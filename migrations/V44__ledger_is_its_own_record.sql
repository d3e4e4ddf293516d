-- V44: the append-only ledger is its own record (issue 16, docs/accounts.md "Audit trail").
--
-- Inserts of bets, bet legs and transactions are not copied into audit_log: the rows are the
-- record, and the database refuses to delete them (or truncate their tables). Their updates
-- (settlement, void, status) stay audited in full. A balance update made in the same
-- transaction as the transaction rows that explain it (the ledger writer, the wallet shard,
-- settlement bookings) marks itself with the transaction-local setting winzo.ledger_write
-- and is not copied either; any other balance change (a hand-run UPDATE, an admin's
-- adjustment) is audited with its actor.

DROP TRIGGER trigger_audit_bets_insert ON bets;
DROP TRIGGER trigger_audit_transactions_insert ON transactions;

CREATE FUNCTION refuse_ledger_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: rows of % are never deleted', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER trigger_bets_append_only BEFORE DELETE ON bets
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_bet_selections_append_only BEFORE DELETE ON bet_selections
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_transactions_append_only BEFORE DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_bets_no_truncate BEFORE TRUNCATE ON bets
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_bet_selections_no_truncate BEFORE TRUNCATE ON bet_selections
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_delete();
CREATE TRIGGER trigger_transactions_no_truncate BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_delete();

CREATE OR REPLACE FUNCTION audit_statement_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_actor UUID := NULLIF(current_setting('winzo.actor_id', true), '')::uuid;
    v_ip    INET := NULLIF(current_setting('winzo.client_ip', true), '')::inet;
    v_key   TEXT := TG_ARGV[0];
BEGIN
    -- A balance moved together with the ledger rows that explain it is recorded by them.
    IF TG_TABLE_NAME = 'user_balances' AND TG_OP = 'UPDATE'
       AND current_setting('winzo.ledger_write', true) = 'on' THEN
        RETURN NULL;
    END IF;
    -- Secrets never enter the trail (it is readable by support staff).
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_log (table_name, record_id, action, old_values, new_values, user_id,
                               ip_address)
        SELECT TG_TABLE_NAME, (n.j ->> v_key)::uuid, 'INSERT', NULL, n.j, v_actor, v_ip
        FROM (SELECT to_jsonb(r) - ARRAY['password_hash', 'salt'] AS j FROM audit_new r) n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit_log (table_name, record_id, action, old_values, new_values, user_id,
                               ip_address)
        SELECT TG_TABLE_NAME, (o.j ->> v_key)::uuid, 'DELETE', o.j, NULL, v_actor, v_ip
        FROM (SELECT to_jsonb(r) - ARRAY['password_hash', 'salt'] AS j FROM audit_old r) o;
    ELSE
        INSERT INTO audit_log (table_name, record_id, action, old_values, new_values, user_id,
                               ip_address)
        SELECT TG_TABLE_NAME, COALESCE(n.k, o.k)::uuid, 'UPDATE', o.j, n.j, v_actor, v_ip
        FROM (SELECT j, j ->> v_key AS k
              FROM (SELECT to_jsonb(r) - ARRAY['password_hash', 'salt'] AS j
                    FROM audit_old r) x) o
        FULL JOIN (SELECT j, j ->> v_key AS k
                   FROM (SELECT to_jsonb(r) - ARRAY['password_hash', 'salt'] AS j
                         FROM audit_new r) y) n
          ON n.k = o.k
        WHERE o.j IS DISTINCT FROM n.j;
    END IF;
    RETURN NULL;
END;
$$;
