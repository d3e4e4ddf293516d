-- V61: trader referral (issue 18, docs/bets.md "Referral").
--
-- A bet that breaks a referable limit (`liability_exceeded`, `stake_too_high`) on a market
-- with referral on is written like an accepted bet (the bet, its legs, its `bet_debit`: the
-- stake is held by the debit) but in status `referred`, with one `bet_referrals` row in the
-- same transaction. The desk's decision, the bettor's answer to a counter-offer or the
-- expiry of either window moves the bet to `accepted` or `rejected` exactly once: the
-- referral row's status is the guard (`pending` or `countered` to a final status), and any
-- money given back (the whole stake, or what a lower counter stake leaves over) is a
-- `refund` row with reference `referral:<bet_id>` in the same transaction.
ALTER TYPE bet_status ADD VALUE IF NOT EXISTS 'referred';

-- The market's own referral settings (NULL: the sport's and market type's defaults).
ALTER TABLE markets
    ADD COLUMN referral_window_ms INT,
    ADD COLUMN referable TEXT[],
    ADD CONSTRAINT markets_referral_window CHECK (referral_window_ms BETWEEN 0 AND 3600000),
    ADD CONSTRAINT markets_referable CHECK (
        referable <@ ARRAY['liability_exceeded', 'stake_too_high']::TEXT[]);

CREATE TABLE bet_referrals (
    bet_id UUID PRIMARY KEY,
    user_id UUID NOT NULL,
    -- pending (the desk decides), countered (the bettor answers), accepted, rejected
    -- (by the desk), expired (no answer from the desk in time), declined (the bettor said
    -- no to the counter-offer), counter_expired (no answer from the bettor in time).
    status TEXT NOT NULL DEFAULT 'pending',
    -- The refusal that was referred: liability_exceeded or stake_too_high.
    reason TEXT NOT NULL,
    -- The stake held (the bet's stake as placed) and the liability it would add.
    stake DECIMAL(12,2) NOT NULL,
    liability DECIMAL(18,2) NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    counter_stake DECIMAL(12,2),
    counter_odds DECIMAL(8,4),
    counter_expires_at TIMESTAMPTZ,
    -- The money given back when it ended (all of the stake if rejected).
    refunded DECIMAL(12,2) NOT NULL DEFAULT 0,
    decided_by UUID,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ,
    CONSTRAINT bet_referrals_status CHECK (status IN ('pending', 'countered', 'accepted',
        'rejected', 'expired', 'declined', 'counter_expired')),
    CONSTRAINT bet_referrals_reason CHECK (reason IN ('liability_exceeded', 'stake_too_high')),
    CONSTRAINT bet_referrals_amounts CHECK (stake > 0 AND liability >= 0 AND refunded >= 0
        AND refunded <= stake AND (counter_stake IS NULL OR (counter_stake > 0
        AND counter_stake <= stake)) AND (counter_odds IS NULL OR counter_odds > 1)),
    CONSTRAINT bet_referrals_counter CHECK ((status = 'countered') <= (counter_expires_at IS NOT NULL))
);

-- The desk's queue and start-up recovery read the open ones only.
CREATE INDEX idx_bet_referrals_open ON bet_referrals (created_at)
    WHERE status IN ('pending', 'countered');

CREATE TRIGGER trigger_bet_referrals_append_only BEFORE DELETE ON bet_referrals
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();

-- The desk's decisions and counter-offers are trading actions: audited with who did them
-- (the bet's own change is audited by the bets trigger in the same transaction).
CREATE TRIGGER trigger_audit_bet_referrals_update AFTER UPDATE ON bet_referrals
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION audit_statement_change('bet_id');
