-- One ledger batch of 50 pre-match singles, written with the ledger's four set-based
-- statements (src/db/ledger.rs) under EXPLAIN ANALYZE, three times in one session (read the
-- third: warm plans). Run against a throwaway benchmark database after a `bets` run (it needs
-- funded users and open pre-match markets); it COMMITs real bets there, so never on a real one:
--   psql postgres://winzo@127.0.0.1:25432/winzo_bench -X -f load-tests/pgbench/ledger_batch_explain.sql
\timing on
\ir ledger_batch.sql
\ir ledger_batch.sql
\ir ledger_batch.sql
