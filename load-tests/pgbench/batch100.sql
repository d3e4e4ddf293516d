-- The batched ceiling of issue 16: what this Postgres commits when 100 pre-match singles go
-- into one transaction with the ledger writer's four set-based statements (src/db/ledger.rs:
-- bets, legs, stake debits, the balance update). With -D role=replica no trigger runs at all
-- (no placement check, no key tables, no audit, no foreign-key checks:
-- session_replication_role = replica, which needs a superuser): the ceiling. With
-- -D role=origin every trigger and foreign key of the schema runs, as for the engine's
-- batches: the difference is what the database's own checks cost. One bettor per batch, 100
-- random selections. bets/s = tps x 100.
-- Run with -M prepared; :bettors, :selections and :role are set with -D (as bet.sql).
\set b random(1, :bettors)
BEGIN;
SELECT set_config('session_replication_role', :role, true);
SELECT set_config('bench.ids', array_agg(gen_random_uuid())::text, true),
       set_config('bench.uid', (SELECT user_id FROM pgbench_bettors WHERE n = :b)::text, true)
FROM generate_series(1, 100);
INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win, currency_code,
                  placed_at, idempotency_key, metadata)
SELECT id, current_setting('bench.uid')::uuid, 'single', 'accepted', 1.00, 1.9091, 1.91, 'USD',
       now(), id::text, '{}'
FROM unnest(current_setting('bench.ids')::uuid[]) AS id;
INSERT INTO bet_selections (bet_id, selection_id, odds)
SELECT u.id, p.selection_id, 1.9091
FROM unnest(current_setting('bench.ids')::uuid[]) WITH ORDINALITY AS u(id, i)
JOIN pgbench_selections p ON p.n = 1 + (hashtext(u.id::text) & 2147483647) % :selections;
INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
                          related_bet_id, description, processed_at)
SELECT current_setting('bench.uid')::uuid, 'bet_debit', -1.00, 'USD', 'completed',
       'bet:' || id::text, id, 'stake', now()
FROM unnest(current_setting('bench.ids')::uuid[]) AS id;
UPDATE user_balances SET balance = balance - 100.00
WHERE user_id = current_setting('bench.uid')::uuid;
END;
