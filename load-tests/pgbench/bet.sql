-- One pre-match single as one SQL transaction (the database-centric baseline of issue 5):
-- check the market is open and read the price, debit the balance, insert the bet, its leg
-- and its bet_debit transaction. The deferred placement check (V3) runs at COMMIT.
-- Run with -M prepared; :bettors and :selections are set with -D.
\set b random(1, :bettors)
\set s random(1, :selections)
BEGIN;
SELECT sel.id AS sel, sel.odds AS odds
  FROM pgbench_selections p
  JOIN selections sel ON sel.id = p.selection_id
  JOIN markets m ON m.id = sel.market_id
 WHERE p.n = :s AND sel.is_active AND m.status = 'open'
   FOR SHARE OF m \gset
SELECT user_id AS uid FROM pgbench_bettors WHERE n = :b \gset
UPDATE user_balances SET balance = balance - 1.00 WHERE user_id = :uid AND balance >= 1.00;
INSERT INTO bets (user_id, type, status, stake, total_odds, potential_win)
VALUES (:uid, 'single', 'accepted', 1.00, :odds, round(1.00 * :odds, 2)) RETURNING id AS bet \gset
INSERT INTO bet_selections (bet_id, selection_id, odds) VALUES (:bet, :sel, :odds);
INSERT INTO transactions (user_id, type, amount, status, reference, related_bet_id, description, processed_at)
VALUES (:uid, 'bet_debit', -1.00, 'completed', 'bet:' || :bet, :bet, 'stake', now());
END;
