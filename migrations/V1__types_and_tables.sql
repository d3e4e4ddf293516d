-- V1: enum types and the 16 tables of the seed design (shared/seed/000_bc850f522477b514.txt),
-- corrected for Postgres 15 and real data. Every departure from the draft is listed, with its
-- reason, in docs/schema.md ("Corrections"); the numbers in [C..] below refer to that list.
--
-- Refinery runs this file in one transaction: nothing here may need to run outside one.
-- gen_random_uuid() is built into Postgres 13+, so no extension is needed.

------------------------------------------------------------------------------------------------
-- Enum types, created before the tables that use them [C1]
------------------------------------------------------------------------------------------------

-- User management
CREATE TYPE user_role AS ENUM ('user', 'admin', 'moderator', 'support');
CREATE TYPE user_status AS ENUM ('active', 'suspended', 'banned', 'pending');
CREATE TYPE verification_status AS ENUM ('unverified', 'pending', 'verified', 'rejected');
CREATE TYPE odds_format AS ENUM ('american', 'decimal', 'fractional');

-- Sports data
CREATE TYPE event_status AS ENUM (
    'scheduled', 'live', 'halftime', 'finished',
    'postponed', 'cancelled', 'suspended'
);

-- Betting
CREATE TYPE market_type AS ENUM (
    'moneyline', 'point_spread', 'total_points',
    'first_half', 'prop_bet', 'futures'
);
CREATE TYPE market_status AS ENUM ('open', 'suspended', 'closed', 'settled', 'voided');
CREATE TYPE bet_type AS ENUM ('single', 'parlay', 'system');
CREATE TYPE bet_status AS ENUM (
    'pending', 'accepted', 'rejected', 'settled_win',
    'settled_loss', 'settled_push', 'cancelled', 'voided'
);
CREATE TYPE selection_result AS ENUM ('win', 'loss', 'push', 'void');

-- Financial
CREATE TYPE transaction_type AS ENUM (
    'deposit', 'withdrawal', 'bet_debit', 'bet_credit',
    'bonus', 'adjustment', 'fee', 'refund'
);
CREATE TYPE transaction_status AS ENUM (
    'pending', 'processing', 'completed', 'failed',
    'cancelled', 'reversed'
);
CREATE TYPE payment_method_type AS ENUM (
    'credit_card', 'debit_card', 'bank_transfer',
    'e_wallet', 'cryptocurrency'
);

-- Audit
CREATE TYPE audit_action AS ENUM ('INSERT', 'UPDATE', 'DELETE');
CREATE TYPE event_severity AS ENUM ('debug', 'info', 'warning', 'error', 'critical');

------------------------------------------------------------------------------------------------
-- User management
------------------------------------------------------------------------------------------------

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Unique case-insensitively: see users_username_lower_key below [C8b].
    username VARCHAR(50) NOT NULL,
    -- Unique case-insensitively: see users_email_lower_key below [C8b].
    email VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    -- An argon2 PHC string in password_hash carries its own salt; '' is allowed then [C11].
    salt VARCHAR(255) NOT NULL DEFAULT '',
    role user_role DEFAULT 'user' NOT NULL,
    status user_status DEFAULT 'active' NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    phone_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_login_at TIMESTAMP WITH TIME ZONE,

    CONSTRAINT users_username_check CHECK (char_length(username) >= 3),
    -- [C8a] A sanity check, not RFC 5322: a local part of RFC 5322 "atext" characters and dots
    -- (so + ! # $ % & ' * / = ? ^ ` { | } ~ are accepted) or any non-ASCII character (RFC 6531),
    -- one @, then dot-separated labels of letters, digits, hyphens or non-ASCII characters,
    -- the last label at least two characters long (this admits punycode TLDs like xn--p1ai).
    CONSTRAINT users_email_check CHECK (
        email ~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~\u0080-\U0010FFFF-]+@([A-Za-z0-9\u0080-\U0010FFFF-]+[.])+[A-Za-z0-9\u0080-\U0010FFFF-]{2,}$'
    )
);

-- [C8b] Case-insensitive uniqueness. Look users up with lower(email) = lower($1) (and the same
-- for username) so that these indexes serve the login query.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

