-- The placement check (V76) once per transaction instead of once per bet, and two indexes
-- that another index already covers (docs/schema.md, C6 and C12).
--
-- The check is the same: at COMMIT, every bet inserted by the transaction has the legs its
-- type needs and exactly the debits (or the free bet) its funding needs. What changes is
-- how it runs. V76 ran one plpgsql query per bet, each with its own executor start-up over
-- the partitioned `bets` and `transactions`: 40 µs per bet of the ledger writer's batches,
-- a fifth of Postgres's time per bet. Now:
--   - a statement-level trigger on `bets` adds the ids each INSERT wrote to a list kept in
--     the transaction (the setting `winzo.bets_to_check`, local to the transaction and
--     undone with a rolled-back savepoint, like the rows it names);
--   - the deferred row trigger stays (it is what runs at COMMIT, or at SET CONSTRAINTS
--     ... IMMEDIATE), but the first of its calls checks the whole list in one set-based
--     query and empties it; the later calls find it empty and return at once.

CREATE FUNCTION queue_bet_placement_check() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('winzo.bets_to_check',
                       (coalesce(nullif(current_setting('winzo.bets_to_check', true), ''),
                                 '{}')::uuid[]
                        || ARRAY(SELECT id FROM bets_new))::text,
                       true);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trigger_queue_bet_placement_check
    AFTER INSERT ON bets REFERENCING NEW TABLE AS bets_new
    FOR EACH STATEMENT EXECUTE FUNCTION queue_bet_placement_check();

CREATE OR REPLACE FUNCTION check_bet_placement() RETURNS trigger
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_ids UUID[];
    v_bet RECORD;
BEGIN
    v_ids := nullif(current_setting('winzo.bets_to_check', true), '')::uuid[];
    IF v_ids IS NULL OR cardinality(v_ids) = 0 THEN
        RETURN NULL;  -- checked by an earlier call at this commit
    END IF;
    PERFORM set_config('winzo.bets_to_check', '', true);

    -- The first bet that breaks a rule, if any. A bet inserted and deleted again in the
    -- same transaction has no row left and is skipped.
    SELECT c.*
    INTO v_bet
    FROM (SELECT DISTINCT id FROM unnest(v_ids) AS id) p
    JOIN bet_keys k ON k.id = p.id
    JOIN bets b ON b.id = k.id AND b.placed_at = k.placed_at
    CROSS JOIN LATERAL (
        SELECT b.id, b.type, b.stake, b.bonus_stake, b.free_bet_id,
               CASE WHEN b.free_bet_id IS NULL THEN b.stake - b.bonus_stake ELSE 0 END AS cash,
               (SELECT count(*) FROM bet_selections bs WHERE bs.bet_id = b.id) AS legs,
               d.n AS debits, d.ok AS debit_ok, d.bn AS bonus_debits, d.bok AS bonus_ok,
               (SELECT count(*) FROM free_bets f WHERE f.id = b.free_bet_id AND f.bet_id = b.id
                    AND f.user_id = b.user_id) AS token
        FROM (
            SELECT count(*) FILTER (WHERE t.type = 'bet_debit'
                                      AND t.status NOT IN ('failed', 'cancelled', 'reversed'))
                       AS n,
                   coalesce(bool_and(t.amount = -(b.stake - b.bonus_stake)
                                     AND t.user_id = b.user_id)
                                FILTER (WHERE t.type = 'bet_debit'
                                          AND t.status NOT IN ('failed', 'cancelled',
                                                               'reversed')),
                            true) AS ok,
                   count(*) FILTER (WHERE t.type = 'bonus' AND t.reference LIKE 'bonus:stake:%'
                                      AND t.status = 'completed') AS bn,
                   coalesce(bool_and(t.amount = -b.bonus_stake AND t.user_id = b.user_id)
                                FILTER (WHERE t.type = 'bonus'
                                          AND t.reference LIKE 'bonus:stake:%'
                                          AND t.status = 'completed'),
                            true) AS bok
            FROM transactions t
            WHERE t.related_bet_id = b.id
              AND t.created_at >= bet_debit_window_start(b.placed_at)
              AND t.created_at < bet_debit_window_end(b.placed_at)
        ) d
    ) c
    WHERE c.legs = 0
       OR (c.type = 'single' AND c.legs <> 1)
       OR (c.type = 'parlay' AND c.legs < 2)
       OR (c.type = 'system' AND c.legs < 3)
       OR c.debits <> (CASE WHEN c.cash > 0 THEN 1 ELSE 0 END) OR NOT c.debit_ok
       OR c.bonus_debits <> (CASE WHEN c.bonus_stake > 0 THEN 1 ELSE 0 END)
       OR NOT c.bonus_ok
       OR (c.free_bet_id IS NOT NULL AND c.token <> 1)
    ORDER BY c.id
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
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
                             v_bet.type, v_bet.id, v_bet.legs);
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        CONSTRAINT = 'bets_stake_debit_check',
        TABLE = 'bets',
        MESSAGE = format('bets_stake_debit_check: bet %s needs exactly one bet_debit '
                         'transaction of its user for -%s; found %s debit(s) '
                         '(all of the right user and amount: %s), %s bonus debit(s) '
                         '(right: %s), free bet %s held: %s',
                         v_bet.id, v_bet.cash, v_bet.debits, v_bet.debit_ok, v_bet.bonus_debits,
                         v_bet.bonus_ok, v_bet.free_bet_id, v_bet.token);
END;
$$;

-- (selection_id, bet_id) (V35, settlement's walk) serves every lookup and foreign-key check
-- that (selection_id) alone (V2) did; each leg wrote both.
DROP INDEX idx_bet_selections_selection;

-- The seed's (user_id, created_at DESC) is a prefix of V5's (user_id, created_at DESC,
-- id DESC), the wallet history's order. One index under the seed's name, with the tie-break.
DROP INDEX idx_transactions_user_created_id;
DROP INDEX idx_transactions_user_created_at;
CREATE INDEX idx_transactions_user_created_at ON transactions (user_id, created_at DESC, id DESC);
