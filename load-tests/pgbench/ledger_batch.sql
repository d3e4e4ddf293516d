-- One ledger batch of 50 pre-match singles with the ledger's four set-based statements
-- (src/db/ledger.rs) under EXPLAIN ANALYZE; run through ledger_batch_explain.sql.
BEGIN;
DROP TABLE IF EXISTS b;
CREATE TEMP TABLE b AS
SELECT gen_random_uuid() AS id, u.user_id, s.id AS sel, s.odds
FROM (SELECT user_id, row_number() over () rn FROM user_balances WHERE balance > 100 LIMIT 50) u
JOIN (SELECT s.id, s.odds, row_number() over () rn FROM selections s JOIN markets m ON m.id = s.market_id WHERE m.status = 'open' AND NOT m.in_play LIMIT 50) s ON s.rn = u.rn;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win, currency_code, placed_at, idempotency_key, metadata)
SELECT id, user_id, 'single', 'accepted', 1, odds, odds, 'USD', now(), 'k-' || id::text, '{}'::jsonb FROM b;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) INSERT INTO bet_selections (bet_id, selection_id, odds) SELECT id, sel, odds FROM b;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) INSERT INTO transactions (user_id, type, amount, currency_code, status, reference, related_bet_id, description, processed_at)
SELECT user_id, 'bet_debit', -1, 'USD', 'completed', 'bet:' || id::text, id, 'stake', now() FROM b;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) UPDATE user_balances ub SET balance = ub.balance - 1 FROM b WHERE ub.user_id = b.user_id;
COMMIT;
