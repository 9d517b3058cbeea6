-- #11 Reading tables partitioned by month of ts (UTC), keys still meter-first.
--
-- interval_readings and register_reads grow with every meter every half-hour (1M meters:
-- 17.5 billion rows a year); partitions by time let old months be detached for archive and
-- keep each month's indexes small. meter_events (PK without ts, referenced by tamper cases),
-- vee_issues (few rows; records refused far-future timestamps) and daily_rollups (1/48 of
-- the readings, kept for billing) stay plain tables: see docs/scaling.md.
--
-- Cheap on a large existing database: no row is copied. The old table becomes the partition
-- for everything before the next month (one scan to validate its CHECK constraint, so that
-- ATTACH needs none); rows already dated at or after that month (a clock in the future) are
-- few and are found through the primary key, one meter at a time, and moved.
--
-- A DEFAULT partition takes any reading no monthly partition covers (a month not created
-- yet, a month detached for archive), so ingest never fails on a date. kw_partition_month
-- moves such rows out of the default when it creates their month.

-- The partitions of a partitioned table with their bounds as timestamps (NULL = unbounded).
-- TimeZone is fixed so the bound text parses the same in every session.
CREATE FUNCTION kw_partitions(parent regclass)
  RETURNS TABLE (part regclass, from_ts timestamptz, to_ts timestamptz, is_default boolean)
  LANGUAGE sql STABLE SET "TimeZone" = 'UTC' AS $$
  SELECT c.oid::regclass,
         CASE WHEN b.lo IN ('MINVALUE', 'DEFAULT') THEN NULL ELSE trim(both '''' FROM b.lo)::timestamptz END,
         CASE WHEN b.hi IN ('MAXVALUE', '') THEN NULL ELSE trim(both '''' FROM b.hi)::timestamptz END,
         b.expr = 'DEFAULT'
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS expr) e
    CROSS JOIN LATERAL (
      SELECT e.expr,
             coalesce(substring(e.expr FROM 'FROM \((.*)\) TO'), 'DEFAULT') AS lo,
             coalesce(substring(e.expr FROM 'TO \((.*)\)$'), '') AS hi
    ) b
   WHERE i.inhparent = parent
   ORDER BY 4, 2 NULLS FIRST
$$;

-- Create (idempotently) the partition of `parent` for the UTC month starting at `month`.
-- Returns false when the month is already covered. Takes only SHARE UPDATE EXCLUSIVE on the
-- parent (ATTACH, not CREATE TABLE ... PARTITION OF, which would block ingest), and ACCESS
-- EXCLUSIVE on the default partition while rows of that month are moved out of it.
-- Callers serialise with an advisory lock and set lock_timeout (readings/partitions.ts).
CREATE FUNCTION kw_partition_month(parent regclass, month timestamptz) RETURNS boolean
  LANGUAGE plpgsql SET "TimeZone" = 'UTC' AS $$
DECLARE
  lo timestamptz := date_trunc('month', month);
  hi timestamptz := date_trunc('month', month) + interval '1 month';
  base text := (SELECT relname FROM pg_class WHERE oid = parent);
  name text := base || '_' || to_char(date_trunc('month', month), 'YYYY_MM');
  p record;
  def regclass;
BEGIN
  FOR p IN SELECT * FROM kw_partitions(parent) WHERE NOT is_default LOOP
    IF coalesce(p.from_ts <= lo, true) AND coalesce(p.to_ts >= hi, true) THEN
      RETURN false;
    END IF;
    IF coalesce(p.from_ts < hi, true) AND coalesce(p.to_ts > lo, true) THEN
      RAISE EXCEPTION 'partition % overlaps the month % of %', p.part, to_char(lo, 'YYYY-MM'), parent;
    END IF;
  END LOOP;
  IF to_regclass(quote_ident(name)) IS NOT NULL THEN
    RAISE EXCEPTION 'table % exists but is not a partition of % (a detached month? attach it again or rename it)', name, parent;
  END IF;
  EXECUTE format('LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE', parent);
  EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', name, parent);
  -- Kept after ATTACH: attaching this table again after an archive needs no validation scan.
  EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)', name, name || '_range', lo, hi);
  SELECT part INTO def FROM kw_partitions(parent) WHERE is_default;
  IF def IS NOT NULL THEN
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', def);
    EXECUTE format('WITH moved AS (DELETE FROM %s WHERE ts >= %L AND ts < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
                   def, lo, hi, name);
  END IF;
  -- Builds the primary key and the other indexes of the parent on the new table.
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, name, lo, hi);
  RETURN true;
END $$;

-- Month arithmetic below (date_trunc, + interval '1 month') must be in UTC.
SET LOCAL "TimeZone" = 'UTC';

DO $$
DECLARE
  t text;
  cut timestamptz := date_trunc('month', now()) + interval '1 month';
  legacy text;
  ix record;
  late int[];
  i int;
BEGIN
  FOREACH t IN ARRAY ARRAY['interval_readings', 'register_reads'] LOOP
    legacy := t || '_before_' || to_char(cut, 'YYYY_MM');
    EXECUTE format('ALTER TABLE %I RENAME TO %I', t, legacy);
    EXECUTE format('ALTER INDEX %I RENAME TO %I', t || '_pkey', legacy || '_pkey');
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE, PRIMARY KEY (meter_id, ts)) PARTITION BY RANGE (ts)',
                   t, legacy);
    -- Every other index of the old table (interval_readings_estimated: estimates are few and
    -- looked up on every insert) is made on the parent under its own name; the old table's
    -- index is attached to it, not built again.
    FOR ix IN SELECT c.relname::text AS name, pg_get_indexdef(i.indexrelid) AS def
                FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = legacy::regclass AND NOT i.indisprimary LOOP
      EXECUTE format('ALTER INDEX %I RENAME TO %I', ix.name, left(legacy || '_' || ix.name, 63));
      EXECUTE regexp_replace(ix.def, ' ON (\S+\.)?' || legacy || ' ', ' ON ' || quote_ident(t) || ' ');
    END LOOP;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);
    -- Meters with rows dated at or after the cut (a clock in the future), found through the
    -- primary key (a skip scan: two index descents per meter, no table scan); their few late
    -- rows go to the default partition.
    EXECUTE format(
      'WITH RECURSIVE ids AS (
         (SELECT meter_id FROM %1$I ORDER BY meter_id LIMIT 1)
         UNION ALL
         SELECT (SELECT meter_id FROM %1$I WHERE meter_id > ids.meter_id ORDER BY meter_id LIMIT 1)
           FROM ids WHERE ids.meter_id IS NOT NULL
       )
       SELECT array_agg(meter_id) FROM ids
        WHERE meter_id IS NOT NULL
          AND (SELECT max(ts) FROM %1$I r WHERE r.meter_id = ids.meter_id) >= %2$L', legacy, cut) INTO late;
    IF late IS NOT NULL THEN
      EXECUTE format('WITH moved AS (DELETE FROM %I WHERE meter_id = ANY($1) AND ts >= %L RETURNING *)
                      INSERT INTO %I SELECT * FROM moved', legacy, cut, t || '_default') USING late;
    END IF;
    -- The one scan: proves the bound, so ATTACH does not scan again.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts < %L)', legacy, legacy || '_range', cut);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)', t, legacy, cut);
    -- This month is in the old table; the next three get their own (from here on the jobs
    -- service keeps PARTITIONS_AHEAD_MONTHS ahead).
    FOR i IN 0..2 LOOP
      PERFORM kw_partition_month(t::regclass, cut + make_interval(months => i));
    END LOOP;
  END LOOP;
END $$;
