import type { MeterMode } from '@kilowire/contract/enums';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { localDate, type TariffSpec } from '@kilowire/protocol';
import type { Pool, PoolClient } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import { hashPassword } from '../auth/passwords.ts';
import { openMirror } from '../money/reconcile.ts';
import { createArea, createHousehold, createOrganisation, createStaffUser } from '../accounts/repo.ts';

/**
 * Demo world for a newcomer: one supplier, one network operator with an area of three
 * feeders, and 25 households (a mix of credit and prepayment). Passwords are fixed and
 * printed: this only runs when DEMO_SEED is on (the default on embedded PostgreSQL).
 */
export const DEMO = {
  supplier: { email: 'supplier@kilowire.demo', password: 'supplier-demo-pass' },
  /** A second supplier admin: approves what the first one asks for (safeguards need two people). */
  supplier2: { email: 'supplier2@kilowire.demo', password: 'supplier2-demo-pass' },
  /** A supplier agent: reads and acts on one meter at a time. */
  agent: { email: 'agent@kilowire.demo', password: 'agent-demo-pass' },
  operator: { email: 'operator@kilowire.demo', password: 'operator-demo-pass' },
  admin: { email: 'admin@kilowire.demo', password: 'admin-demo-pass' },
  consumerPassword: 'consumer-demo-pass',
};

/** One simulated meter as the demo provisions it; the simulator passes these fields to the Fleet as they are. */
export interface FleetMeter {
  id: string;
  password: string;
  tz: string;
  mode: MeterMode;
  /** Where its history begins, epoch s; used when the meter has no saved state yet. */
  startS?: number;
  /** The tariff the meter is made with (default: the meter's DEFAULT_TARIFF). */
  initialTariff?: TariffSpec;
  /** Prepayment: the credit it is made with, sized by a dry run of the meter model (see seedDemo). */
  initialCreditMinor?: number;
  /** The feeder it hangs on, as in the database: the simulator's feeder outages take a whole feeder. */
  feederId?: string;
  /** #10 D: the hardware class it reports, as in the database (a firmware image names one). */
  hardwareClass?: string;
}

/** #10 D: the class the meters table gives a meter by default (001_init.sql); the simulated meters report it too. */
export const DEMO_HARDWARE_CLASS = 'KW-1P-100A';

export interface FleetFile {
  serverPublicKey: string;
  meters: FleetMeter[];
}

/** A demo household's meter, as handed to a `DemoTariffs` chooser. */
export interface DemoMeter {
  /** 1-based position in the demo (C100001 is 1). */
  index: number;
  serial: string;
  meterId: number;
  mode: MeterMode;
  tz: string;
}

/**
 * Chooses each demo meter's initial tariff, inside the seeding transaction (so it can create
 * the tariffs and the meters' tariff history there too). `historyFrom` is the local date the
 * meters' history begins on: the tariff must be in force from that date's start. Meters left out of the map
 * start on the meter's DEFAULT_TARIFF.
 */
export type DemoTariffs = (
  c: PoolClient,
  meters: readonly DemoMeter[],
  historyFrom: string,
) => Promise<ReadonlyMap<string, TariffSpec>>;

export interface DemoOptions {
  households?: number;
  tz?: string;
  /** Days of history before now the simulated meters start with (SIM_BACKFILL_DAYS). */
  historyDays?: number;
  tariffs?: DemoTariffs;
  /** "Now", epoch s (tests). */
  nowS?: number;
}

/**
 * How the demo's prepayment households stand when the portal opens, in turn: out of credit
 * (it ran out three days ago; emergency credit is spent by now, so the meter is disconnected
 * outside friendly hours and a top-up visibly brings it back), and running low (it runs out
 * in about six hours: below the low-credit threshold by now, whatever the time of day).
 */
const PREPAY_RUNS_OUT_DAYS = [-3, 0.25] as const;
/** Shorter histories keep the meter's default credit. */
const MIN_STORY_S = 7 * 86_400;

