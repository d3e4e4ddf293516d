-- V60: cash-out (issue 18, docs/bets.md "Cash-out").
--
-- A bet keeps its `stake` and `potential_win` as placed (the money paid and the win it was
-- priced at). A cash-out moves part or all of them out of risk: `cashed_out_stake` and
-- `cashed_out_win` are the parts taken out so far, `cashed_out_amount` what was paid for
-- them. What remains at risk, and what settlement, voids and recovered liability count, is
-- `stake - cashed_out_stake` and `potential_win - cashed_out_win`. A bet cashed out in full
-- is `cashed_out` (final: no settlement or resettlement touches it).
ALTER TYPE bet_status ADD VALUE IF NOT EXISTS 'cashed_out';

ALTER TABLE bets
    ADD COLUMN cashed_out_stake DECIMAL(12,2) NOT NULL DEFAULT 0,
    ADD COLUMN cashed_out_win DECIMAL(18,2) NOT NULL DEFAULT 0,
    ADD COLUMN cashed_out_amount DECIMAL(18,2) NOT NULL DEFAULT 0,
    -- Cash out in full when the offer reaches this (NULL: not armed). Stored, so an armed
    -- bet survives a restart.
    ADD COLUMN auto_cash_out_threshold DECIMAL(12,2),
    -- A bet with nothing cashed out passes whatever its stake: the stake's own checks
    -- (bets_stake_positive...) name what is wrong with it.
    ADD CONSTRAINT bets_cashed_out_parts CHECK (
        cashed_out_stake >= 0 AND (cashed_out_stake = 0 OR cashed_out_stake <= stake)
        AND cashed_out_win >= 0 AND (cashed_out_win = 0 OR cashed_out_win <= potential_win)
        AND cashed_out_amount >= 0),
    ADD CONSTRAINT bets_auto_cash_out_positive CHECK (auto_cash_out_threshold > 0);

CREATE INDEX idx_bets_auto_cash_out ON bets (id) WHERE auto_cash_out_threshold IS NOT NULL;

-- One row per cash-out (a bet may be cashed out in parts): the record of what was taken
-- out and paid, written in the same transaction as its `bet_credit` row (reference
-- `cashout:<bet_id>:<seq>`, unique) and the bet's new parts. No foreign key to `bets`: the
-- ledger tables are being partitioned by time (the bet's id and seq are the key here).
CREATE TABLE bet_cash_outs (
    bet_id UUID NOT NULL,
    seq INT NOT NULL,
    user_id UUID NOT NULL,
    stake DECIMAL(12,2) NOT NULL,
    potential_win DECIMAL(18,2) NOT NULL,
    amount DECIMAL(18,2) NOT NULL,
    fraction DECIMAL(5,4) NOT NULL,
    -- 'manual' or 'auto'.
    trigger TEXT NOT NULL,
    idempotency_key VARCHAR(100),
    fingerprint TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bet_id, seq),
    CONSTRAINT bet_cash_outs_user_key UNIQUE (user_id, idempotency_key),
    CONSTRAINT bet_cash_outs_amounts CHECK (stake > 0 AND potential_win >= 0 AND amount >= 0
        AND fraction > 0 AND fraction <= 1),
    CONSTRAINT bet_cash_outs_trigger CHECK (trigger IN ('manual', 'auto'))
);

CREATE TRIGGER trigger_bet_cash_outs_append_only BEFORE DELETE ON bet_cash_outs
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_delete();