CREATE TABLE user_profiles (
    -- The draft's ALTER TABLE ... ADD CONSTRAINT fk_user_profiles_user_id duplicated this
    -- inline FK; the inline one carries that name instead [C8h].
    user_id UUID PRIMARY KEY
        CONSTRAINT fk_user_profiles_user_id REFERENCES users(id) ON DELETE CASCADE,
    first_name VARCHAR(100),
    last_name VARCHAR(100),
    -- user_profiles_age_check (18 or older) is enforced by a BEFORE INSERT / UPDATE OF
    -- date_of_birth trigger in V3, not by a CHECK that reads the clock [C5].
    date_of_birth DATE,
    phone VARCHAR(20),
    country_code CHAR(2) NOT NULL DEFAULT 'US',
    timezone VARCHAR(50) DEFAULT 'America/New_York',
    language_code CHAR(2) DEFAULT 'en',
    currency_code CHAR(3) DEFAULT 'USD',
    verification_status verification_status NOT NULL DEFAULT 'unverified',
    verification_documents JSONB,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT user_profiles_country_code_check CHECK (country_code ~ '^[A-Z]{2}$'),
    CONSTRAINT user_profiles_currency_code_check CHECK (currency_code ~ '^[A-Z]{3}$')
);

CREATE TABLE user_preferences (
    user_id UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    odds_format odds_format NOT NULL DEFAULT 'american',
    notifications JSONB NOT NULL DEFAULT '{"email": true, "sms": false, "push": true}',
    betting_limits JSONB NOT NULL DEFAULT '{"daily": 1000, "weekly": 5000, "monthly": 20000}',
    responsible_gaming JSONB NOT NULL DEFAULT '{"session_timeout": 120, "reality_check": true}',
    ui_preferences JSONB NOT NULL DEFAULT '{"theme": "light", "language": "en"}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

------------------------------------------------------------------------------------------------
-- Sports data
------------------------------------------------------------------------------------------------

CREATE TABLE sports (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(50) UNIQUE NOT NULL,
    display_name VARCHAR(100) NOT NULL,
    slug VARCHAR(50) UNIQUE NOT NULL,
    icon_url VARCHAR(255),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    sort_order INTEGER NOT NULL DEFAULT 0,
    configuration JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE leagues (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    sport_id UUID NOT NULL REFERENCES sports(id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    display_name VARCHAR(150) NOT NULL,
    slug VARCHAR(100) NOT NULL,
    country_code CHAR(2),
    season VARCHAR(20),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    sort_order INTEGER NOT NULL DEFAULT 0,
    configuration JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,

    UNIQUE(sport_id, slug)
);

CREATE TABLE teams (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    sport_id UUID NOT NULL REFERENCES sports(id) ON DELETE CASCADE,
    league_id UUID REFERENCES leagues(id) ON DELETE SET NULL,
    name VARCHAR(100) NOT NULL,
    display_name VARCHAR(150) NOT NULL,
    abbreviation VARCHAR(10),
    slug VARCHAR(100) NOT NULL,
    logo_url VARCHAR(255),
    city VARCHAR(100),
    conference VARCHAR(50),
    division VARCHAR(50),
    founded_year INTEGER,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    metadata JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,

    UNIQUE(sport_id, slug)
);

CREATE TABLE events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    sport_id UUID NOT NULL REFERENCES sports(id) ON DELETE CASCADE,
    league_id UUID REFERENCES leagues(id) ON DELETE SET NULL,
    -- The draft's fk_events_home_team / fk_events_away_team duplicates are these FKs [C8h].
    home_team_id UUID NOT NULL
        CONSTRAINT fk_events_home_team REFERENCES teams(id) ON DELETE CASCADE,
    away_team_id UUID NOT NULL
        CONSTRAINT fk_events_away_team REFERENCES teams(id) ON DELETE CASCADE,
    -- events_future_start (not more than a day in the past) is enforced by a BEFORE INSERT
    -- trigger in V3, not by a CHECK that reads the clock [C5].
    start_time TIMESTAMP WITH TIME ZONE NOT NULL,
    status event_status NOT NULL DEFAULT 'scheduled',
    period VARCHAR(20),
    clock VARCHAR(20),
    home_score INTEGER NOT NULL DEFAULT 0,
    away_score INTEGER NOT NULL DEFAULT 0,
    venue VARCHAR(200),
    weather_conditions JSONB,
    officials JSONB,
    statistics JSONB,
    metadata JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- [C4] Full-text document "home name, display name vs away name, display name", kept
    -- current by triggers in V3 (on events and on teams); indexed by idx_events_search.
    search_document TSVECTOR,

    CONSTRAINT events_different_teams CHECK (home_team_id != away_team_id),
    CONSTRAINT events_scores_non_negative CHECK (home_score >= 0 AND away_score >= 0)
);

------------------------------------------------------------------------------------------------
-- Betting engine
------------------------------------------------------------------------------------------------

CREATE TABLE markets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id UUID NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    type market_type NOT NULL,
    name VARCHAR(200) NOT NULL,
    description TEXT,
    handicap DECIMAL(10,2),
    total_points DECIMAL(10,2),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    status market_status NOT NULL DEFAULT 'open',
    rules JSONB NOT NULL DEFAULT '{}',
    settlement_rules JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    settled_at TIMESTAMP WITH TIME ZONE
);

-- [C8c] The draft's UNIQUE(event_id, type, handicap, total_points) let any number of rows with
-- NULL handicap/total_points through (NULLs are distinct), and read literally would allow only
-- one prop_bet and one futures market per event. One market per line: NULLS NOT DISTINCT for
-- the line types; props and futures are told apart by name as well. A voided market gives its
-- line back, so a trader can re-offer it.
CREATE UNIQUE INDEX markets_event_line_key
    ON markets (event_id, type, handicap, total_points) NULLS NOT DISTINCT
    WHERE type NOT IN ('prop_bet', 'futures') AND status <> 'voided';
CREATE UNIQUE INDEX markets_event_named_key
    ON markets (event_id, type, name, handicap, total_points) NULLS NOT DISTINCT
    WHERE type IN ('prop_bet', 'futures') AND status <> 'voided';

CREATE TABLE selections (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    market_id UUID NOT NULL REFERENCES markets(id) ON DELETE CASCADE,
    name VARCHAR(200) NOT NULL,
    short_name VARCHAR(50),
    odds DECIMAL(10,4) NOT NULL,
    probability DECIMAL(5,4),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    result selection_result,
    metadata JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,

    -- [C8d] Decimal odds: a price of 1.0 or less pays nothing back; keep the draft's name.
    CONSTRAINT selections_odds_positive CHECK (odds > 1),
    CONSTRAINT selections_probability_valid CHECK (
        probability IS NULL OR (probability >= 0 AND probability <= 1)
    )
);

CREATE TABLE bets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The draft's fk_bets_user_id duplicate is this FK [C8h].
    user_id UUID NOT NULL
        CONSTRAINT fk_bets_user_id REFERENCES users(id) ON DELETE CASCADE,
    type bet_type NOT NULL,
    status bet_status NOT NULL DEFAULT 'pending',
    -- [C8e] Money is NUMERIC(12,2) throughout (the draft mixed 10,2 and 12,2): a stake fits its
    -- debit transaction and the balance it comes from.
    stake DECIMAL(12,2) NOT NULL,
    -- [C8e] 20 legs at evens is 2^20 = 1,048,576 > 999,999.9999, the draft's (10,4) ceiling.
    -- (20,4) holds any product below 10^16; the engine caps payouts far below that.
    total_odds DECIMAL(20,4) NOT NULL,
    potential_win DECIMAL(18,2) NOT NULL,
    actual_win DECIMAL(18,2) NOT NULL DEFAULT 0,
    currency_code CHAR(3) NOT NULL DEFAULT 'USD',
    placed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    settled_at TIMESTAMP WITH TIME ZONE,
    void_reason TEXT,
    metadata JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT bets_stake_positive CHECK (stake > 0),
    -- [C8d] Combined decimal odds of legs that each pay more than the stake exceed 1.
    CONSTRAINT bets_odds_positive CHECK (total_odds > 1),
    CONSTRAINT bets_potential_win_positive CHECK (potential_win > 0),
    CONSTRAINT bets_actual_win_non_negative CHECK (actual_win >= 0)
    -- The placement rules (legs, open markets, stake debit) are the deferred constraint
    -- trigger trigger_check_bet_placement in V3 [C6].
);

