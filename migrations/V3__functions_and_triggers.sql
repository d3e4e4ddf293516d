-- V3: functions and triggers: updated_at upkeep, the creation-time checks that read the clock,
-- the events search document, the seed's query functions, the bet placement check and the
-- daily maintenance. Corrections [C..] are explained in docs/schema.md.
--
-- Errors raised here use SQLSTATE 23514 (check_violation) with CONSTRAINT set to a stable rule
-- name, so the engine maps them exactly as it maps a CHECK constraint:
--   events_future_start, user_profiles_age_check, bets_legs_check, bets_markets_open_check,
--   bets_stake_debit_check, bet_selections_market_open_check.

------------------------------------------------------------------------------------------------
-- updated_at / last_updated upkeep [C9]
------------------------------------------------------------------------------------------------

-- Shared by every table with an updated_at column. now() is the transaction's start time, the
-- same clock as the columns' DEFAULT CURRENT_TIMESTAMP.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_user_profiles_updated_at BEFORE UPDATE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_user_preferences_updated_at BEFORE UPDATE ON user_preferences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_sports_updated_at BEFORE UPDATE ON sports
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_leagues_updated_at BEFORE UPDATE ON leagues
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_teams_updated_at BEFORE UPDATE ON teams
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_events_updated_at BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_markets_updated_at BEFORE UPDATE ON markets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_selections_updated_at BEFORE UPDATE ON selections
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_payment_methods_updated_at BEFORE UPDATE ON payment_methods
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trigger_transactions_updated_at BEFORE UPDATE ON transactions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- user_balances names the column last_updated.
CREATE FUNCTION set_last_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_updated := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_user_balances_last_updated BEFORE UPDATE ON user_balances
    FOR EACH ROW EXECUTE FUNCTION set_last_updated();

------------------------------------------------------------------------------------------------
-- Creation-time checks that read the clock [C5]
-- A CHECK must be immutable: one comparing with CURRENT_TIMESTAMP is re-evaluated on every
-- UPDATE of any column (so last year's event could no longer get a score correction) and on
-- restore (pg_dump recreates CHECKs before loading rows, so the dump does not load). These
-- triggers check a row once, when it is created (and, for the age, when the birth date changes).
------------------------------------------------------------------------------------------------

CREATE FUNCTION check_events_future_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.start_time <= CURRENT_TIMESTAMP - INTERVAL '1 day' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'events_future_start',
            TABLE = 'events',
            COLUMN = 'start_time',
            MESSAGE = format('events_future_start: a new event must not start more than a day '
                             'in the past (start_time %s)', NEW.start_time),
            HINT = 'To load historic events, insert them with session_replication_role = replica.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_events_future_start BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION check_events_future_start();

CREATE FUNCTION check_user_profiles_age() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- CURRENT_DATE is the date in the session's TimeZone.
    IF NEW.date_of_birth IS NOT NULL
       AND NEW.date_of_birth > CURRENT_DATE - INTERVAL '18 years' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'user_profiles_age_check',
            TABLE = 'user_profiles',
            COLUMN = 'date_of_birth',
            MESSAGE = format('user_profiles_age_check: the user must be at least 18 years old '
                             '(date_of_birth %s)', NEW.date_of_birth);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_user_profiles_age_check BEFORE INSERT ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION check_user_profiles_age();
-- Only when the birth date actually changes: any other update of an old profile passes.
CREATE TRIGGER trigger_user_profiles_age_check_update BEFORE UPDATE OF date_of_birth ON user_profiles
    FOR EACH ROW WHEN (NEW.date_of_birth IS DISTINCT FROM OLD.date_of_birth)
    EXECUTE FUNCTION check_user_profiles_age();

------------------------------------------------------------------------------------------------
-- Events full-text document [C4]
------------------------------------------------------------------------------------------------

-- "Home Name Home Display vs Away Name Away Display" as an English tsvector.
CREATE FUNCTION events_search_document(p_home_team_id UUID, p_away_team_id UUID)
RETURNS tsvector
LANGUAGE SQL STABLE AS $$
    SELECT to_tsvector('english',
        home.name || ' ' || home.display_name || ' vs ' || away.name || ' ' || away.display_name)
    FROM teams home, teams away
    WHERE home.id = p_home_team_id
      AND away.id = p_away_team_id;
$$;

CREATE FUNCTION events_set_search_document() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_document := events_search_document(NEW.home_team_id, NEW.away_team_id);
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_events_search_document
    BEFORE INSERT OR UPDATE OF home_team_id, away_team_id ON events
    FOR EACH ROW EXECUTE FUNCTION events_set_search_document();

-- A team's new name reaches the documents of all its events (home or away).
CREATE FUNCTION teams_refresh_events_search_document() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events e
       SET search_document = events_search_document(e.home_team_id, e.away_team_id)
     WHERE e.home_team_id = NEW.id OR e.away_team_id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trigger_teams_search_document
    AFTER UPDATE OF name, display_name ON teams
    FOR EACH ROW
    WHEN (NEW.name IS DISTINCT FROM OLD.name OR NEW.display_name IS DISTINCT FROM OLD.display_name)
    EXECUTE FUNCTION teams_refresh_events_search_document();

------------------------------------------------------------------------------------------------
-- Query functions (seed: "Query Optimization Patterns") [C13]
------------------------------------------------------------------------------------------------

-- One page of a sport's events from a day ago onwards (plus events still in play that started
-- earlier), with the number of active markets of each. Same signature and columns as the draft.
CREATE FUNCTION get_events_with_markets(
    p_sport_id UUID,
    p_limit INTEGER DEFAULT 20,
    p_offset INTEGER DEFAULT 0
) RETURNS TABLE (
    event_id UUID,
    home_team_name VARCHAR,
    away_team_name VARCHAR,
    start_time TIMESTAMP WITH TIME ZONE,
    status event_status,
    market_count BIGINT
) LANGUAGE SQL STABLE AS $$
    SELECT
        e.id,
        ht.display_name,
        awt.display_name,
        e.start_time,
        e.status,
        -- Counted for the page's rows only (evaluated after ORDER BY / LIMIT).
        (SELECT count(*) FROM markets m WHERE m.event_id = e.id AND m.is_active) AS market_count
    FROM events e
    JOIN teams ht ON e.home_team_id = ht.id
    JOIN teams awt ON e.away_team_id = awt.id
    WHERE e.sport_id = p_sport_id
      AND (e.start_time > CURRENT_TIMESTAMP - INTERVAL '1 day'
           OR e.status IN ('live', 'halftime', 'suspended'))
    -- e.id breaks ties between events with the same kick-off, so pages neither repeat nor skip.
    ORDER BY e.start_time, e.id
    LIMIT p_limit OFFSET p_offset;
