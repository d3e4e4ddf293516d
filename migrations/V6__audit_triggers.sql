-- V6: the audit trail is written by the database itself, so no code path can skip it.
--
-- One row in audit_log per inserted, updated or deleted row of the audited tables, with the
-- old and new values as jsonb. The acting user and the client address come from
-- transaction-local settings the engine sets before writing
-- (SELECT set_config('winzo.actor_id', $1, true), set_config('winzo.client_ip', $2, true));
-- when they are unset (psql, migrations, maintenance) they are NULL.
--
-- Cost: one INSERT per audited row, no lookups. An UPDATE that changes nothing (every
-- column equal) writes no audit row. Password hashes and salts are left out. TG_ARGV[0] names the table's key column
-- ('id', or 'user_id' for the per-user tables keyed by their user).

CREATE FUNCTION audit_row_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_old   JSONB;
    v_new   JSONB;
    v_actor TEXT := NULLIF(current_setting('winzo.actor_id', true), '');
    v_ip    TEXT := NULLIF(current_setting('winzo.client_ip', true), '');
BEGIN
    -- Secrets never enter the trail (it is readable by support staff).
    IF TG_OP <> 'INSERT' THEN
        v_old := to_jsonb(OLD) - ARRAY['password_hash', 'salt'];
    END IF;
    IF TG_OP <> 'DELETE' THEN
        v_new := to_jsonb(NEW) - ARRAY['password_hash', 'salt'];
    END IF;
    IF TG_OP = 'UPDATE' AND v_old = v_new THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit_log (table_name, record_id, action, old_values, new_values, user_id, ip_address)
    VALUES (
        TG_TABLE_NAME,
        (COALESCE(v_new, v_old) ->> TG_ARGV[0])::uuid,
        TG_OP::audit_action,
        v_old,
        v_new,
        v_actor::uuid,
        v_ip::inet
    );
    RETURN NULL;
END;
$$;

CREATE TRIGGER trigger_audit_users AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_user_profiles AFTER INSERT OR UPDATE OR DELETE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('user_id');
CREATE TRIGGER trigger_audit_user_preferences AFTER INSERT OR UPDATE OR DELETE ON user_preferences
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('user_id');
CREATE TRIGGER trigger_audit_user_balances AFTER INSERT OR UPDATE OR DELETE ON user_balances
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('user_id');
CREATE TRIGGER trigger_audit_transactions AFTER INSERT OR UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_payment_methods AFTER INSERT OR UPDATE OR DELETE ON payment_methods
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_sports AFTER INSERT OR UPDATE OR DELETE ON sports
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_leagues AFTER INSERT OR UPDATE OR DELETE ON leagues
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_teams AFTER INSERT OR UPDATE OR DELETE ON teams
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_events AFTER INSERT OR UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_markets AFTER INSERT OR UPDATE OR DELETE ON markets
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_selections AFTER INSERT OR UPDATE OR DELETE ON selections
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
CREATE TRIGGER trigger_audit_bets AFTER INSERT OR UPDATE OR DELETE ON bets
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('id');
