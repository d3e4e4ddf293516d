-- V71: the deferred placement check reads the months a bet's debit can be in, not every
-- month of transactions (docs/operations.md "Partitions", docs/schema.md "V71").
--
-- Measured before this (scripts/bench-ledger-insert.sh): the partitioned insert path ran at
-- 0.79x the V44 rate, the difference being the check probing idx_transactions_related_bet in
-- every partition of transactions (past months, the premade ones, the default) for every bet
-- at commit.
--
-- Which months can hold a bet's debit, exactly: a debit references its bet through
-- bet_keys(id), and a bet's key row is written in the bet's own INSERT statement, so no
-- other transaction can reference it before that transaction commits. Every debit the check
-- can see at commit was therefore inserted by the bet's own transaction. Such a debit is
-- dated by default now() (the transaction's start); the guard below makes the rest exact:
-- a bet_debit row must be dated within the "placement window" of its bet, the months from
-- the earlier to the later of the bet's placed_at and the inserting transaction's start.
-- The check then reads only that window: one partition normally, two at a month's turn,
-- more only for a bet placed back in time (loading history).

-- The first instant of the window and the first instant after it (UTC months; a partition
-- boundary in another zone only makes the window touch one more partition).
CREATE FUNCTION bet_debit_window_start(placed_at TIMESTAMPTZ) RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_trunc('month', least(placed_at, transaction_timestamp()), 'UTC')
$$;

CREATE FUNCTION bet_debit_window_end(placed_at TIMESTAMPTZ) RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_trunc('month', greatest(placed_at, transaction_timestamp()), 'UTC')
           + interval '1 month'
$$;

-- The guard, in the statement trigger that already reads every inserted transaction (V48):
-- a stake debit dated outside its bet's window is refused (no engine path writes one).
CREATE OR REPLACE FUNCTION record_transaction_keys() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_bad RECORD;
BEGIN
    INSERT INTO transaction_keys (id, user_id, reference, idempotency_key, created_at)
    SELECT id, user_id, reference, idempotency_key, created_at FROM transactions_new
    WHERE reference IS NOT NULL OR idempotency_key IS NOT NULL;

    SELECT n.id, n.created_at, n.related_bet_id, k.placed_at INTO v_bad
    FROM transactions_new n
    JOIN bet_keys k ON k.id = n.related_bet_id
    WHERE n.type = 'bet_debit'
      AND (n.created_at < bet_debit_window_start(k.placed_at)
           OR n.created_at >= bet_debit_window_end(k.placed_at))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'transactions_bet_debit_dated_check',
            TABLE = 'transactions',
            MESSAGE = format('transactions_bet_debit_dated_check: the stake debit %s of bet %s '
                             'is dated %s; a stake debit is dated between the month of its '
                             'bet (placed %s) and the month of the transaction writing it',
                             v_bad.id, v_bad.related_bet_id, v_bad.created_at, v_bad.placed_at);
    END IF;
    RETURN NULL;
END;
$$;

-- The check of V49, its debits read in the bet's window only (pruned at executor start-up,
-- like the bet's own partition).
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
