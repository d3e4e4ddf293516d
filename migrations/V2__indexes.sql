-- V2: the seed's "Indexing Strategy", the audit and system-event indexes the draft wrote inside
-- CREATE TABLE, and the indexes the foreign keys and the placement check need.
--
-- [C3] The draft says CREATE INDEX CONCURRENTLY. That cannot run inside a transaction block and
-- refinery runs every migration in one; the tables are empty when this runs, so a plain
-- CREATE INDEX is instant. How to add an index to a live database without blocking writes is
-- in docs/schema.md ("Adding an index to a live database").

------------------------------------------------------------------------------------------------
-- Primary indexes (seed: "Primary Indexes")
------------------------------------------------------------------------------------------------

CREATE INDEX idx_events_sport_start_time
    ON events(sport_id, start_time)
    WHERE status IN ('scheduled', 'live');

CREATE INDEX idx_events_status_start_time
    ON events(status, start_time);

CREATE INDEX idx_markets_event_active
    ON markets(event_id, is_active)
    WHERE is_active = true;

CREATE INDEX idx_selections_market_active
    ON selections(market_id, is_active)
    WHERE is_active = true;

CREATE INDEX idx_bets_user_placed_at
    ON bets(user_id, placed_at DESC);

CREATE INDEX idx_bets_status_placed_at
    ON bets(status, placed_at DESC);

CREATE INDEX idx_transactions_user_created_at
    ON transactions(user_id, created_at DESC);

CREATE INDEX idx_transactions_type_status
    ON transactions(type, status);

------------------------------------------------------------------------------------------------
-- Composite and partial indexes (seed: "Composite Indexes for Complex Queries")
------------------------------------------------------------------------------------------------

CREATE INDEX idx_events_sport_league_start
    ON events(sport_id, league_id, start_time)
    WHERE status = 'scheduled';

CREATE INDEX idx_markets_event_type_active
    ON markets(event_id, type, is_active);

CREATE INDEX idx_bets_user_status_type
    ON bets(user_id, status, type);

CREATE INDEX idx_events_live
    ON events(sport_id, updated_at)
    WHERE status = 'live';

CREATE INDEX idx_markets_open
    ON markets(event_id, updated_at)
    WHERE status = 'open';

------------------------------------------------------------------------------------------------
-- Full-text search (seed: "Full-Text Search Indexes")
------------------------------------------------------------------------------------------------

-- Used only by queries that repeat the expression exactly:
--   WHERE to_tsvector('english', name || ' ' || display_name) @@ plainto_tsquery('english', $1)
CREATE INDEX idx_teams_search
    ON teams USING GIN (to_tsvector('english', name || ' ' || display_name));

-- [C4] The draft indexed a subquery over teams, which an index expression cannot contain (and
-- could not be kept current if it could). events.search_document is maintained by triggers
-- (V3); query it with  WHERE search_document @@ plainto_tsquery('english', $1).
CREATE INDEX idx_events_search
    ON events USING GIN (search_document);

------------------------------------------------------------------------------------------------
-- Audit and system events [C2]: the draft declared these with INDEX ... inside CREATE TABLE
-- (MySQL syntax). Same names, same columns.
------------------------------------------------------------------------------------------------

CREATE INDEX idx_audit_log_table_record ON audit_log (table_name, record_id);
CREATE INDEX idx_audit_log_user_timestamp ON audit_log (user_id, timestamp);
CREATE INDEX idx_audit_log_timestamp ON audit_log (timestamp);

CREATE INDEX idx_system_events_type_timestamp ON system_events (event_type, created_at);
CREATE INDEX idx_system_events_severity_timestamp ON system_events (severity, created_at);

------------------------------------------------------------------------------------------------
-- Not in the seed [C12]: Postgres does not index the referencing side of a foreign key. Without
-- these, every delete on the referenced table (and every ON DELETE action) scans the child
-- table, and the lookups below (placement check, settlement, team rename) scan too.
------------------------------------------------------------------------------------------------

-- Settlement and liability recovery: the legs on a selection; RESTRICT check on delete.
CREATE INDEX idx_bet_selections_selection ON bet_selections (selection_id);
-- A market's selections whatever their is_active (FK cascade; idx_selections_market_active
-- covers active ones only).
CREATE INDEX idx_selections_market ON selections (market_id);
-- Team rename refreshes the search document of the team's events; FK cascades.
CREATE INDEX idx_events_home_team ON events (home_team_id);
CREATE INDEX idx_events_away_team ON events (away_team_id);
-- The placement check's "exactly one bet_debit for this bet", and settlement credits.
CREATE INDEX idx_transactions_related_bet ON transactions (related_bet_id)
    WHERE related_bet_id IS NOT NULL;
-- ON DELETE SET NULL from payment_methods.
CREATE INDEX idx_transactions_payment_method ON transactions (payment_method_id)
    WHERE payment_method_id IS NOT NULL;
CREATE INDEX idx_payment_methods_user ON payment_methods (user_id);
-- ON DELETE SET NULL from users (audit_log is covered by idx_audit_log_user_timestamp).
CREATE INDEX idx_system_events_user ON system_events (user_id)
    WHERE user_id IS NOT NULL;
