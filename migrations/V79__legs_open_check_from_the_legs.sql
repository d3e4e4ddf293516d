-- The open-market check of new legs (V40) starts from the legs, not from the status filter.
--
-- V40's check joined the new legs to their selections, markets and events under the filter
-- "market settled or voided, or event finished or cancelled". The planner expects almost no
-- market or event to match that filter, so it read every market and every event (two
-- sequential scans and a hash join) and joined the few matches to the legs. That read grows
-- with the catalogue, settled markets included, for every batch of bets: 1.4 ms a batch on
-- the bench database's 5,000 markets, against 0.15 ms for the same 32 legs looked up by key.
--
-- Here the legs' markets and events are looked up first (a materialized CTE, so the filter
-- cannot be pushed down into the join and make the planner start from it) and the filter
-- applies to those rows only. How the legs are joined is still the planner's choice by the
-- tables' sizes (a tiny catalogue may be read whole, which is then the cheaper way); what
-- goes is the read of every market and event that the filter's estimate caused. The lock
-- statement reads each leg's market once instead of twice. What the function checks, the
-- errors it raises and the locks it takes, in their order, are V40's; when one batch has both a
-- closed market and a finished event, the closed market is now the one named, every time.
CREATE OR REPLACE FUNCTION check_bet_legs_open() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_closed RECORD;
BEGIN
    -- The keys of every market and event these legs are on, shared-locked until commit in
    -- one global order (so two batches never wait for each other in a cycle).
    PERFORM pg_advisory_xact_lock_shared(k.key)
    FROM (
        WITH on_markets AS MATERIALIZED (
            SELECT DISTINCT s.market_id, m.event_id
            FROM legs_new l
            JOIN selections s ON s.id = l.selection_id
            JOIN markets m ON m.id = s.market_id
        )
        SELECT bet_lock_key('market', market_id) AS key FROM on_markets
        UNION
        SELECT bet_lock_key('event', event_id) FROM on_markets
        ORDER BY 1
    ) k;

    -- A new statement, so a new snapshot: a settlement or a final whistle that committed
    -- while this transaction waited for its locks is seen here.
    WITH legs AS MATERIALIZED (
        SELECT l.selection_id, s.market_id, m.status AS market_status, m.event_id,
               e.status AS event_status
        FROM legs_new l
        JOIN selections s ON s.id = l.selection_id
        JOIN markets m ON m.id = s.market_id
        JOIN events e ON e.id = m.event_id
    )
    SELECT selection_id, market_id, market_status, event_id, event_status,
           market_status IN ('settled', 'voided') AS market_closed
    INTO v_closed
    FROM legs
    WHERE market_status IN ('settled', 'voided') OR event_status IN ('finished', 'cancelled')
    -- A closed market is named before a closed event, whichever leg comes first.
    ORDER BY market_status IN ('settled', 'voided') DESC
    LIMIT 1;

    IF FOUND AND v_closed.market_closed THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'bet_selections_market_open_check',
            TABLE = 'bet_selections',
            COLUMN = 'selection_id',
            MESSAGE = format('bet_selections_market_open_check: selection %s belongs to market '
                             '%s, which is %s', v_closed.selection_id, v_closed.market_id,
                             v_closed.market_status);
    ELSIF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'bets_markets_open_check',
            TABLE = 'bets',
            MESSAGE = format('bets_markets_open_check: selection %s is on market %s of event '
                             '%s (%s); finished or cancelled events take no bets',
                             v_closed.selection_id, v_closed.market_id, v_closed.event_id,
                             v_closed.event_status);
    END IF;
    RETURN NULL;
END;
$$;
