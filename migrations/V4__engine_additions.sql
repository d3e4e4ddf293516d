-- V4: what the engine needs beyond the seed design (docs/schema.md, "Engine additions").
-- Every column is nullable or has a default, so this also applies to a populated database.

-- Idempotency: the same key from the same user places nothing twice (API.md, Bets; Wallet).
-- NULLs are distinct, so rows without a key never collide.
ALTER TABLE bets
    ADD COLUMN idempotency_key VARCHAR(100),
    ADD CONSTRAINT bets_user_idempotency_key UNIQUE (user_id, idempotency_key);

ALTER TABLE transactions
    ADD COLUMN idempotency_key VARCHAR(100);
CREATE UNIQUE INDEX transactions_user_idempotency_key
    ON transactions (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Per-market trading limits; NULL means "use the sport's default" (from configuration).
ALTER TABLE markets
    ADD COLUMN in_play BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN bet_delay_ms INTEGER,
    ADD COLUMN min_stake NUMERIC(12,2),
    ADD COLUMN max_stake NUMERIC(12,2),
    ADD COLUMN max_liability_selection NUMERIC(14,2),
    ADD COLUMN max_liability_market NUMERIC(14,2),
    -- Set when the feed provider went silent (heartbeat window) or sent bet_stop; kept apart
    -- from the trader's status so that the feed's resume cannot undo a trader's suspension.
    ADD COLUMN feed_suspended BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT markets_bet_delay_non_negative CHECK (bet_delay_ms >= 0),
    ADD CONSTRAINT markets_min_stake_positive CHECK (min_stake > 0),
    ADD CONSTRAINT markets_max_stake_positive CHECK (max_stake > 0),
    ADD CONSTRAINT markets_stake_range CHECK (max_stake >= min_stake),
    ADD CONSTRAINT markets_max_liability_selection_positive CHECK (max_liability_selection > 0),
    ADD CONSTRAINT markets_max_liability_market_positive CHECK (max_liability_market > 0);

-- The feed provider's id of an event: fixtures arrive by (provider, event_ref).
ALTER TABLE events
    ADD COLUMN provider TEXT,
    ADD COLUMN provider_event_ref TEXT,
    ADD CONSTRAINT events_provider_ref_pair CHECK ((provider IS NULL) = (provider_event_ref IS NULL));
CREATE UNIQUE INDEX events_provider_event_ref_key
    ON events (provider, provider_event_ref)
    WHERE provider IS NOT NULL AND provider_event_ref IS NOT NULL;

-- Last applied feed sequence number per provider and event: a seq <= last_seq is a duplicate,
-- a seq > last_seq + 1 is a gap.
CREATE TABLE feed_sequences (
    provider TEXT NOT NULL,
    event_ref TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (provider, event_ref),
    CONSTRAINT feed_sequences_last_seq_non_negative CHECK (last_seq >= 0)
);
CREATE TRIGGER trigger_feed_sequences_updated_at BEFORE UPDATE ON feed_sequences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Per-user trading controls (API.md, Trading: "status, stake factor, max stake").
ALTER TABLE users
    -- Multiplies the market's stake limits for this user (0.5 halves them).
    ADD COLUMN stake_factor NUMERIC(6,3) NOT NULL DEFAULT 1,
    -- NULL: no per-user cap beyond the market's.
    ADD COLUMN max_stake NUMERIC(12,2),
    -- The account owes money the balance cannot show (it never goes below 0), e.g. a
    -- resettlement reclaimed winnings already withdrawn.
    ADD COLUMN debt_flag BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT users_stake_factor_positive CHECK (stake_factor > 0),
    ADD CONSTRAINT users_max_stake_positive CHECK (max_stake > 0);
