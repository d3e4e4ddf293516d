-- V15: the slow-statement statistics behind GET /api/v1/trading/db-health and the
-- winzo_db_slow_statements gauge (docs/operations.md, "Monitoring").
--
-- The clusters scripts/services.sh starts preload the library (shared_preload_libraries =
-- 'pg_stat_statements'), and Debian's postgresql-15 ships it. A production server must do
-- the same before this migration runs: CREATE EXTENSION needs the extension's files and a
-- superuser (pg_stat_statements is not a trusted extension). Without the preload the view
-- exists but cannot be read; the engine then reports the section as unavailable.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