CREATE TABLE bet_selections (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    bet_id UUID NOT NULL REFERENCES bets(id) ON DELETE CASCADE,
    -- [C8i] RESTRICT, not CASCADE: deleting a selection (or, through cascades, its market,
    -- event, team or sport) must not silently remove the legs of bets that money was paid on.
    selection_id UUID NOT NULL REFERENCES selections(id) ON DELETE RESTRICT,
    odds DECIMAL(10,4) NOT NULL,
    result selection_result,
    settled_at TIMESTAMP WITH TIME ZONE,

    UNIQUE(bet_id, selection_id),
    -- [C8d] The odds taken on a leg are a selection's decimal price: above 1.
    CONSTRAINT bet_selections_odds_positive CHECK (odds > 1)
);

------------------------------------------------------------------------------------------------
-- Financial
------------------------------------------------------------------------------------------------

CREATE TABLE user_balances (
    user_id UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    balance DECIMAL(12,2) DEFAULT 0.00 NOT NULL,
    bonus_balance DECIMAL(12,2) DEFAULT 0.00 NOT NULL,
    pending_balance DECIMAL(12,2) DEFAULT 0.00 NOT NULL,
    currency_code CHAR(3) NOT NULL DEFAULT 'USD',
    -- Kept current on UPDATE by trigger_user_balances_last_updated (V3) [C9].
    last_updated TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,

    -- The last line of defence of the wallet: no write can take a balance below zero.
    CONSTRAINT user_balances_balance_non_negative CHECK (balance >= 0),
    CONSTRAINT user_balances_bonus_non_negative CHECK (bonus_balance >= 0)
);