export interface DemoLogins {
  staff: { role: string; email: string; password: string }[];
  consumers: { consumerId: string; password: string; mode: string; meter: string }[];
}

const FIRST = [
  'Ada',
  'Ben',
  'Chloe',
  'Dev',
  'Ema',
  'Finn',
  'Grace',
  'Hari',
  'Isla',
  'Jon',
  'Kira',
  'Leo',
  'Mia',
];
const LAST = [
  'Okafor',
  'Smith',
  'Nowak',
  'Patel',
  'Jones',
  'Garcia',
  'Brown',
  'Khan',
  'Evans',
  'Chen',
  'Wilson',
  'Reid',
];
const STREETS = ['Mill Lane', 'Station Road', 'Orchard Close', 'Church Street', 'Meadow Way', 'Kiln Row'];

/**
 * Seed once (no organisations yet); write the fleet file the simulator reads. Returns the logins.
 *
 * Every meter's history starts `historyDays` before now: the simulator produces it with the
 * real meter model and sends it through the broker and the gateway like any reading. A
 * prepayment meter's opening credit is what the same model debits from then to the moment
 * its story needs (`PREPAY_RUNS_OUT_DAYS`). The head-end's ledger does not know that opening
 * credit: whoever seeds the ledger must record it (it is in the fleet file).
 */
