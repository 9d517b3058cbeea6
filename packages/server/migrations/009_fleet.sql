-- Kilowire schema v9: the supplier's fleet table at 100,000 meters. Every search field and
-- every sort column has an index, so a page is an index walk of ~50 rows, not a sort of the
-- whole fleet. Text keys use COLLATE "C": byte order, the same on every server whatever its
-- locale (the embedded PostgreSQL and a packaged one differ), and a plain btree in "C"
-- serves both ORDER BY and LIKE 'prefix%'. No pg_trgm: prefixes and whole words are what
-- staff type, and the built-in full-text index covers the words.

-- Household name: prefix search (any case) and the name sort.
CREATE INDEX consumers_name_lower ON consumers ((lower(name) COLLATE "C"));
-- Postcode: prefix search and sort (no postcode sorts first, as '').
CREATE INDEX consumers_postcode ON consumers ((coalesce(postcode, '') COLLATE "C"));
-- Words of the name and address ("acacia", "smith"), matched as prefixes.
CREATE INDEX consumers_words ON consumers
  USING gin (to_tsvector('simple', name || ' ' || coalesce(address, '')));
-- Consumer ID prefix (login_id is UNIQUE already, but in the default collation).
CREATE INDEX users_login_id_c ON users ((login_id COLLATE "C")) WHERE login_id IS NOT NULL;
-- Serial prefix (the UNIQUE index is in the default collation, which LIKE cannot use).
CREATE INDEX meters_serial_c ON meters ((serial COLLATE "C"));
-- Last-seen and credit sorts; never seen / no credit sort first ascending.
CREATE INDEX meters_last_seen ON meters ((coalesce(last_seen_at, '-infinity'::timestamptz)), serial);
CREATE INDEX meters_credit ON meters ((coalesce(credit_minor, '-9223372036854775808'::bigint)), serial);
-- Firmware filter and its counts.
CREATE INDEX meters_firmware ON meters (firmware_version);
-- The meter page's recent alerts of one meter.
CREATE INDEX alerts_meter ON alerts (meter_id, id DESC);
-- Vulnerable households: the fleet counts look them up as one small set (5 % of a fleet).
CREATE INDEX consumers_vulnerable ON consumers (id) WHERE vulnerable;
-- A supplier's own households by name, postcode and serial prefix: on a platform of several
-- suppliers a search or a name sort walks one supplier's entries only (the indexes above
-- serve the administrator's view across all suppliers).
CREATE INDEX consumers_supplier_name ON consumers (supplier_id, (lower(name) COLLATE "C"));
CREATE INDEX consumers_supplier_postcode ON consumers (supplier_id, (coalesce(postcode, '') COLLATE "C"));
CREATE INDEX meters_supplier_serial_c ON meters (supplier_id, (serial COLLATE "C"));
-- The serial sort of one supplier's fleet: without the supplier first, a supplier whose
-- serials sort late walks every other supplier's meters before its first row.
CREATE INDEX meters_supplier_serial ON meters (supplier_id, serial);
