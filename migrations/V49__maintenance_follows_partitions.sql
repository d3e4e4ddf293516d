-- V49: the checks and the daily maintenance follow the partitions (docs/operations.md,
-- "Partitions").

-- The deferred placement check (V40) reads its bet in the one partition that holds it: the
-- placed_at of the row just inserted prunes the others at execution time. The debits are
-- still looked up by related_bet_id in every month of transactions (a debit's month is the
-- database's clock, not the bet's placed_at, so no partition can be ruled out exactly).
--
-- plan_cache_mode = force_generic_plan, as V3 had it: over partitioned tables the generic
-- plan's estimate counts every partition, so the plan cache kept choosing a custom plan,
-- planned again for every bet (measured: 1.3 ms of planning per bet against 0.2 ms of
-- execution, a batch of 100 bets committing 4-6 times slower than before partitioning).
-- The generic plan prunes at executor start-up instead (docs/operations.md "Partitions").
CREATE OR REPLACE FUNCTION check_bet_placement() RETURNS trigger
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_bet RECORD;
BEGIN
    SELECT b.type, b.stake,
           (SELECT count(*) FROM bet_selections bs WHERE bs.bet_id = b.id) AS legs,
           d.n AS debits, d.ok AS debit_ok
    INTO v_bet
    FROM bets b
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE t.type = 'bet_debit'
                                  AND t.status NOT IN ('failed', 'cancelled', 'reversed')) AS n,
               coalesce(bool_and(t.amount = -b.stake AND t.user_id = b.user_id)
                            FILTER (WHERE t.type = 'bet_debit'
                                      AND t.status NOT IN ('failed', 'cancelled', 'reversed')),
                        false) AS ok
        FROM transactions t
        WHERE t.related_bet_id = b.id
    ) d
    WHERE b.id = NEW.id AND b.placed_at = NEW.placed_at;
    IF NOT FOUND THEN
        RETURN NULL;  -- inserted and deleted again in the same transaction
    END IF;

    IF v_bet.legs = 0
       OR (v_bet.type = 'single' AND v_bet.legs <> 1)
       OR (v_bet.type = 'parlay' AND v_bet.legs < 2)
       OR (v_bet.type = 'system' AND v_bet.legs < 3) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'bets_legs_check',
            TABLE = 'bets',
            MESSAGE = format('bets_legs_check: %s bet %s has %s leg(s); a single needs exactly 1, '
                             'a parlay at least 2, a system at least 3',
                             v_bet.type, NEW.id, v_bet.legs);
    END IF;

    IF v_bet.debits <> 1 OR NOT v_bet.debit_ok THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'bets_stake_debit_check',
            TABLE = 'bets',
            MESSAGE = format('bets_stake_debit_check: bet %s needs exactly one bet_debit '
                             'transaction of its user for -%s; found %s debit(s) '
                             '(all of the right user and amount: %s)',
                             NEW.id, v_bet.stake, v_bet.debits, v_bet.debit_ok);
    END IF;

    RETURN NULL;
END;
$$;

-- The daily maintenance [C7] without the audit trail's DELETE: audit_log's retention is
-- pg_partman's (whole months detached, nothing deleted row by row), run by the engine just
-- before this function. Autovacuum never analyzes a partitioned table itself (only its
-- partitions), so the planner's view of bets, transactions and audit_log as a whole is
-- refreshed here.
CREATE OR REPLACE FUNCTION daily_maintenance() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_started       TIMESTAMPTZ := clock_timestamp();
    v_system_events BIGINT;
BEGIN
    -- Retention: system events six months.
    DELETE FROM system_events
    WHERE created_at < CURRENT_TIMESTAMP - INTERVAL '6 months';
    GET DIAGNOSTICS v_system_events = ROW_COUNT;

    -- Statistics of the tables the engine's VACUUM (ANALYZE) step does not cover, and of
    -- the partitioned tables as a whole.
    ANALYZE events;
    ANALYZE markets;
    ANALYZE users;
    ANALYZE bets;
    ANALYZE transactions;
    ANALYZE audit_log;

    RETURN jsonb_build_object(
        'deleted', jsonb_build_object('system_events', v_system_events),
        'analyzed', jsonb_build_array('events', 'markets', 'users', 'bets', 'transactions',
                                      'audit_log'),
        'duration_ms', round(extract(epoch FROM clock_timestamp() - v_started) * 1000)
    );
END;
$$;

DROP FUNCTION winzo_partition_monthly(TEXT, TEXT, TIMESTAMPTZ, INTEGER);
