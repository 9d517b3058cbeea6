import type { MeterMode } from '@kilowire/contract/enums';
import type { TariffSpec } from '@kilowire/protocol';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Pool } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import { hashPassword } from '../auth/passwords.ts';
import { createArea, createHousehold, createOrganisation, createStaffUser } from '../accounts/repo.ts';
import { demoInitialTariffs, seedDemoTariffs } from './tariffs.ts';

/**
 * Demo world for a newcomer: one supplier, one network operator with an area of three
 * feeders, and 25 households (a mix of credit and prepayment). Passwords are fixed and
 * printed: this only runs when DEMO_SEED is on (the default on embedded PostgreSQL).
 */
export const DEMO = {
  supplier: { email: 'supplier@kilowire.demo', password: 'supplier-demo-pass' },
  operator: { email: 'operator@kilowire.demo', password: 'operator-demo-pass' },
  admin: { email: 'admin@kilowire.demo', password: 'admin-demo-pass' },
  consumerPassword: 'consumer-demo-pass',
};

export interface FleetFile {
  serverPublicKey: string;
  meters: {
    id: string;
    password: string;
    tz: string;
    mode: MeterMode;
    /** The tariff the simulated meter starts on (what the head-end prices it by). */
    initialTariff?: TariffSpec;
  }[];
}

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

/** Seed once (no organisations yet); write the fleet file the simulator reads. Returns the logins. */
export async function seedDemo(
  pool: Pool,
  dataDir: string,
  serverPublicKey: string,
  households = 25,
  tz = 'Europe/London',
): Promise<DemoLogins | null> {
  const fleetPath = path.join(dataDir, 'fleet.json');
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM organisations');
  if (rows[0]!.n > 0)
    return existsSync(fleetPath) ? logins(JSON.parse(readFileSync(fleetPath, 'utf8')) as FleetFile) : null;

  const consumerHash = await hashPassword(DEMO.consumerPassword);
  const fleet: FleetFile = { serverPublicKey, meters: [] };
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
      const h = await createHousehold(c, {
        loginId: `C${100000 + i}`,
        password: DEMO.consumerPassword,
        passwordHash: consumerHash,
        name: `${FIRST[i % FIRST.length]} ${LAST[(i * 7) % LAST.length]}`,
        email: `c${100000 + i}@example.org`,
        supplierId: supplier,
        mode,
        billingCycleDay: 1 + (i % 28),
        meter: { serial, areaId: 'EAST-1', feederId: `EAST-1-F${1 + (i % 3)}`, tz },
      });
      fleet.meters.push({ id: serial, password: h.meterCredential, tz, mode });
    }
    await seedDemoTariffs(c, supplier, tz);
    const specs = await demoInitialTariffs(
      c,
      fleet.meters.map((m) => m.id),
    );
    for (const m of fleet.meters) {
      const spec = specs.get(m.id);
      if (spec) m.initialTariff = spec;
    }
  });
  // The fleet file holds meter credentials, like a factory provisioning file: owner-only.
  writeFileSync(fleetPath, JSON.stringify(fleet, null, 2), { mode: 0o600 });
  return logins(fleet);
}

function logins(fleet: FleetFile): DemoLogins {
  return {
    staff: [
      { role: 'supplier', ...DEMO.supplier },
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
