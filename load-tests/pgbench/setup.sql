-- Data of the database-centric baseline (issue 5), in its own freshly migrated database
-- (scripts/bench.sh): 100 funded bettors and 1,000 open two-way markets on 100 events,
-- plus two lookup tables numbering them for pgbench's random picks.
BEGIN;
INSERT INTO sports (name, display_name, slug) VALUES ('pgbench', 'pgbench', 'pgbench');
INSERT INTO teams (sport_id, name, display_name, slug)
SELECT s.id, 'team-' || g, 'team-' || g, 'team-' || g
FROM sports s, generate_series(1, 200) g WHERE s.slug = 'pgbench';
INSERT INTO events (sport_id, home_team_id, away_team_id, start_time)
SELECT s.id, h.id, a.id, now() + interval '3 hours'
FROM sports s, generate_series(1, 100) g
JOIN teams h ON h.slug = 'team-' || (2 * g - 1)
JOIN teams a ON a.slug = 'team-' || (2 * g)
WHERE s.slug = 'pgbench';
INSERT INTO markets (event_id, type, name, total_points)
SELECT e.id, 'total_points', 'Total ' || k || '.5', k + 0.5
FROM events e, generate_series(0, 9) k;
INSERT INTO selections (market_id, name, short_name, odds)
SELECT m.id, n, n, 1.9091 FROM markets m, unnest(ARRAY['Over', 'Under']) n;

CREATE TABLE pgbench_bettors (n SERIAL PRIMARY KEY, user_id UUID NOT NULL);
CREATE TABLE pgbench_selections (n SERIAL PRIMARY KEY, selection_id UUID NOT NULL);
WITH u AS (
    INSERT INTO users (username, email, password_hash)
    SELECT 'pgb-' || g, 'pgb-' || g || '@bench.winzo.test', 'x' FROM generate_series(1, 100) g
    RETURNING id
)
INSERT INTO pgbench_bettors (user_id) SELECT id FROM u;
INSERT INTO user_balances (user_id, balance) SELECT user_id, 1000000.00 FROM pgbench_bettors;
INSERT INTO transactions (user_id, type, amount, status, reference, description, processed_at)
SELECT user_id, 'deposit', 1000000.00, 'completed', 'pgb-funds-' || n, 'pgbench funds', now()
FROM pgbench_bettors;
INSERT INTO pgbench_selections (selection_id) SELECT id FROM selections ORDER BY id;
COMMIT;
ANALYZE;
