-- V35: settlement, resettlement and voids (docs/settlement.md).
--
-- A market's settlement is recorded durably first (market_settlements: results, version),
-- then its bets are processed in batches; an unfinished row is resumed on start-up.

CREATE TABLE market_settlements (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    market_id UUID NOT NULL REFERENCES markets(id) ON DELETE RESTRICT,
    -- 1 for the first settlement (or void) of the market, +1 per correction.
    version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    -- [{selection_id, result, dead_heat_factor, void_factor}] as applied.
    results JSONB NOT NULL DEFAULT '[]',
    -- Bets placed after this moment are refunded (past-posting), not paid.
    void_after TIMESTAMP WITH TIME ZONE,
    reason TEXT,
    created_by UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Progress: selection by selection (in id order), bets in id order; where the last
    -- committed batch ended.
    cursor_selection_id UUID,
    cursor_bet_id UUID,
    bets_changed INTEGER NOT NULL DEFAULT 0,
    completed_at TIMESTAMP WITH TIME ZONE,

    CONSTRAINT market_settlements_kind CHECK (kind IN ('settle', 'resettle', 'void')),
    CONSTRAINT market_settlements_version_positive CHECK (version > 0),
    UNIQUE (market_id, version)
);
-- At most one unfinished settlement per market.
CREATE UNIQUE INDEX market_settlements_one_open ON market_settlements (market_id)
    WHERE completed_at IS NULL;

-- A leg's settlement: factors and the market settlement version that last wrote it.
ALTER TABLE bet_selections
    ADD COLUMN dead_heat_factor NUMERIC,
    ADD COLUMN void_factor NUMERIC,
    ADD COLUMN settlement_version INTEGER,
    ADD CONSTRAINT bet_selections_dead_heat_factor_range
        CHECK (dead_heat_factor IS NULL OR (dead_heat_factor > 0 AND dead_heat_factor <= 1)),
    ADD CONSTRAINT bet_selections_void_factor_range
        CHECK (void_factor IS NULL OR (void_factor > 0 AND void_factor <= 1));

-- Settlement walks a selection's legs in bet id order.
CREATE INDEX idx_bet_selections_selection_bet ON bet_selections (selection_id, bet_id);

-- How many times the bet's payout was booked: every booking is compare-and-set on it, so a
-- retried or resumed batch books nothing twice (references carry it: settle:<bet>:<seq>).
ALTER TABLE bets ADD COLUMN settlement_seq INTEGER NOT NULL DEFAULT 0;

-- Money a resettlement could not take back (the balance never goes below 0).
CREATE TABLE user_debts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    bet_id UUID NOT NULL REFERENCES bets(id),
    amount DECIMAL(12,2) NOT NULL,
    reference VARCHAR(100) NOT NULL UNIQUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT user_debts_amount_positive CHECK (amount > 0)
);
CREATE INDEX idx_user_debts_user ON user_debts (user_id);
CREATE INDEX idx_user_debts_bet ON user_debts (bet_id);