-- Created before transactions, which references it [C8f].
CREATE TABLE payment_methods (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type payment_method_type NOT NULL,
    name VARCHAR(100) NOT NULL,
    details JSONB NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    last_used_at TIMESTAMP WITH TIME ZONE,
    expires_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE transactions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type transaction_type NOT NULL,
    -- Signed: the change to the user's balance (a bet_debit is -stake).
    amount DECIMAL(12,2) NOT NULL,
    currency_code CHAR(3) NOT NULL DEFAULT 'USD',
    status transaction_status NOT NULL DEFAULT 'pending',
    reference VARCHAR(100) UNIQUE,
    external_reference VARCHAR(100),
    description TEXT,
    -- [C8f] The draft left this without a foreign key.
    payment_method_id UUID
        CONSTRAINT fk_transactions_payment_method REFERENCES payment_methods(id) ON DELETE SET NULL,
    related_bet_id UUID
        CONSTRAINT fk_transactions_related_bet REFERENCES bets(id),
    processor_response JSONB,
    fees DECIMAL(10,2) NOT NULL DEFAULT 0.00,
    net_amount DECIMAL(12,2) GENERATED ALWAYS AS (amount - fees) STORED,
    processed_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT transactions_amount_not_zero CHECK (amount != 0),
    CONSTRAINT transactions_fees_non_negative CHECK (fees >= 0),
    -- [C6] A stake debit takes money out and says which bet it paid for.
    CONSTRAINT transactions_bet_debit_shape CHECK (
        type <> 'bet_debit' OR (amount < 0 AND related_bet_id IS NOT NULL)
    )
);

------------------------------------------------------------------------------------------------
-- Audit and logging (their indexes are in V2 [C2])
------------------------------------------------------------------------------------------------

CREATE TABLE audit_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    table_name VARCHAR(100) NOT NULL,
    record_id UUID NOT NULL,
    action audit_action NOT NULL,
    old_values JSONB,
    new_values JSONB,
    -- [C8g] SET NULL: the trail outlives the account (the draft's NO ACTION blocked deleting
    -- any user who ever appeared in it).
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    ip_address INET,
    user_agent TEXT,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE system_events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type VARCHAR(100) NOT NULL,
    severity event_severity NOT NULL DEFAULT 'info',
    message TEXT NOT NULL,
    details JSONB,
    -- [C8g] SET NULL, as for audit_log.
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    session_id VARCHAR(100),
    ip_address INET,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);
