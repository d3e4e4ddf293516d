-- V77's once-per-commit placement check taken back: the per-bet function of V76 again.
--
-- V77 checked the transaction's bets in one query, joined from the list of their ids. Its
-- plan is generic (forced, as V76's) and made once per session: on a new database, whose
-- tables the planner takes for a few pages, it was sequential scans of `bet_keys`,
-- `bets`, `transactions` and `bet_selections`, kept for as long as the session lived while
-- the tables grew. The pgbench baseline (one transaction per bet, a fresh database) fell
-- from about 1,050 to about 400 bets/s. V76's per-bet lookups by key do not depend on the
-- statistics that way. The two indexes V77 dropped stay dropped.
DROP TRIGGER trigger_queue_bet_placement_check ON bets;
DROP FUNCTION queue_bet_placement_check();

CREATE OR REPLACE FUNCTION check_bet_placement() RETURNS trigger
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_bet RECORD;
    v_cash DECIMAL;
BEGIN
    SELECT b.type, b.stake, b.bonus_stake, b.free_bet_id,
           (SELECT count(*) FROM bet_selections bs WHERE bs.bet_id = b.id) AS legs,
           d.n AS debits, d.ok AS debit_ok, d.bn AS bonus_debits, d.bok AS bonus_ok,
           (SELECT count(*) FROM free_bets f WHERE f.id = b.free_bet_id AND f.bet_id = b.id
                AND f.user_id = b.user_id) AS token
    INTO v_bet
    FROM bets b
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE t.type = 'bet_debit'
                                  AND t.status NOT IN ('failed', 'cancelled', 'reversed')) AS n,
               coalesce(bool_and(t.amount = -(b.stake - b.bonus_stake) AND t.user_id = b.user_id)
                            FILTER (WHERE t.type = 'bet_debit'
                                      AND t.status NOT IN ('failed', 'cancelled', 'reversed')),
                        true) AS ok,
               count(*) FILTER (WHERE t.type = 'bonus' AND t.reference LIKE 'bonus:stake:%'
                                  AND t.status = 'completed') AS bn,
               coalesce(bool_and(t.amount = -b.bonus_stake AND t.user_id = b.user_id)
                            FILTER (WHERE t.type = 'bonus' AND t.reference LIKE 'bonus:stake:%'
                                      AND t.status = 'completed'),
                        true) AS bok
        FROM transactions t
        WHERE t.related_bet_id = b.id
          AND t.created_at >= bet_debit_window_start(NEW.placed_at)
          AND t.created_at < bet_debit_window_end(NEW.placed_at)
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

    v_cash := CASE WHEN v_bet.free_bet_id IS NULL THEN v_bet.stake - v_bet.bonus_stake ELSE 0 END;
    IF v_bet.debits <> (CASE WHEN v_cash > 0 THEN 1 ELSE 0 END) OR NOT v_bet.debit_ok
       OR v_bet.bonus_debits <> (CASE WHEN v_bet.bonus_stake > 0 THEN 1 ELSE 0 END)
       OR NOT v_bet.bonus_ok
       OR (v_bet.free_bet_id IS NOT NULL AND v_bet.token <> 1) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'bets_stake_debit_check',
            TABLE = 'bets',
            MESSAGE = format('bets_stake_debit_check: bet %s needs exactly one bet_debit '
                             'transaction of its user for -%s; found %s debit(s) '
                             '(all of the right user and amount: %s), %s bonus debit(s) '
                             '(right: %s), free bet %s held: %s',
                             NEW.id, v_cash, v_bet.debits, v_bet.debit_ok, v_bet.bonus_debits,
                             v_bet.bonus_ok, v_bet.free_bet_id, v_bet.token);
    END IF;

    RETURN NULL;
END;
$$;
