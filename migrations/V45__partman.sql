-- V45: pg_partman, the tool that keeps the monthly partitions of audit_log, bets and
-- transactions (V46-V48) created ahead and detaches the old ones (docs/operations.md,
-- "Partitions").
--
-- The extension's files come from Debian's postgresql-15-partman (scripts/services.sh
-- installs it). pg_partman is not a trusted extension: CREATE EXTENSION needs a superuser,
-- as pg_stat_statements does (V15). Its background worker is not used: the engine's daily
-- maintenance calls partman.run_maintenance_proc() (src/maintenance.rs).
CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;

-- Used by V46-V48 only (and dropped by V49): turns `p_parent`, an empty table declared
-- PARTITION BY RANGE (p_control), into a pg_partman set of monthly partitions starting at
-- the month of `p_oldest` (the oldest row to carry over; this month when there is none),
-- `p_premake` months ahead of today, plus a default partition for anything outside them.
-- New partitions follow the clock (infinite_time_partitions), not the newest row, so a quiet
-- table still gets its months ahead; retention detaches rather than drops (the engine's
-- daily maintenance sets the retention itself from its configuration).
CREATE FUNCTION winzo_partition_monthly(p_parent TEXT, p_control TEXT, p_oldest TIMESTAMPTZ,
                                        p_premake INTEGER) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM partman.create_parent(
        p_parent_table := 'public.' || p_parent,
        p_control := p_control,
        p_type := 'native',
        p_interval := '1 month',
        p_premake := p_premake,
        p_start_partition := to_char(date_trunc('month', least(coalesce(p_oldest, now()), now())),
                                     'YYYY-MM-DD HH24:MI:SSOF'),
        p_jobmon := false);
    UPDATE partman.part_config
       SET infinite_time_partitions = true,
           retention_keep_table = true,
           retention_keep_index = true
     WHERE parent_table = 'public.' || p_parent;
END;
$$;