export async function seedDemo(
  pool: Pool,
  dataDir: string,
  serverPublicKey: string,
  opts: DemoOptions = {},
): Promise<DemoLogins | null> {
  const households = opts.households ?? 25;
  const tz = opts.tz ?? 'Europe/London';
  const nowS = opts.nowS ?? Math.floor(Date.now() / 1000);
  // Exactly `historyDays` before now, on an interval boundary, as the simulator always started:
  // tests that fast-forward a short backfill rely on its length.
  const startS = nowS - (opts.historyDays ?? 0) * 86_400 - ((nowS - (opts.historyDays ?? 0) * 86_400) % 1800);
  const historyFrom = localDate(startS, tz);
  const fleetPath = path.join(dataDir, 'fleet.json');
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM organisations');
  if (rows[0]!.n > 0)
    return existsSync(fleetPath) ? logins(JSON.parse(readFileSync(fleetPath, 'utf8')) as FleetFile) : null;

  const consumerHash = await hashPassword(DEMO.consumerPassword);
  const fleet: FleetFile = { serverPublicKey, meters: [] };
  const demoMeters: DemoMeter[] = [];
  await tx(pool, async (c) => {
    const supplier = await createOrganisation(c, 'supplier', 'brightvolt', 'Brightvolt Energy');
    const operator = await createOrganisation(c, 'network_operator', 'eastgrid', 'Eastgrid Networks');
    const platform = await createOrganisation(c, 'platform', 'kilowire', 'Kilowire platform');
    void platform;
    await createArea(c, 'EAST-1', operator, 'East Town', ['EAST-1-F1', 'EAST-1-F2', 'EAST-1-F3']);
    await createStaffUser(c, {
      role: 'supplier',
      email: DEMO.supplier.email,
      password: DEMO.supplier.password,
      orgId: supplier,
      name: 'Sam Supplier',
    });
    await createStaffUser(c, {
      role: 'supplier',
      email: DEMO.supplier2.email,
      password: DEMO.supplier2.password,
      orgId: supplier,
      name: 'Sasha Second',
    });
    await createStaffUser(c, {
      role: 'supplier',
      staffRole: 'agent',
      email: DEMO.agent.email,
      password: DEMO.agent.password,
      orgId: supplier,
      name: 'Alex Agent',
    });
    await createStaffUser(c, {
      role: 'operator',
      email: DEMO.operator.email,
      password: DEMO.operator.password,
      orgId: operator,
      name: 'Olu Operator',
    });
    await createStaffUser(c, {
      role: 'admin',
      email: DEMO.admin.email,
      password: DEMO.admin.password,
      orgId: null,
      name: 'Ari Admin',
    });
    for (let i = 1; i <= households; i++) {
      const mode = i % 3 === 0 ? 'prepayment' : 'credit';
      const serial = `KW${String(i).padStart(6, '0')}`;
      const feederId = `EAST-1-F${1 + (i % 3)}`;
      const h = await createHousehold(c, {
        loginId: `C${100000 + i}`,
        password: DEMO.consumerPassword,
        passwordHash: consumerHash,
        name: `${FIRST[i % FIRST.length]} ${LAST[(i * 7) % LAST.length]}`,
        email: `c${100000 + i}@example.org`,
        address: `${i * 3 + 1} ${STREETS[i % STREETS.length]}, East Town`,
        postcode: `ET${1 + (i % 9)} ${(i * 7) % 10}${'ABDEFGHJLNPQRSTUWXYZ'[i % 20]}${'ABDEFGHJLNPQRSTUWXYZ'[(i * 3) % 20]}`,
        // Every seventh household depends on electricity for medical equipment.
        vulnerable: i % 7 === 0,
        supplierId: supplier,
        mode,
        billingCycleDay: 1 + (i % 28),
        meter: { serial, areaId: 'EAST-1', feederId, tz },
      });
      fleet.meters.push({
        id: serial,
        password: h.meterCredential,
        tz,
        mode,
        startS,
        feederId,
        hardwareClass: DEMO_HARDWARE_CLASS, // #10 D
      });
      demoMeters.push({ index: i, serial, meterId: h.meterId, mode, tz });
    }
    const tariffs: ReadonlyMap<string, TariffSpec> = opts.tariffs
      ? await opts.tariffs(c, demoMeters, historyFrom)
      : new Map<string, TariffSpec>();
    for (const m of fleet.meters) {
      const t = tariffs.get(m.id);
      if (t) m.initialTariff = t;
    }
  });
  // Loaded here only: the meter model is the simulator's, not something every process needs.
  const { prepaymentDebit } = await import('@kilowire/meter');
  let prepaid = 0;
  for (const m of fleet.meters) {
    if (m.mode !== 'prepayment') continue;
    const runsOutS = nowS + PREPAY_RUNS_OUT_DAYS[prepaid++ % PREPAY_RUNS_OUT_DAYS.length]! * 86_400;
    // Too little history for a story (a test's one-day backfill): the meter's default credit.
    if (runsOutS - startS < MIN_STORY_S) continue;
    m.initialCreditMinor = prepaymentDebit(
      { id: m.id, tz: m.tz, tariff: m.initialTariff },
      serverPublicKey,
      startS,
      runsOutS,
    );
  }
  // The ledger mirrors each prepayment meter from the credit it starts its history with, so
  // reconciliation compares like with like (money/reconcile.ts).
  const opening = fleet.meters.filter((m) => m.initialCreditMinor !== undefined);
  if (opening.length) {
    await tx(pool, async (c) => {
      const { rows } = await c.query<{ id: number; serial: string; account_id: number }>(
        'SELECT id, serial, account_id FROM meters WHERE serial = ANY($1::text[])',
        [opening.map((m) => m.id)],
      );
      for (const r of rows) {
        const m = opening.find((x) => x.id === r.serial)!;
        await openMirror(c, { meterId: r.id, accountId: r.account_id }, historyFrom, m.initialCreditMinor!);
      }
    });
  }
  // The fleet file holds meter credentials, like a factory provisioning file: owner-only.
  writeFileSync(fleetPath, JSON.stringify(fleet, null, 2), { mode: 0o600 });
  return logins(fleet);
}

function logins(fleet: FleetFile): DemoLogins {
  return {
    staff: [
      { role: 'supplier admin', ...DEMO.supplier },
      { role: 'supplier admin (2nd)', ...DEMO.supplier2 },
      { role: 'supplier agent', ...DEMO.agent },
      { role: 'network operator', ...DEMO.operator },
      { role: 'administrator', ...DEMO.admin },
    ],
    consumers: fleet.meters.map((m, i) => ({
      consumerId: `C${100001 + i}`,
      password: DEMO.consumerPassword,
      mode: m.mode,
      meter: m.id,
    })),
  };
}
