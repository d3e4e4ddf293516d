-- V51: bonus money and free bets of issue 17 (docs/accounts.md, "Bonuses and free bets").
--
-- Two balances, one ledger: `user_balances.balance` moves by every completed transaction
-- except those of type `bonus`, `user_balances.bonus_balance` by exactly those of type
-- `bonus` (grant, bonus part of a stake, bonus part of a payout or refund, conversion,
-- retraction). `winzo check-ledger` proves both.

-- A trader's grant. At most one active bonus per user (the partial unique index): its
-- wagering is counted at settlement (`bonus_wagers`), a met requirement moves the bonus
-- balance to cash (capped by config), an expiry retracts what is left.
CREATE TABLE bonuses (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id),
    amount DECIMAL(12,2) NOT NULL,
    wagering_multiplier INTEGER NOT NULL,
    -- amount × multiplier: the settled qualifying stakes needed.
    wagering_required DECIMAL(14,2) NOT NULL,
    wagering_progress DECIMAL(14,2) NOT NULL DEFAULT 0,
    min_odds DECIMAL(10,4) NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    -- At completion at most this much bonus money moves to cash (`[bonus] conversion_max`
    -- when granted: part of the bonus's terms); the rest is retracted.
    conversion_cap DECIMAL(12,2) NOT NULL,
    -- active → completed (requirement met, converted) | expired (retracted).
    status VARCHAR(10) NOT NULL DEFAULT 'active',
    -- What moved to cash at completion and what was retracted (completion or expiry).
    converted_amount DECIMAL(12,2) NOT NULL DEFAULT 0,
    retracted_amount DECIMAL(12,2) NOT NULL DEFAULT 0,
    idempotency_key VARCHAR(100) NOT NULL,
    granted_by UUID REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at TIMESTAMPTZ,
    CONSTRAINT bonuses_user_key UNIQUE (user_id, idempotency_key),
    CONSTRAINT bonuses_amounts CHECK (amount > 0 AND wagering_multiplier >= 0
        AND wagering_required = amount * wagering_multiplier AND wagering_progress >= 0
        AND min_odds >= 1 AND conversion_cap >= 0 AND converted_amount >= 0 AND retracted_amount >= 0),
    CONSTRAINT bonuses_status CHECK (status IN ('active', 'completed', 'expired'))
);
CREATE UNIQUE INDEX bonuses_one_active ON bonuses (user_id) WHERE status = 'active';
CREATE INDEX idx_bonuses_expiry ON bonuses (expires_at) WHERE status = 'active';

-- Each settled qualifying bet counted towards a bonus, once. `wagering_progress` is the
-- sum of these rows (checked by `winzo check-ledger`). A counted bet that is voided or
-- reopened later while its bonus is still active is taken out again (row deleted).
CREATE TABLE bonus_wagers (
    bonus_id UUID NOT NULL REFERENCES bonuses(id),
    bet_id UUID NOT NULL,
    stake DECIMAL(12,2) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bonus_id, bet_id),
    CONSTRAINT bonus_wagers_stake_positive CHECK (stake > 0)
);

-- A free bet token: spent whole by one bet (`bet_id`), restored by that bet's void while
-- not expired.
CREATE TABLE free_bets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id),
    stake DECIMAL(12,2) NOT NULL,
    min_odds DECIMAL(10,4) NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    -- available → spent (by bet_id) → available (void, not expired) | expired.
    status VARCHAR(10) NOT NULL DEFAULT 'available',
    bet_id UUID,
    idempotency_key VARCHAR(100) NOT NULL,
    granted_by UUID REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    spent_at TIMESTAMPTZ,
    CONSTRAINT free_bets_user_key UNIQUE (user_id, idempotency_key),
    CONSTRAINT free_bets_amounts CHECK (stake > 0 AND min_odds >= 1),
    CONSTRAINT free_bets_status CHECK (status IN ('available', 'spent', 'expired')),
    CONSTRAINT free_bets_spent_by CHECK ((status = 'spent') = (bet_id IS NOT NULL))
);
CREATE INDEX idx_free_bets_user ON free_bets (user_id, created_at);
CREATE INDEX idx_free_bets_expiry ON free_bets (expires_at) WHERE status = 'available';

-- How a bet was funded: `bonus_stake` of its stake came from bonus money (the rest from
-- cash), or the whole stake from the free bet `free_bet_id` (no money moved).
-- `bonus_win` is the part of `actual_win` booked to the bonus balance.
ALTER TABLE bets
    ADD COLUMN bonus_stake DECIMAL(12,2) NOT NULL DEFAULT 0,
    ADD COLUMN free_bet_id UUID,
    ADD COLUMN bonus_win DECIMAL(18,2) NOT NULL DEFAULT 0,
    -- A bet with no bonus part passes whatever its stake: the stake's own checks
    -- (bets_stake_positive...) name what is wrong with it.
    ADD CONSTRAINT bets_funding CHECK (bonus_stake >= 0
        AND (bonus_stake = 0 OR bonus_stake <= stake)
        AND bonus_win >= 0 AND (free_bet_id IS NULL OR bonus_stake = 0));
CREATE INDEX idx_bets_free_bet ON bets (free_bet_id) WHERE free_bet_id IS NOT NULL;

-- The deferred placement check (V49) with the funding: a cash-funded part is one
-- `bet_debit` of -(stake - bonus_stake), a bonus-funded part one `bonus` row
-- (`bonus:stake:<bet>`) of -bonus_stake, a free bet has no debit and holds its token.
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