$$;

-- A user's newest bets with their legs. Same signature and columns as the draft; each leg
-- object also carries selection_id.
CREATE FUNCTION get_user_betting_history(
    p_user_id UUID,
    p_limit INTEGER DEFAULT 50
) RETURNS TABLE (
    bet_id UUID,
    bet_type bet_type,
    stake DECIMAL,
    total_odds DECIMAL,
    status bet_status,
    placed_at TIMESTAMP WITH TIME ZONE,
    selections JSON
) LANGUAGE SQL STABLE AS $$
    SELECT
        b.id,
        b.type,
        b.stake,
        b.total_odds,
        b.status,
        b.placed_at,
        legs.selections
    -- The page is chosen first (idx_bets_user_placed_at), then only its legs are aggregated.
    FROM (
        SELECT id, type, stake, total_odds, status, placed_at
        FROM bets
        WHERE user_id = p_user_id
        ORDER BY placed_at DESC, id DESC
        LIMIT p_limit
    ) b
    CROSS JOIN LATERAL (
        SELECT JSON_AGG(
                   JSON_BUILD_OBJECT(
                       'selection_id', s.id,
                       'selection_name', s.name,
                       'odds', bs.odds,
                       'result', bs.result
                   ) ORDER BY bs.id
               ) AS selections
        FROM bet_selections bs
        JOIN selections s ON bs.selection_id = s.id
        WHERE bs.bet_id = b.id
    ) legs
    ORDER BY b.placed_at DESC, b.id DESC;
$$;

------------------------------------------------------------------------------------------------
-- Bet placement [C6]
-- The draft's BEFORE INSERT trigger ran before any leg existed (so its event check never saw a
-- row), read the balance without a lock (two concurrent bets both passed) and refused every
-- in-play bet. Instead, checked at COMMIT, once the engine has written the bet, its legs, its
-- stake debit and the balance update in the same transaction:
--   * legs: at least one; single = 1, parlay >= 2, system >= 3;
--   * every leg's market is not settled/voided and its event not finished/cancelled;
--   * exactly one live bet_debit transaction of the bet's user with amount = -stake.
-- Funds: the debit is applied to user_balances in the same transaction, where
-- user_balances_balance_non_negative refuses an overdraft; the row lock taken by that UPDATE
-- serializes concurrent debits of one user, so there is no read-then-write race.
------------------------------------------------------------------------------------------------

-- plan_cache_mode: the = ANY (array) lookup would otherwise be re-planned for every bet (its
-- custom plan looks cheaper than the generic one), which tripled the cost of the check.
CREATE FUNCTION check_bet_placement() RETURNS trigger
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_bet    RECORD;
    v_closed RECORD;
