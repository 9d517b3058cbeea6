-- Kilowire schema v15: the daily collection's own bookkeeping (issue #9 N1), on top of the
-- collection tables of 013.

-- A finished run is kept as it was: 013 refuses updates and deletes of its meter days; here
-- the database also refuses new meter days in it and any change to the run row itself (its
-- totals, status or reason). A revision is a new version.
-- Per statement, not per row: a collection inserts 100,000 rows in one statement.
CREATE FUNCTION kw_collection_frozen_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM collection_runs r
              WHERE r.status = 'done' AND r.id IN (SELECT DISTINCT n.run_id FROM new_rows n)) THEN
    RAISE EXCEPTION 'a finished collection run is kept as it was: collect a new version'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER collection_meter_days_frozen_insert AFTER INSERT ON collection_meter_days
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kw_collection_frozen_insert();
CREATE FUNCTION kw_collection_run_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'done' THEN
    RAISE EXCEPTION 'a finished collection run is kept as it was: collect a new version'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN coalesce(NEW, OLD);
END $$;
CREATE TRIGGER collection_runs_frozen BEFORE UPDATE OR DELETE ON collection_runs
  FOR EACH ROW EXECUTE FUNCTION kw_collection_run_frozen();

-- Meters whose day differs from the previous version (added, gone or changed); NULL on
-- version 1. Counted once when the version is taken, so the dashboard never compares runs.
ALTER TABLE collection_runs ADD COLUMN changed_meters integer;

-- Days that received data after they were collected (late data): marked by the
-- readings.committed subscriber, re-collected as a 'late_data' version by the schedule.
-- One row per (area, day) however many batches arrive (idempotent upsert).
CREATE TABLE collection_dirty (
  area_id    text NOT NULL REFERENCES network_areas(id),
  day        date NOT NULL,
  marked_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (area_id, day)
);