BEGIN
    -- Deferred: read the bet as it stands at commit, not as first inserted. One statement
    -- gathers everything (each SPI statement costs several microseconds, paid once per bet),
    -- and it is written as key lookups (LATERAL on the bet's id, a scalar subquery for each
    -- leg's market) so that the plan stays index lookups whatever the statistics say. The
    -- debit is counted with FILTER rather than WHERE type = ..., so that the scan is the bet's
    -- own few transactions (idx_transactions_related_bet), never every bet_debit.
    SELECT b.user_id, b.type, b.stake, legs.n AS legs, legs.market_ids,
           debits.n AS debits, debits.ok AS debit_ok
    INTO v_bet
    FROM bets b
    CROSS JOIN LATERAL (
        SELECT count(*) AS n,
               array_agg((SELECT s.market_id FROM selections s WHERE s.id = bs.selection_id))
                   AS market_ids
        FROM bet_selections bs
        WHERE bs.bet_id = b.id
    ) legs
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE t.type = 'bet_debit'
                                  AND t.status NOT IN ('failed', 'cancelled', 'reversed')) AS n,
               coalesce(bool_and(t.amount = -b.stake AND t.user_id = b.user_id)
                            FILTER (WHERE t.type = 'bet_debit'
                                      AND t.status NOT IN ('failed', 'cancelled', 'reversed')),
                        false) AS ok
        FROM transactions t
        WHERE t.related_bet_id = b.id
    ) debits
    WHERE b.id = NEW.id;
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

    -- The legs' markets, share-locked in id order until commit: a concurrent settlement or void
    -- (an UPDATE of the market row) waits for this transaction, so it cannot miss these legs;
    -- one that committed first is what FOR SHARE returns (the latest row version). Events are
    -- read, not locked: their rows change on every score update. The aggregate reads (so
    -- locks) every row; the first closed leg, if any, is kept for the message.
    SELECT count(*) FILTER (WHERE l.closed) AS n,
           (array_agg(l.market_id) FILTER (WHERE l.closed))[1] AS market_id,
           (array_agg(l.market_status) FILTER (WHERE l.closed))[1] AS market_status,
           (array_agg(l.event_id) FILTER (WHERE l.closed))[1] AS event_id,
           (array_agg(l.event_status) FILTER (WHERE l.closed))[1] AS event_status
    INTO v_closed
    FROM (
        SELECT m.id AS market_id, m.status AS market_status,
               e.id AS event_id, e.status AS event_status,
               m.status IN ('settled', 'voided') OR e.status IN ('finished', 'cancelled')
                   AS closed
        FROM markets m
        JOIN events e ON e.id = m.event_id
        WHERE m.id = ANY (v_bet.market_ids)
        ORDER BY m.id
        FOR SHARE OF m
    ) l;

    IF v_closed.n > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'bets_markets_open_check',
            TABLE = 'bets',
            MESSAGE = format('bets_markets_open_check: bet %s has a leg on market %s (%s) of event '
                             '%s (%s); settled or voided markets and finished or cancelled '
                             'events take no bets', NEW.id, v_closed.market_id,
                             v_closed.market_status, v_closed.event_id, v_closed.event_status);
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

CREATE CONSTRAINT TRIGGER trigger_check_bet_placement
    AFTER INSERT ON bets
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION check_bet_placement();

-- Early answer when a leg is written: its selection's market must not be settled or voided.
-- (The deferred check above re-checks at commit, under lock.)
CREATE FUNCTION check_bet_selection_market() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_market_id UUID;
    v_status    market_status;
BEGIN
    SELECT s.market_id, (SELECT m.status FROM markets m WHERE m.id = s.market_id)
    INTO v_market_id, v_status
    FROM selections s
    WHERE s.id = NEW.selection_id;
    -- An unknown selection is left to the foreign key, which names it.
    IF FOUND AND v_status IN ('settled', 'voided') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'bet_selections_market_open_check',
            TABLE = 'bet_selections',
            COLUMN = 'selection_id',
            MESSAGE = format('bet_selections_market_open_check: selection %s belongs to market '
                             '%s, which is %s', NEW.selection_id, v_market_id, v_status);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_check_bet_selection_market
    BEFORE INSERT OR UPDATE OF selection_id ON bet_selections
    FOR EACH ROW EXECUTE FUNCTION check_bet_selection_market();

------------------------------------------------------------------------------------------------
-- Daily maintenance [C7]
-- VACUUM cannot run inside a function (a function always runs inside a transaction) and
-- pg_cron is not available. The engine's scheduler runs, as separate autocommit statements:
--   VACUUM (ANALYZE) bets, transactions, selections, user_balances;
--   SELECT daily_maintenance();
-- An operator does the same by hand with psql (docs/schema.md, "Daily maintenance").
------------------------------------------------------------------------------------------------

CREATE FUNCTION daily_maintenance() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_started       TIMESTAMPTZ := clock_timestamp();
    v_audit_log     BIGINT;
    v_system_events BIGINT;
BEGIN
    -- Retention: audit trail one year, system events six months.
    DELETE FROM audit_log
    WHERE timestamp < CURRENT_TIMESTAMP - INTERVAL '1 year';
    GET DIAGNOSTICS v_audit_log = ROW_COUNT;

    DELETE FROM system_events
    WHERE created_at < CURRENT_TIMESTAMP - INTERVAL '6 months';
    GET DIAGNOSTICS v_system_events = ROW_COUNT;

    -- Statistics of the tables the VACUUM (ANALYZE) step does not cover.
    ANALYZE events;
    ANALYZE markets;
    ANALYZE users;

    RETURN jsonb_build_object(
        'deleted', jsonb_build_object('audit_log', v_audit_log,
                                      'system_events', v_system_events),
        'analyzed', jsonb_build_array('events', 'markets', 'users'),
        'duration_ms', round(extract(epoch FROM clock_timestamp() - v_started) * 1000)
    );
END;
$$;
