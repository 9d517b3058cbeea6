import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
// #10 B firmware images
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildManifest, generateSigningKeyPair, privateKeyFromB64, signManifest } from '@kilowire/protocol';
// #10 B end
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';
import { HOUSEHOLD_ALERT_TYPES } from '@kilowire/contract/enums';
import { registeredRoutes } from '../src/api/app.ts';
// #9 collection
import { collectDay } from '../src/collection/collect.ts';
// #9 collection end
// #9 charges
import { issueMonth } from '../src/netbilling/invoices.ts';
// #9 charges end
import { insertImage } from './support/firmware-campaign.ts'; // #10 C

/**
 * The authorisation matrix. Every registered route must appear in ROUTES (or be under /docs);
 * a route added without an entry here fails `every registered route is in the matrix`.
 */
/** `supplier` is a supplier admin of supplier 1, `agent` a supplier agent of supplier 1. */
type Role = 'consumer' | 'supplier' | 'agent' | 'operator' | 'admin';
const ALL: Role[] = ['consumer', 'supplier', 'agent', 'operator', 'admin'];

type RouteCase =
  /** No session needed (probes, metrics, login). */
  | { kind: 'public' }
  /** Needs a session, is not about one meter. */
  | { kind: 'session' }
  /**
   * About one meter (:serial): `roles` may use it at all; `ok` is the success status; `check`
   * asserts the success body (default: it names the meter's serial).
   */
  | {
      kind: 'meter';
      roles: Role[];
      ok: number;
      query?: string;
      body?: Record<string, unknown>;
      check?: (body: Record<string, unknown>) => void;
    }
  /**
   * Not about a meter in the path, but only for some roles: the others get 403. `url` gives
   * the concrete URL (default: the pattern), e.g. an alert of consumer h1A.
   */
  | {
      kind: 'roles';
      roles: Role[];
      ok: number;
      url?: () => string;
      body?: Record<string, unknown>;
      /** Extra request headers (e.g. Idempotency-Key); a function gives fresh ones per request. */
      headers?: () => Record<string, string>;
      /** Run before each allowed role's request: a fresh target when the first success uses it up. */
      fresh?: () => Promise<void>;
    };

const PROFILE_BODY = {
  name: 'Household C1A',
  email: 'c1a@example.test',
  mobile: '+447700900111',
  quietHours: null,
  channels: Object.fromEntries(HOUSEHOLD_ALERT_TYPES.map((t) => [t, { email: true, sms: false, web: true }])),
};
const limitsShape = (b: Record<string, unknown>) =>
  expect(Object.keys(b).sort()).toEqual([
    'dailyLimitWh',
    'hourlyLimitWh',
    'lowCreditCommand',
    'lowCreditMinor',
  ]);
/** An alert of consumer h1A (created in beforeAll). */
let alertOfH1A = 0;
/** A paid top-up of consumer h1A's meter (created in beforeAll). */
let topupOfH1A = '';
/** A bill of consumer h1A and a bill run of supplier 1 (created in beforeAll). */
let billOfH1A = 0;
let runOfSup1 = 0;
/** A tariff of supplier 1 and of supplier 2, and an open change request of h1B (beforeAll). */
let tariffOfSup1 = 0;
let tariffOfSup2 = 0;
let requestOfH1B = 0;
const VERSION = {
  effectiveFrom: '2030-01-01',
  dayRate: 24_500,
  standingMilliPerDay: 53_350,
  vatBp: 500,
};
/** #9 charges: a network tariff version (flat, with a fixed charge). */
const NET_VERSION = {
  effectiveFrom: '2030-01-01',
  bands: [{ code: 'all', name: 'All day', rateMilli: 2500, windows: [], weekdaysOnly: false }],
  fixedMilliPerDay: 10_000,
  vatBp: 2000,
};
const meterTariffShape = (b: Record<string, unknown>) => {
  expect(b.serial).toBe('KW1A');
  expect(Object.keys(b).sort()).toEqual(['command', 'next', 'serial', 'tariffId', 'tariffName', 'tz']);
};

// #10 B the body the matrix sends to PUT /api/firmware/uploads/:uploadId (its JSON text is the image).
const FW_PUT_BODY = { image: 'authz firmware image bytes' };
// #10 B end

const ROUTES: Record<string, RouteCase> = {
  'GET /healthz': { kind: 'public' },
  'GET /readyz': { kind: 'public' },
  'GET /metrics': { kind: 'public' },
  'GET /api/session': { kind: 'public' },
  'POST /api/session': { kind: 'public' },
  'DELETE /api/session': { kind: 'session' },
  'GET /api/me': { kind: 'session' },
  'GET /api/meters': { kind: 'session' },
  'GET /api/meters/:serial': { kind: 'meter', roles: ALL, ok: 200 },
  'GET /api/meters/:serial/events': { kind: 'meter', roles: ALL, ok: 200, query: 'limit=10' },
  'GET /api/meters/:serial/intervals': { kind: 'meter', roles: ALL, ok: 200, query: 'date=2026-03-29' },
  'GET /api/meters/:serial/daily': {
    kind: 'meter',
    roles: ALL,
    ok: 200,
    query: 'from=2026-03-01&to=2026-03-31',
  },
  'GET /api/meters/:serial/monthly': { kind: 'meter', roles: ALL, ok: 200, query: 'from=2026-01&to=2026-12' },
  'GET /api/meters/:serial/commands': {
    kind: 'meter',
    roles: ['supplier', 'agent', 'operator', 'admin'],
    ok: 200,
  },
  'POST /api/meters/:serial/commands': {
    kind: 'meter',
    roles: ['supplier', 'agent'],
    ok: 202,
    body: { type: 'supply.off', reason: 'test' },
  },
  'GET /api/meters/:serial/limits': { kind: 'meter', roles: ['consumer'], ok: 200, check: limitsShape },
  'PUT /api/meters/:serial/limits': {
    kind: 'meter',
    roles: ['consumer'],
    ok: 200,
    body: { dailyLimitWh: 50_000, hourlyLimitWh: null },
    check: limitsShape,
  },
  'GET /api/home': { kind: 'roles', roles: ['consumer'], ok: 200 },
  'GET /api/me/profile': { kind: 'roles', roles: ['consumer'], ok: 200 },
  'PUT /api/me/profile': { kind: 'roles', roles: ['consumer'], ok: 200, body: PROFILE_BODY },
  'POST /api/me/password': { kind: 'session' },
  'GET /api/alerts': {
    kind: 'roles',
    roles: ['consumer', 'supplier', 'agent', 'operator', 'admin'],
    ok: 200,
  },
  'POST /api/alerts/read-all': { kind: 'roles', roles: ['consumer'], ok: 204 },
  'POST /api/alerts/:id/read': {
    kind: 'roles',
    roles: ['consumer'],
    ok: 204,
    url: () => `/api/alerts/${alertOfH1A}/read`,
  },
  'GET /api/outbox': { kind: 'roles', roles: ['supplier', 'agent', 'admin'], ok: 200 },
  'POST /api/top-ups': {
    kind: 'roles',
    roles: ['consumer'],
    ok: 201,
    body: { meterSerial: 'KW1A', amountMinor: 1000 },
    headers: () => ({ 'idempotency-key': randomUUID() }),
  },
  'GET /api/top-ups': { kind: 'roles', roles: ['consumer', 'supplier', 'agent'], ok: 200 },
  'GET /api/top-ups/:id': {
    kind: 'roles',
    roles: ['consumer', 'supplier', 'agent'],
    ok: 200,
    url: () => `/api/top-ups/${topupOfH1A}`,
  },
  'POST /api/top-ups/:id/refund': {
    kind: 'roles',
    roles: ['supplier', 'agent'],
    ok: 202,
    url: () => `/api/top-ups/${topupOfH1A}/refund`,
    body: { amountMinor: 1 },
  },
  // Signed by the provider, not a session: payments.test.ts proves forged and stale ones change nothing.
  'POST /api/payments/webhook': { kind: 'public' },
  // The sandbox card page: the unguessable checkout id is the capability, as on Stripe's page.
  'GET /api/payments/sandbox/:session': { kind: 'public' },
  'POST /api/payments/sandbox/:session/pay': { kind: 'public' },
  'GET /api/accounts': { kind: 'roles', roles: ['consumer', 'supplier', 'agent', 'admin'], ok: 200 },
  'GET /api/accounts/:id/ledger': {
    kind: 'roles',
    roles: ['consumer', 'supplier', 'agent', 'admin'],
    ok: 200,
    url: () => `/api/accounts/${w.h1A.accountId}/ledger`,
  },
  'GET /api/bills': { kind: 'roles', roles: ['consumer', 'supplier', 'agent', 'admin'], ok: 200 },
  'GET /api/bills/:id/pdf': {
    kind: 'roles',
    roles: ['consumer', 'supplier', 'agent', 'admin'],
    ok: 200,
    url: () => `/api/bills/${billOfH1A}/pdf`,
  },
  'POST /api/bill-runs': { kind: 'roles', roles: ['supplier'], ok: 202, body: { periodStart: '2026-03-07' } },
  'GET /api/bill-runs': { kind: 'roles', roles: ['supplier', 'agent', 'admin'], ok: 200 },
  'GET /api/bill-runs/:id': {
    kind: 'roles',
    roles: ['supplier', 'agent', 'admin'],
    ok: 200,
    url: () => `/api/bill-runs/${runOfSup1}`,
  },
  'GET /api/tariffs': { kind: 'roles', roles: ['consumer', 'supplier', 'agent'], ok: 200 },
  'POST /api/tariffs': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 201,
    body: { code: 'AUTHZ', name: 'Authz flat', structure: 'flat', version: VERSION },
  },
  'POST /api/tariffs/:id/versions': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 201,
    url: () => `/api/tariffs/${tariffOfSup1}/versions`,
    body: { ...VERSION, effectiveFrom: '2031-01-01' },
  },
  'POST /api/tariffs/:id/assign': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 200,
    url: () => `/api/tariffs/${tariffOfSup1}/assign`,
    body: { serials: ['KW1B'], from: '2030-02-01' },
  },
  'GET /api/meters/:serial/tariff': {
    kind: 'meter',
    roles: ['consumer', 'supplier', 'agent', 'admin'],
    ok: 200,
    check: meterTariffShape,
  },
  'PUT /api/meters/:serial/tariff': {
    kind: 'meter',
    roles: ['supplier', 'agent'],
    ok: 200,
    get body() {
      return { tariffId: tariffOfSup1, from: '2030-03-01' };
    },
    check: meterTariffShape,
  },
  'GET /api/tariff-change-requests': { kind: 'roles', roles: ['consumer', 'supplier', 'agent'], ok: 200 },
  'POST /api/tariff-change-requests': {
    kind: 'roles',
    roles: ['consumer'],
    ok: 201,
    get body() {
      return { serial: 'KW1A', toTariffId: tariffOfSup1 };
    },
  },
  'POST /api/tariff-change-requests/:id/decision': {
    kind: 'roles',
    roles: ['supplier', 'agent'],
    ok: 200,
    url: () => `/api/tariff-change-requests/${requestOfH1B}/decision`,
    body: { decision: 'decline', reason: 'Not available in your area' },
    // A decided request cannot be decided again: each allowed role decides a new one.
    fresh: async () => {
      const open = await db.pool.query(
        `SELECT 1 FROM tariff_change_requests WHERE id = $1 AND status = 'requested'`,
        [requestOfH1B],
      );
      if (open.rowCount) return;
      const r = await db.pool.query<{ id: number }>(
        `INSERT INTO tariff_change_requests (consumer_id, meter_id, to_tariff_id) VALUES ($1, $2, $3) RETURNING id::int`,
        [w.h1B.consumerId, w.h1B.meterId, tariffOfSup1],
      );
      requestOfH1B = r.rows[0]!.id;
    },
  },
  // #8 supply
  'POST /api/meters/:serial/supply': {
    kind: 'meter',
    roles: ['supplier', 'agent'],
    ok: 202,
    // Safety, not non-payment: it goes to the meter whatever the hour the test runs at.
    body: { action: 'disconnect', reason: 'safety' },
    check: (b) => expect(b).toMatchObject({ outcome: 'sent', commands: [{ serial: 'KW1A' }] }),
  },
  'POST /api/supply/actions': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 202,
    body: { serials: ['KW1B'], action: 'disconnect', reason: 'safety' },
  },
  'GET /api/approvals': { kind: 'roles', roles: ['supplier', 'agent'], ok: 200 },
  ...Object.fromEntries(
    (
      [
        ['GET /api/approvals/:id', ['supplier', 'agent'], ''],
        ['POST /api/approvals/:id/approve', ['supplier'], '/approve'],
        ['POST /api/approvals/:id/reject', ['supplier'], '/reject'],
      ] as const
    ).map(([k, roles, tail]) => [
      k,
      {
        kind: 'roles',
        roles: [...roles],
        ok: 200,
        url: () => `/api/approvals/990001${tail}`,
        ...(k.startsWith('POST') ? { body: { reason: 'authorisation matrix' } } : {}),
        // A request of supplier 1 asked for by its agent, waiting again before each allowed
        // role's call (so supplier 1's admin may decide it each time).
        fresh: async () => {
          await db.pool.query(
            `INSERT INTO action_requests (id, supplier_id, kind, requested_by, reason, needs, expires_at)
             VALUES (990001, $1, 'supply.disconnect', (SELECT id FROM users WHERE email = 'agent@sup1.test'),
                     'safety', '{bulk}', now() + interval '1 day')
             ON CONFLICT (id) DO UPDATE SET status = 'awaiting_approval', decided_by = NULL, decided_at = NULL,
                                            decision_reason = NULL, expires_at = now() + interval '1 day'`,
            [w.sup1],
          );
        },
      } satisfies RouteCase,
    ]),
  ),
  'GET /api/supplier/settings': { kind: 'roles', roles: ['supplier', 'agent'], ok: 200 },
  'PUT /api/supplier/settings': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 200,
    body: {
      tz: 'Europe/London',
      nights: { enabled: true, from: '20:00', to: '08:00' },
      weekends: true,
      holidays: ['2026-12-25'],
      bulkThreshold: 10,
      hourlyDisconnectQuota: 50,
      approvalTtlHours: 24,
    },
  },
  // #8 cases and extracts
  'GET /api/tamper-cases': { kind: 'roles', roles: ['supplier', 'agent'], ok: 200 },
  'GET /api/tamper-cases/:id': {
    kind: 'roles',
    roles: ['supplier', 'agent'],
    ok: 200,
    url: () => `/api/tamper-cases/${cases.ofSup1 || 1}`,
    fresh: () => cases.ensure(),
  },
  'POST /api/tamper-cases/:id/notes': {
    kind: 'roles',
    roles: ['supplier', 'agent'],
    ok: 201,
    url: () => `/api/tamper-cases/${cases.ofSup1 || 1}/notes`,
    body: { text: 'Checked the seals' },
    fresh: () => cases.ensure(),
  },
  'POST /api/tamper-cases/:id/status': {
    kind: 'roles',
    roles: ['supplier', 'agent'],
    ok: 200,
    url: () => `/api/tamper-cases/${cases.ofSup1 || 1}/status`,
    body: { status: 'investigating' },
    // Each allowed role moves an open case on.
    fresh: () => cases.ensure(true),
  },
  'POST /api/tamper-cases/:id/actions': {
    kind: 'roles',
    roles: ['supplier', 'agent'],
    ok: 201,
    url: () => `/api/tamper-cases/${cases.ofSup1 || 1}/actions`,
    body: { action: 'site_visit_booked', visitDate: '2030-01-02' },
    fresh: () => cases.ensure(),
  },
  'GET /api/meters/:serial/tamper-cases': { kind: 'meter', roles: ['supplier', 'agent', 'admin'], ok: 200 },
  'POST /api/extracts': { kind: 'roles', roles: ['supplier', 'agent'], ok: 202, body: { month: '2026-03' } },
  'GET /api/extracts': { kind: 'roles', roles: ['supplier', 'agent'], ok: 200 },
  'GET /api/extracts/:id': {
    kind: 'roles',
    roles: ['supplier', 'agent'],
    ok: 200,
    url: () => `/api/extracts/${cases.extractOfSup1 || 1}`,
    fresh: () => cases.ensureExtract(),
  },
  'GET /api/extracts/:id/download': {
    kind: 'roles',
    roles: ['supplier', 'agent'],
    ok: 200,
    url: () => `/api/extracts/${cases.extractOfSup1 || 1}/download`,
    fresh: () => cases.ensureExtract(),
  },
  'GET /api/meters/:serial/green-button': {
    kind: 'meter',
    roles: ['consumer', 'supplier', 'agent'],
    ok: 200,
    query: 'from=2026-03-01&to=2026-03-31',
    check: (b) => expect(b.text).toContain('<espi:UsagePoint>'),
  },
  // #8 admin
  ...(() => {
    // Each allowed request gets a target of its own (a staff user of supplier 1, a meter),
    // created in `fresh`; refused requests name one that need not exist (403 comes first).
    let n = 0;
    let user = 0;
    let meter = '';
    const freshUser = (disabled: boolean) => async () => {
      const r = await db.pool.query<{ id: number }>(
        `INSERT INTO users (role, email, org_id, password_hash, display_name, staff_role, disabled)
         VALUES ('supplier', $1, $2, '!invited', 'Authz target', 'agent', $3) RETURNING id::int`,
        [`authz-target-${++n}@sup1.test`, w.sup1, disabled],
      );
      user = r.rows[0]!.id;
    };
    // The meters made here go again before the tests that list the world's meters exactly.
    const dropMeters = async () => {
      await db.pool.query(`UPDATE meters SET replaced_by = NULL WHERE serial LIKE 'AUTHZ%'`);
      await db.pool.query(`DELETE FROM meters WHERE serial LIKE 'AUTHZ%'`);
    };
    const freshMeter = async () => {
      await dropMeters();
      meter = `AUTHZM${++n}`;
      await db.pool.query(
        `INSERT INTO meters (serial, supplier_id, area_id, credential_hash) VALUES ($1, $2, 'A', 'x')`,
        [meter, w.sup1],
      );
    };
    const userUrl = (verb: string) => () => `/api/staff-users/${user || 999_999}${verb}`;
    const meterUrl = (verb: string) => () => `/api/admin/meters/${meter || 'AUTHZ-NONE'}/${verb}`;
    const cases: Record<string, RouteCase> = {
      'GET /api/admin/organisations': { kind: 'roles', roles: ['admin'], ok: 200 },
      'POST /api/admin/organisations': {
        kind: 'roles',
        roles: ['admin'],
        ok: 201,
        body: { kind: 'supplier', slug: 'authz-org', name: 'Authz Org' },
      },
      'PATCH /api/admin/organisations/:id': {
        kind: 'roles',
        roles: ['admin'],
        ok: 200,
        url: () => `/api/admin/organisations/${w.sup2}`,
        body: { name: 'Supplier Two' },
      },
      'POST /api/admin/organisations/:id/areas': {
        kind: 'roles',
        roles: ['admin'],
        ok: 201,
        url: () => `/api/admin/organisations/${w.opB}/areas`,
        body: { id: 'AUTHZ-AREA', name: 'Authz area', feeders: [{ id: 'AUTHZ-F1', name: 'Feeder one' }] },
      },
      'GET /api/staff-users': { kind: 'roles', roles: ['supplier', 'admin'], ok: 200 },
      'POST /api/staff-users': {
        kind: 'roles',
        roles: ['supplier', 'admin'],
        ok: 201,
        get body() {
          return {
            email: `authz-new-${++n}@sup1.test`,
            name: 'New person',
            orgId: w.sup1,
            staffRole: 'agent',
            access: { method: 'invite' },
          };
        },
      },
      'POST /api/staff-users/:id/disable': {
        kind: 'roles',
        roles: ['supplier', 'admin'],
        ok: 200,
        url: userUrl('/disable'),
        fresh: freshUser(false),
      },
      'POST /api/staff-users/:id/enable': {
        kind: 'roles',
        roles: ['supplier', 'admin'],
        ok: 200,
        url: userUrl('/enable'),
        fresh: freshUser(true),
      },
      'POST /api/staff-users/:id/reset': {
        kind: 'roles',
        roles: ['supplier', 'admin'],
        ok: 200,
        url: userUrl('/reset'),
        body: { method: 'invite' },
        fresh: freshUser(false),
      },
      'PATCH /api/staff-users/:id': {
        kind: 'roles',
        roles: ['supplier', 'admin'],
        ok: 200,
        url: userUrl(''),
        body: { staffRole: 'admin' },
        fresh: freshUser(false),
      },
      // The token is the credential; admin.test.ts covers these.
      'GET /api/invites/:token': { kind: 'public' },
      'POST /api/invites/:token': { kind: 'public' },
      'GET /api/admin/meters': { kind: 'roles', roles: ['admin'], ok: 200 },
      'GET /api/admin/meters/options': { kind: 'roles', roles: ['admin'], ok: 200 },
      'POST /api/admin/meters': {
        kind: 'roles',
        roles: ['admin'],
        ok: 201,
        get body() {
          return { serial: `AUTHZP${++n}`, supplierId: w.sup1, areaId: 'A' };
        },
      },
      'POST /api/admin/meters/:meter/rotate-credential': {
        kind: 'roles',
        roles: ['admin'],
        ok: 200,
        url: meterUrl('rotate-credential'),
        fresh: freshMeter,
      },
      'POST /api/admin/meters/:meter/decommission': {
        kind: 'roles',
        roles: ['admin'],
        ok: 200,
        url: meterUrl('decommission'),
        fresh: freshMeter,
      },
      'POST /api/admin/meters/:meter/exchange': {
        kind: 'roles',
        roles: ['admin'],
        ok: 201,
        url: meterUrl('exchange'),
        get body() {
          return { newSerial: `AUTHZX${++n}` };
        },
        fresh: freshMeter,
      },
      'GET /api/audit': { kind: 'roles', roles: ['admin'], ok: 200 },
      'GET /api/audit/export.csv': { kind: 'roles', roles: ['admin'], ok: 200 },
      'GET /api/admin/health': { kind: 'roles', roles: ['admin'], ok: 200, fresh: dropMeters },
    };
    return cases;
  })(),
  // #8 fleet
  'GET /api/fleet': { kind: 'roles', roles: ['supplier', 'agent', 'admin'], ok: 200 },
  'GET /api/fleet/export.csv': { kind: 'roles', roles: ['supplier', 'agent', 'admin'], ok: 200 },
  'GET /api/meters/:serial/overview': { kind: 'meter', roles: ['supplier', 'agent', 'admin'], ok: 200 },
  // #10 B firmware images: supplier staff read their own (admins all); supplier admins upload.
  // Another supplier's image or upload is 404 (firmware-images.test.ts).
  'GET /api/firmware/images': { kind: 'roles', roles: ['supplier', 'agent', 'admin'], ok: 200 },
  'GET /api/firmware/images/:id': {
    kind: 'roles',
    roles: ['supplier', 'agent', 'admin'],
    ok: 200,
    url: () => `/api/firmware/images/${fw.imageOfSup1 || 1}`,
    fresh: () => fw.ensureImage(),
  },
  'POST /api/firmware/uploads': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 201,
    get body() {
      return { ...fw.signed(Buffer.from('authz image one')).body };
    },
  },
  'PUT /api/firmware/uploads/:uploadId': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 201,
    url: () => `/api/firmware/uploads/${fw.upload}`,
    headers: () => ({ 'content-type': 'application/octet-stream' }),
    // Sent as its JSON text, which is the image this upload was opened for.
    body: FW_PUT_BODY,
    fresh: () => fw.openUpload(),
  },
  // #10 B end
  // #9 collection
  'GET /api/collection/areas': { kind: 'roles', roles: ['operator', 'admin'], ok: 200 },
  'GET /api/collection/areas/:areaId/days/:day': {
    kind: 'roles',
    roles: ['operator', 'admin'],
    ok: 200,
    url: () => `/api/collection/areas/A/days/${COLLECTED_DAY}`,
    fresh: () => collection.ensure(),
  },
  'GET /api/collection/areas/:areaId/days/:day/missing': {
    kind: 'roles',
    roles: ['operator', 'admin'],
    ok: 200,
    url: () => `/api/collection/areas/A/days/${COLLECTED_DAY}/missing`,
    fresh: () => collection.ensure(),
  },
  'GET /api/collection/areas/:areaId/days/:day/suppliers/:supplierId/file.csv': {
    kind: 'roles',
    roles: ['operator', 'admin'],
    ok: 200,
    url: () => `/api/collection/areas/A/days/${COLLECTED_DAY}/suppliers/${w.sup1}/file.csv`,
    fresh: () => collection.ensure(),
  },
  'GET /api/collection/areas/:areaId/days/:day/suppliers/:supplierId/file.json': {
    kind: 'roles',
    roles: ['operator', 'admin'],
    ok: 200,
    url: () => `/api/collection/areas/A/days/${COLLECTED_DAY}/suppliers/${w.sup1}/file.json`,
    fresh: () => collection.ensure(),
  },
  // Operator admins only (network.settings); nothing changed since the first collection: 200.
  'POST /api/collection/areas/:areaId/days/:day/collect': {
    kind: 'roles',
    roles: ['operator'],
    ok: 200,
    url: () => `/api/collection/areas/A/days/${COLLECTED_DAY}/collect`,
    fresh: () => collection.ensure(),
  },
  // #9 collection end
  // #9 charges
  'GET /api/network-tariffs': { kind: 'roles', roles: ['operator', 'admin'], ok: 200 },
  'POST /api/network-tariffs': {
    kind: 'roles',
    roles: ['operator'],
    ok: 201,
    body: {
      code: 'AUTHZ-NEW',
      name: 'Authz network',
      version: { ...NET_VERSION, effectiveFrom: '2031-01-01' },
    },
  },
  'POST /api/network-tariffs/:id/versions': {
    kind: 'roles',
    roles: ['operator'],
    ok: 201,
    url: () => `/api/network-tariffs/${netCharges.tariff || 1}/versions`,
    body: { ...NET_VERSION, effectiveFrom: '2030-03-01' },
    fresh: () => netCharges.ensure(),
  },
  'POST /api/network-tariffs/:id/areas': {
    kind: 'roles',
    roles: ['operator'],
    ok: 201,
    url: () => `/api/network-tariffs/${netCharges.tariff || 1}/areas`,
    body: { areaId: 'A', fromDay: '2030-04-01' },
    fresh: () => netCharges.ensure(),
  },
  'GET /api/network-invoices': { kind: 'roles', roles: ['supplier', 'agent', 'operator', 'admin'], ok: 200 },
  'POST /api/network-invoices/issue': {
    kind: 'roles',
    roles: ['operator'],
    ok: 200,
    body: { month: '2030-01' },
    fresh: () => netCharges.ensure(),
  },
  'GET /api/network-invoices/:id/pdf': {
    kind: 'roles',
    roles: ['supplier', 'agent', 'operator', 'admin'],
    ok: 200,
    url: () => `/api/network-invoices/${netCharges.invoiceOfSup1 || 1}/pdf`,
    fresh: () => netCharges.ensureInvoice(),
  },
  'GET /api/network-invoices/:id/lines.csv': {
    kind: 'roles',
    roles: ['supplier', 'agent', 'operator', 'admin'],
    ok: 200,
    url: () => `/api/network-invoices/${netCharges.invoiceOfSup1 || 1}/lines.csv`,
    fresh: () => netCharges.ensureInvoice(),
  },
  'POST /api/network-invoices/payments': {
    kind: 'roles',
    roles: ['operator'],
    ok: 201,
    get body() {
      return { supplierId: w.sup1, amountMinor: 100, reference: 'AUTHZ 1', invoiceId: null };
    },
  },
  // #9 charges end
  // #9 outages
  // Reading: operator staff (their areas) and admins; working an incident: operator staff;
  // settings: operator admins. The other area's operator is refused by scope (404 / empty),
  // proved in outages-api.test.ts.
  'GET /api/network/feeders': { kind: 'roles', roles: ['operator', 'admin'], ok: 200 },
  'GET /api/incidents': { kind: 'roles', roles: ['operator', 'admin'], ok: 200 },
  'GET /api/incidents/:id': {
    kind: 'roles',
    roles: ['operator', 'admin'],
    ok: 200,
    url: () => `/api/incidents/${outages.ofOpA || 1}`,
    fresh: () => outages.ensure(),
  },
  'POST /api/incidents/:id/status': {
    kind: 'roles',
    roles: ['operator'],
    ok: 200,
    url: () => `/api/incidents/${outages.ofOpA || 1}/status`,
    body: { to: 'acknowledged' },
    fresh: () => outages.ensure(true),
  },
  'PUT /api/incidents/:id/etr': {
    kind: 'roles',
    roles: ['operator'],
    ok: 200,
    url: () => `/api/incidents/${outages.ofOpA || 1}/etr`,
    body: { etr: '2030-01-01T10:00:00Z' },
    fresh: () => outages.ensure(true),
  },
  'POST /api/incidents/:id/notes': {
    kind: 'roles',
    roles: ['operator'],
    ok: 201,
    url: () => `/api/incidents/${outages.ofOpA || 1}/notes`,
    body: { text: 'Crew on site' },
    fresh: () => outages.ensure(),
  },
  'GET /api/network/sla': { kind: 'roles', roles: ['operator', 'admin'], ok: 200 },
  'GET /api/network/outage-settings': { kind: 'roles', roles: ['operator'], ok: 200 },
  'PUT /api/network/outage-settings': {
    kind: 'roles',
    roles: ['operator'],
    ok: 200,
    body: {
      outageMinMeters: 3,
      outageMinSharePct: 10,
      outageWindowS: 120,
      silentAfterS: 3600,
      outageRestoreGraceS: 900,
      outageAutoCloseH: 24,
      slaFeederMin: 720,
      slaSingleMin: 1440,
      slaAtRiskPct: 75,
      oncallEmails: [],
      oncallMobiles: [],
    },
  },
  // #9 outages end
  // #10 C firmware campaigns: supplier staff read, supplier admins act; the operator reads
  // the planned activations of its feeders. Another supplier gets 404 (below).
  'POST /api/firmware/campaigns/preview': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 200,
    get body() {
      return { imageId: fwc.image || 1, target: { filter: {} } };
    },
    fresh: () => fwc.ensure(),
  },
  'GET /api/firmware/campaigns': { kind: 'roles', roles: ['supplier', 'agent', 'admin'], ok: 200 },
  'POST /api/firmware/campaigns': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 201,
    get body() {
      return {
        name: 'Authz',
        imageId: fwc.image || 1,
        target: { serials: ['KW1A'] },
        canaryCount: 1,
        waveSize: 1,
        failureThresholdPct: 10,
        windowFrom: '01:00',
        windowTo: '03:00',
        reason: 'authz',
      };
    },
    fresh: () => fwc.ensure(),
  },
  'GET /api/firmware/campaigns/:id': {
    kind: 'roles',
    roles: ['supplier', 'agent', 'admin'],
    ok: 200,
    url: () => `/api/firmware/campaigns/${fwc.campaign || 1}`,
    fresh: () => fwc.ensure(),
  },
  'GET /api/firmware/campaigns/:id/meters': {
    kind: 'roles',
    roles: ['supplier', 'agent', 'admin'],
    ok: 200,
    url: () => `/api/firmware/campaigns/${fwc.campaign || 1}/meters`,
    fresh: () => fwc.ensure(),
  },
  'POST /api/firmware/campaigns/:id/pause': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 200,
    url: () => `/api/firmware/campaigns/${fwc.campaign || 1}/pause`,
    body: {},
    fresh: () => fwc.ensure('running'),
  },
  'POST /api/firmware/campaigns/:id/resume': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 200,
    url: () => `/api/firmware/campaigns/${fwc.campaign || 1}/resume`,
    body: {},
    fresh: () => fwc.ensure('paused'),
  },
  'POST /api/firmware/campaigns/:id/cancel': {
    kind: 'roles',
    roles: ['supplier'],
    ok: 200,
    url: () => `/api/firmware/campaigns/${fwc.campaign || 1}/cancel`,
    body: { reason: 'authz' },
    fresh: () => fwc.ensure('running'),
  },
  'GET /api/network/activation-windows': { kind: 'roles', roles: ['operator', 'admin'], ok: 200 },
  // #10 C end
};

/**
 * #10 C a firmware image of supplier 1 and a campaign of it over KW1B, made on first use;
 * `ensure(status)` puts the campaign back in that status with its meter waiting, and frees
 * KW1A from campaigns created through the API so that creating one can succeed again.
 */
const fwc = {
  image: 0,
  campaign: 0,
  async ensure(status: 'running' | 'paused' = 'running'): Promise<void> {
    if (!fwc.image) {
      fwc.image = (await insertImage(db.pool, w.sup1, { version: '9.0.0', sequence: 9 })).id;
      const staff = await db.pool.query<{ id: number }>(`SELECT id FROM users WHERE email = $1`, [
        w.login.sup1,
      ]);
      const c = await db.pool.query<{ id: number }>(
        `INSERT INTO firmware_campaigns (supplier_id, image_id, name, target, status, canary_count, wave_size,
                failure_threshold_pct, window_from, window_to, created_by, started_at)
         VALUES ($1, $2, 'Authz fixture', '{"serials": ["KW1B"]}', 'running', 1, 1, 10, '01:00', '03:00', $3, now())
         RETURNING id::int`,
        [w.sup1, fwc.image, staff.rows[0]!.id],
      );
      fwc.campaign = c.rows[0]!.id;
      await db.pool.query(
        `INSERT INTO firmware_campaign_meters (campaign_id, meter_id, stage, blocks_total) VALUES ($1, $2, 0, 10)`,
        [fwc.campaign, w.h1B.meterId],
      );
    }
    await db.pool.query(`UPDATE firmware_campaigns SET status = $2, finished_at = NULL WHERE id = $1`, [
      fwc.campaign,
      status,
    ]);
    await db.pool.query(
      `UPDATE firmware_campaign_meters SET state = 'pending', reason = NULL, finished_at = NULL WHERE campaign_id = $1`,
      [fwc.campaign],
    );
    await db.pool.query(
      `UPDATE firmware_campaigns SET status = 'rejected' WHERE id <> $1 AND status = 'awaiting_approval'`,
      [fwc.campaign],
    );
  },
};

/**
 * #9 outages: an open feeder incident of operator A, made on first use; `open` puts it back
 * to detected with no ETR (a transition or an ETR change needs one).
 */
const outages = {
  ofOpA: 0,
  async ensure(open = false): Promise<void> {
    if (!outages.ofOpA) {
      const r = await db.pool.query<{ id: string }>(
        `INSERT INTO outage_incidents (operator_id, area_id, feeder_id, kind, first_failure_at, sla_target_at)
         VALUES ($1, 'A', 'A-F1', 'feeder', now(), now() + interval '12 hours') RETURNING id`,
        [w.opA],
      );
      outages.ofOpA = Number(r.rows[0]!.id);
    }
    if (open)
      await db.pool.query(`UPDATE outage_incidents SET status = 'detected', etr = NULL WHERE id = $1`, [
        outages.ofOpA,
      ]);
  },
};

/**
 * #9 charges: a network tariff of operator A pricing area A from 2030-01-01, area A collected
 * (the real collectDay) over January 2030, and operator A's invoices for it (made on first use).
 */
const netCharges = {
  tariff: 0,
  invoiceOfSup1: 0,
  async ensure(): Promise<void> {
    if (netCharges.tariff) return;
    const t = await db.pool.query<{ id: number }>(
      `INSERT INTO network_tariffs (operator_id, code, name) VALUES ($1, 'AUTHZ-NT', 'Authz network') RETURNING id`,
      [w.opA],
    );
    netCharges.tariff = t.rows[0]!.id;
    await db.pool.query(
      `INSERT INTO network_tariff_versions (tariff_id, version, effective_from, bands, fixed_milli_per_day, vat_bp)
       VALUES ($1, 1, '2030-01-01', $2, $3, 2000)`,
      [netCharges.tariff, JSON.stringify(NET_VERSION.bands), NET_VERSION.fixedMilliPerDay],
    );
    await db.pool.query(
      `INSERT INTO network_tariff_areas (area_id, from_day, tariff_id) VALUES ('A', '2030-01-01', $1)`,
      [netCharges.tariff],
    );
    for (let d = 1; d <= 31; d++)
      await collectDay(db.pool, 'A', `2030-01-${String(d).padStart(2, '0')}`, 'manual');
  },
  async ensureInvoice(): Promise<void> {
    if (netCharges.invoiceOfSup1) return;
    await netCharges.ensure();
    await issueMonth(db.pool, w.opA, '2030-01');
    const r = await db.pool.query<{ id: string }>(
      `SELECT id FROM network_invoices WHERE operator_id = $1 AND supplier_id = $2 AND kind = 'invoice'`,
      [w.opA, w.sup1],
    );
    netCharges.invoiceOfSup1 = Number(r.rows[0]!.id);
  },
};

// #9 collection
/** A collected day of area A (operator A), made on first use. */
const COLLECTED_DAY = '2026-11-20';
const collection = {
  done: false,
  async ensure(): Promise<void> {
    if (collection.done) return;
    await db.pool.query(
      `INSERT INTO interval_readings (meter_id, ts, wh)
       SELECT $1, '2026-11-20T00:00Z'::timestamptz + i * interval '30 minutes', 100 FROM generate_series(0, 19) i`,
      [w.h1A.meterId],
    );
    await collectDay(db.pool, 'A', COLLECTED_DAY, 'cutoff');
    collection.done = true;
  },
};
// #9 collection end

/**
 * #8 cases and extracts: a tamper case and a finished (empty) extract of supplier 1, made on
 * first use (by `fresh`). Until then URLs name id 1: a refused role never reaches the lookup.
 */
const cases = {
  ofSup1: 0,
  extractOfSup1: 0,
  /** An unresolved case on h1A's meter; `open` puts it back to open (a status move needs one). */
  async ensure(open = false): Promise<void> {
    if (!cases.ofSup1) {
      const r = await db.pool.query<{ id: number }>(
        `INSERT INTO tamper_cases (meter_id, supplier_id) VALUES ($1, $2) RETURNING id`,
        [w.h1A.meterId, w.sup1],
      );
      cases.ofSup1 = r.rows[0]!.id;
    }
    if (open) await db.pool.query(`UPDATE tamper_cases SET status = 'open' WHERE id = $1`, [cases.ofSup1]);
  },
  async ensureExtract(): Promise<void> {
    if (cases.extractOfSup1) return;
    const r = await db.pool.query<{ id: number }>(
      `INSERT INTO extracts (supplier_id, month, status, meters_total, finished_at)
       VALUES ($1, '2026-03-01', 'done', 0, now()) RETURNING id`,
      [w.sup1],
    );
    cases.extractOfSup1 = r.rows[0]!.id;
  },
};

const key = (r: { method: string; url: string }) => `${r.method} ${r.url}`;
const METER_ROUTES = Object.entries(ROUTES).flatMap(([k, c]) => (c.kind === 'meter' ? [{ key: k, c }] : []));
// #10 B firmware images: the app's firmware key and folder; an image of supplier 1, and an
// open upload whose image is the JSON text of FW_PUT_BODY (what the matrix sends).
const FW_KEY = generateSigningKeyPair();
const FW_DIR = mkdtempSync(path.join(tmpdir(), 'kw-authz-fw-'));
const fw = {
  imageOfSup1: 0,
  /** A valid id nobody holds until openUpload: refused roles get 403 before it is looked up. */
  upload: '00000000-0000-4000-8000-000000000000',
  seq: 1,
  signed(image: Buffer) {
    const m = buildManifest(image, {
      version: `authz-${fw.seq}`,
      sequence: fw.seq++,
      hardwareClass: 'KW-AZ',
      blockSize: 256,
    });
    return { m, body: signManifest(m, privateKeyFromB64(FW_KEY.privateKey)) };
  },
  async ensureImage(): Promise<void> {
    if (fw.imageOfSup1) return;
    const { m, body } = fw.signed(Buffer.from('authz stored image'));
    const r = await db.pool.query<{ id: string }>(
      `INSERT INTO firmware_images (supplier_id, version, sequence, hardware_class, size, sha256, block_size,
                                    block_hashes, manifest, signature, storage_key)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
      [
        w.sup1,
        m.version,
        m.sequence,
        m.hardwareClass,
        m.size,
        m.sha256,
        m.blockSize,
        m.blockHashes,
        body.manifest,
        body.signature,
        `${m.sha256}.bin`,
      ],
    );
    fw.imageOfSup1 = Number(r.rows[0]!.id);
  },
  async openUpload(): Promise<void> {
    const res = await app.inject(
      as(cookies.sup1, {
        method: 'POST',
        url: '/api/firmware/uploads',
        headers: { 'content-type': 'application/json' },
        payload: fw.signed(Buffer.from(JSON.stringify(FW_PUT_BODY))).body,
      }),
    );
    fw.upload = (JSON.parse(res.body) as { uploadId: string }).uploadId;
  },
};
// #10 B end

const ROLE_ROUTES = Object.entries(ROUTES).flatMap(([k, c]) => (c.kind === 'roles' ? [{ key: k, c }] : []));

let db: TestDb;
let app: FastifyInstance;
let w: World;
const cookies: Record<keyof World['login'], string> = {} as Record<keyof World['login'], string>;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  // #10 B the firmware key and folder the firmware routes check against and write to.
  app = await testApi(db.pool, {
    config: {
      firmwarePublicKey: FW_KEY.publicKey,
      firmwareSigningKey: FW_KEY.privateKey,
      firmwareDir: FW_DIR,
    },
  });
  for (const [name, id] of Object.entries(w.login) as [keyof World['login'], string][]) {
    cookies[name] = await login(app, id);
  }
  const a = await db.pool.query<{ id: number }>(
    `INSERT INTO alerts (consumer_id, supplier_id, meter_id, type, severity, title, message, dedupe_key)
     VALUES ($1, $2, $3, 'credit_low', 'warning', 'Credit low', 'Your credit is low', '1:0') RETURNING id`,
    [w.h1A.consumerId, w.sup1, w.h1A.meterId],
  );
  alertOfH1A = a.rows[0]!.id;
  const t = await app.inject(
    as(cookies.h1A, {
      method: 'POST',
      url: '/api/top-ups',
      headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      payload: { meterSerial: w.h1A.meterSerial, amountMinor: 2000 },
    }),
  );
  topupOfH1A = (JSON.parse(t.body) as { id: string }).id;
  // Paid, as if its webhook had arrived, so that it can be refunded.
  await db.pool.query(`UPDATE topups SET status = 'paid', payment_ref = 'pi_sandbox_authz' WHERE id = $1`, [
    topupOfH1A,
  ]);
  const run = await db.pool.query<{ id: string }>(
    `INSERT INTO bill_runs (supplier_id, cycle_day, period_start, period_end, trigger)
     VALUES ($1, 7, '2026-02-07', '2026-03-07', 'staff') RETURNING id`,
    [w.sup1],
  );
  runOfSup1 = Number(run.rows[0]!.id);
  const reads = JSON.stringify([
    {
      day: '2026-02-07',
      at: '2026-02-07T00:00:00.000Z',
      importWh: 0,
      rate1Wh: 0,
      rate2Wh: 0,
      rate3Wh: 0,
      estimated: false,
      method: 'actual read at the boundary',
    },
    {
      day: '2026-03-07',
      at: '2026-03-07T00:00:00.000Z',
      importWh: 1000,
      rate1Wh: 1000,
      rate2Wh: 0,
      rate3Wh: 0,
      estimated: true,
      method: 'interpolated between the reads either side',
    },
  ]);
  const lines = JSON.stringify([
    {
      kind: 'energy',
      fromDay: '2026-02-07',
      toDay: '2026-03-07',
      tariff: 'Flat',
      version: 1,
      band: 'all',
      wh: 1000,
      rateMilli: 25000,
      vatBp: 500,
      amountMinor: 25,
    },
    { kind: 'vat', vatBp: 500, netMinor: 25, amountMinor: 1 },
  ]);
  const bill = await db.pool.query<{ id: string }>(
    `INSERT INTO bills (account_id, supplier_id, meter_id, period_start, period_end, currency, reads, lines, energy_minor,
                        standing_minor, vat_minor, total_minor, previous_balance_minor, payments_minor, other_minor,
                        amount_due_minor, due_date)
     VALUES ($1, $2, $3, '2026-02-07', '2026-03-07', 'GBP', $4, $5, 25, 0, 1, 26, 0, 0, 0, 26, '2026-03-21') RETURNING id`,
    [w.h1A.accountId, w.sup1, w.h1A.meterId, reads, lines],
  );
  billOfH1A = Number(bill.rows[0]!.id);
  const tt = await db.pool.query<{ id: number; supplier_id: number }>(
    `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, 'S1', 'Sup1 flat', 'flat'), ($2, 'S2', 'Sup2 flat', 'flat')
     RETURNING id, supplier_id`,
    [w.sup1, w.sup2],
  );
  tariffOfSup1 = tt.rows.find((r) => r.supplier_id === w.sup1)!.id;
  tariffOfSup2 = tt.rows.find((r) => r.supplier_id === w.sup2)!.id;
  await db.pool.query(
    `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, standing_milli_per_day, vat_bp)
     VALUES ($1, 1, '2030-01-01', 24500, 53350, 500), ($2, 1, '2030-01-01', 22000, 40000, 500)`,
    [tariffOfSup1, tariffOfSup2],
  );
  const r = await db.pool.query<{ id: number }>(
    `INSERT INTO tariff_change_requests (consumer_id, meter_id, to_tariff_id) VALUES ($1, $2, $3) RETURNING id::int`,
    [w.h1B.consumerId, w.h1B.meterId, tariffOfSup1],
  );
  requestOfH1B = r.rows[0]!.id;
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

function roleRequest(routeKey: string, c: Extract<RouteCase, { kind: 'roles' }>): InjectOptions {
  const [method, pattern] = routeKey.split(' ') as [InjectOptions['method'] & string, string];
  const url = c.url ? c.url() : pattern;
  const extra = c.headers?.() ?? {};
  return method === 'GET'
    ? { method, url, headers: extra }
    : {
        method,
        url,
        headers: { 'content-type': 'application/json', ...extra },
        ...(c.body ? { payload: c.body } : {}),
      };
}

function request(routeKey: string, c: Extract<RouteCase, { kind: 'meter' }>, serial: string): InjectOptions {
  const [method, pattern] = routeKey.split(' ') as [InjectOptions['method'] & string, string];
  const url = pattern.replace(':serial', encodeURIComponent(serial)) + (c.query ? `?${c.query}` : '');
  return c.body
    ? { method, url, headers: { 'content-type': 'application/json' }, payload: c.body }
    : { method, url };
}

async function commandCount(meterId: number): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM commands WHERE meter_id = $1',
    [meterId],
  );
  return rows[0]!.n;
}

/** A refusal must say nothing but the error. */
function expectOnlyError(
  res: { statusCode: number; body: string },
  status: number,
  code: string,
  serial: string,
): void {
  expect(res.statusCode).toBe(status);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body).toEqual({ error: { code, message: expect.any(String) as string } });
  expect(res.body).not.toContain(serial);
}

test('every registered route is in the matrix, and every matrix entry is a route', () => {
  // '/*' is the public portal shell (static files, no data); its API/docs 404s are tested in api-ops.
  const routes = registeredRoutes(app).filter((r) => !r.url.startsWith('/docs') && r.url !== '/*');
  const unknown = routes.map(key).filter((k) => !(k in ROUTES));
  expect(unknown, 'routes the authorisation matrix does not know how to call').toEqual([]);
  const registered = new Set(routes.map(key));
  expect(Object.keys(ROUTES).filter((k) => !registered.has(k))).toEqual([]);
  // Meter routes are recognised by their :serial parameter; the matrix must treat them so.
  for (const r of routes) if (r.url.includes(':serial')) expect(ROUTES[key(r)]?.kind).toBe('meter');
});

describe('without a session', () => {
  test.each(Object.entries(ROUTES).filter(([, c]) => c.kind !== 'public'))('%s -> 401', async (k, c) => {
    const opts =
      c.kind === 'meter'
        ? request(k, c, w.h1A.meterSerial)
        : c.kind === 'roles'
          ? roleRequest(k, c)
          : {
              method: k.split(' ')[0] as 'GET',
              url: k.split(' ')[1]!,
              headers: { 'content-type': 'application/json' },
            };
    const res = await app.inject(opts);
    expectOnlyError(res, 401, 'UNAUTHENTICATED', w.h1A.meterSerial);
  });

  test('a bogus session cookie -> 401', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/me',
      headers: { cookie: 'kw_session=not-a-token' },
    });
    expect(res.statusCode).toBe(401);
  });
});

describe.each(METER_ROUTES)('$key', ({ key: k, c }) => {
  const target = () => w.h1A; // supplier 1, area A (operator A), consumer C1A

  test('consumer B on consumer A meter -> 404, or 403 if consumers may never use it', async () => {
    const before = await commandCount(target().meterId);
    const res = await app.inject(as(cookies.h2A, request(k, c, target().meterSerial)));
    if (c.roles.includes('consumer')) expectOnlyError(res, 404, 'NOT_FOUND', target().meterSerial);
    else expectOnlyError(res, 403, 'FORBIDDEN', target().meterSerial);
    // Same supplier and area as the target, still not theirs.
    const res2 = await app.inject(as(cookies.h1B, request(k, c, target().meterSerial)));
    expect(res2.statusCode).toBe(res.statusCode);
    expect(await commandCount(target().meterId)).toBe(before);
  });

  test('supplier 2 staff on supplier 1 meter -> 404, or 403 if suppliers may never use it', async () => {
    const before = await commandCount(target().meterId);
    const res = await app.inject(as(cookies.sup2, request(k, c, target().meterSerial)));
    if (c.roles.includes('supplier')) expectOnlyError(res, 404, 'NOT_FOUND', target().meterSerial);
    else expectOnlyError(res, 403, 'FORBIDDEN', target().meterSerial);
    expect(await commandCount(target().meterId)).toBe(before);
  });

  test('operator of area B on an area A meter -> 404, or 403 if operators may never use it', async () => {
    const before = await commandCount(target().meterId);
    const res = await app.inject(as(cookies.opB, request(k, c, target().meterSerial)));
    if (c.roles.includes('operator')) expectOnlyError(res, 404, 'NOT_FOUND', target().meterSerial);
    else expectOnlyError(res, 403, 'FORBIDDEN', target().meterSerial);
    expect(await commandCount(target().meterId)).toBe(before);
  });

  test('roles that may never use the route -> 403 even on a meter they see', async () => {
    const seers: Record<Role, string> = {
      consumer: cookies.h1A,
      supplier: cookies.sup1,
      agent: cookies.agent1,
      operator: cookies.opA,
      admin: cookies.admin,
    };
    for (const role of ALL.filter((r) => !c.roles.includes(r))) {
      const before = await commandCount(target().meterId);
      const res = await app.inject(as(seers[role], request(k, c, target().meterSerial)));
      expect(res.statusCode, role).toBe(403);
      expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
      expect(await commandCount(target().meterId)).toBe(before);
    }
  });

  test('allowed roles on a meter they see -> success with data', async () => {
    const seers: Record<Role, string> = {
      consumer: cookies.h1A,
      supplier: cookies.sup1,
      agent: cookies.agent1,
      operator: cookies.opA,
      admin: cookies.admin,
    };
    for (const role of c.roles) {
      const res = await app.inject(as(seers[role], request(k, c, target().meterSerial)));
      expect(res.statusCode, `${role}: ${res.body}`).toBe(c.ok);
      const body = (
        String(res.headers['content-type']).startsWith('application/json')
          ? JSON.parse(res.body)
          : { text: res.body }
      ) as Record<string, unknown>;
      if (c.check) c.check(body);
      else if (c.ok === 202) expect(body.id).toEqual(expect.any(String));
      else expect(body.serial).toBe(target().meterSerial);
    }
  });

  test('a serial that does not exist -> 404 for an admin', async () => {
    if (!c.roles.includes('admin')) return;
    const res = await app.inject(as(cookies.admin, request(k, c, 'NOPE-404')));
    expectOnlyError(res, 404, 'NOT_FOUND', 'NOPE-404');
  });
});

describe.each(ROLE_ROUTES)('$key', ({ key: k, c }) => {
  const seers: () => Record<Role, string> = () => ({
    consumer: cookies.h1A,
    supplier: cookies.sup1,
    agent: cookies.agent1,
    operator: cookies.opA,
    admin: cookies.admin,
  });

  test('roles that may never use the route -> 403, saying nothing else', async () => {
    for (const role of ALL.filter((r) => !c.roles.includes(r))) {
      const res = await app.inject(as(seers()[role], roleRequest(k, c)));
      expectOnlyError(res, 403, 'FORBIDDEN', w.h1A.meterSerial);
    }
  });

  test('allowed roles -> success', async () => {
    for (const role of c.roles) {
      await c.fresh?.();
      const res = await app.inject(as(seers()[role], roleRequest(k, c)));
      expect(res.statusCode, `${role}: ${res.body}`).toBe(c.ok);
    }
  });
});

describe("consumer routes reach only the consumer's own things", () => {
  test("another household's serial on /api/home -> 404", async () => {
    for (const who of [cookies.h2A, cookies.h1B]) {
      const res = await app.inject(as(who, { method: 'GET', url: `/api/home?serial=${w.h1A.meterSerial}` }));
      expectOnlyError(res, 404, 'NOT_FOUND', w.h1A.meterSerial);
    }
  });

  test("another household's alert -> 404, and it stays unread", async () => {
    await db.pool.query('UPDATE alerts SET read_at = NULL WHERE id = $1', [alertOfH1A]);
    for (const who of [cookies.h2A, cookies.h1B]) {
      const res = await app.inject(
        as(who, {
          method: 'POST',
          url: `/api/alerts/${alertOfH1A}/read`,
          headers: { 'content-type': 'application/json' },
        }),
      );
      expectOnlyError(res, 404, 'NOT_FOUND', w.h1A.meterSerial);
    }
    const r = await db.pool.query<{ read_at: Date | null }>('SELECT read_at FROM alerts WHERE id = $1', [
      alertOfH1A,
    ]);
    expect(r.rows[0]!.read_at).toBeNull();
  });

  test("another household's top-up -> 404, and it cannot start one for another household's meter", async () => {
    for (const who of [cookies.h2A, cookies.h1B]) {
      const res = await app.inject(as(who, { method: 'GET', url: `/api/top-ups/${topupOfH1A}` }));
      expectOnlyError(res, 404, 'NOT_FOUND', w.h1A.meterSerial);
      const list = await app.inject(as(who, { method: 'GET', url: '/api/top-ups' }));
      expect(list.body).not.toContain(topupOfH1A);
      const start = await app.inject(
        as(who, {
          method: 'POST',
          url: '/api/top-ups',
          headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          payload: { meterSerial: w.h1A.meterSerial, amountMinor: 1000 },
        }),
      );
      expectOnlyError(start, 404, 'NOT_FOUND', w.h1A.meterSerial);
    }
    const staff2 = await app.inject(as(cookies.sup2, { method: 'GET', url: `/api/top-ups/${topupOfH1A}` }));
    expectOnlyError(staff2, 404, 'NOT_FOUND', w.h1A.meterSerial);
    const refund2 = await app.inject(
      as(cookies.sup2, {
        method: 'POST',
        url: `/api/top-ups/${topupOfH1A}/refund`,
        headers: { 'content-type': 'application/json' },
        payload: {},
      }),
    );
    expectOnlyError(refund2, 404, 'NOT_FOUND', w.h1A.meterSerial);
    const n = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM topups t JOIN meters m ON m.id = t.meter_id
        WHERE m.serial = $1 AND t.consumer_id <> $2`,
      [w.h1A.meterSerial, w.h1A.consumerId],
    );
    expect(n.rows[0]!.n).toBe(0);
  });

  test("alerts and outbox lists never show another supplier's or household's items", async () => {
    const h2 = await app.inject(as(cookies.h2A, { method: 'GET', url: '/api/alerts' }));
    expect((JSON.parse(h2.body) as { items: unknown[] }).items).toEqual([]);
    const s2 = await app.inject(as(cookies.sup2, { method: 'GET', url: '/api/alerts' }));
    expect((JSON.parse(s2.body) as { items: unknown[] }).items).toEqual([]);
    const s1 = await app.inject(as(cookies.sup1, { method: 'GET', url: '/api/alerts' }));
    expect((JSON.parse(s1.body) as { items: { id: number }[] }).items.map((i) => i.id)).toContain(alertOfH1A);
  });
});

describe("money routes reach only the actor's own accounts, bills and runs", () => {
  const get = (who: string, url: string) => app.inject(as(who, { method: 'GET', url }));

  test("another household's or supplier's account ledger and bill PDF -> 404; operators -> 403", async () => {
    for (const url of [`/api/accounts/${w.h1A.accountId}/ledger`, `/api/bills/${billOfH1A}/pdf`]) {
      for (const who of [cookies.h2A, cookies.h1B, cookies.sup2]) {
        expectOnlyError(await get(who, url), 404, 'NOT_FOUND', w.h1A.meterSerial);
      }
      expectOnlyError(await get(cookies.opA, url), 403, 'FORBIDDEN', w.h1A.meterSerial);
    }
    expectOnlyError(await get(cookies.admin, '/api/bills/999999/pdf'), 404, 'NOT_FOUND', w.h1A.meterSerial);
  });

  test("another supplier's bill run -> 404; households -> 403", async () => {
    expectOnlyError(
      await get(cookies.sup2, `/api/bill-runs/${runOfSup1}`),
      404,
      'NOT_FOUND',
      w.h1A.meterSerial,
    );
    expectOnlyError(
      await get(cookies.h1A, `/api/bill-runs/${runOfSup1}`),
      403,
      'FORBIDDEN',
      w.h1A.meterSerial,
    );
  });

  test('account, bill and run lists show only what is in scope', async () => {
    const ids = async (who: string, url: string) =>
      (JSON.parse((await get(who, url)).body) as { items: { id: number }[] }).items.map((i) => i.id).sort();
    expect(await ids(cookies.h1A, '/api/accounts')).toEqual([w.h1A.accountId]);
    expect(await ids(cookies.h2A, '/api/accounts')).toEqual([w.h2A.accountId]);
    expect(await ids(cookies.sup1, '/api/accounts')).toEqual([w.h1A.accountId, w.h1B.accountId].sort());
    expect(await ids(cookies.sup1, '/api/accounts?q=C1B')).toEqual([w.h1B.accountId]);
    expect(await ids(cookies.admin, '/api/accounts')).toHaveLength(4);
    expect(await ids(cookies.h1A, '/api/bills')).toEqual([billOfH1A]);
    expect(await ids(cookies.h1B, '/api/bills')).toEqual([]);
    expect(await ids(cookies.sup2, '/api/bills')).toEqual([]);
    expect(await ids(cookies.sup1, '/api/bills')).toEqual([billOfH1A]);
    expect(await ids(cookies.sup2, '/api/bill-runs')).not.toContain(runOfSup1);
    expect(await ids(cookies.sup1, '/api/bill-runs')).toContain(runOfSup1);
  });

  test('a bill run started by supplier 2 covers supplier 2 accounts only', async () => {
    const res = await app.inject(
      as(cookies.sup2, {
        method: 'POST',
        url: '/api/bill-runs',
        headers: { 'content-type': 'application/json' },
        payload: { periodStart: '2026-04-07' },
      }),
    );
    expect(res.statusCode).toBe(202);
    const run = JSON.parse(res.body) as { id: number; total: number };
    const items = await db.pool.query<{ account_id: string }>(
      'SELECT account_id FROM bill_run_items WHERE run_id = $1',
      [run.id],
    );
    expect(items.rows.map((r) => Number(r.account_id))).toEqual([w.h2A.accountId]);
    const bad = await app.inject(
      as(cookies.sup2, {
        method: 'POST',
        url: '/api/bill-runs',
        headers: { 'content-type': 'application/json' },
        payload: { periodStart: '2026-04-29' },
      }),
    );
    expect(bad.statusCode).toBe(400);
  });
});

describe('tariffs reach only their own supplier and household', () => {
  const post = (cookie: string, url: string, payload: Record<string, unknown>) =>
    app.inject(as(cookie, { method: 'POST', url, headers: { 'content-type': 'application/json' }, payload }));

  test("another supplier's tariff, meter or request -> 404, and nothing is queued or decided", async () => {
    const before = await commandCount(w.h1A.meterId);
    expectOnlyError(
      await post(cookies.sup2, `/api/tariffs/${tariffOfSup1}/versions`, {
        ...VERSION,
        effectiveFrom: '2032-01-01',
      }),
      404,
      'NOT_FOUND',
      w.h1A.meterSerial,
    );
    expectOnlyError(
      await post(cookies.sup2, `/api/tariffs/${tariffOfSup2}/assign`, {
        serials: ['KW1A'],
        from: '2030-02-01',
      }),
      404,
      'NOT_FOUND',
      w.h1A.meterSerial,
    );
    expectOnlyError(
      await post(cookies.sup2, `/api/tariffs/${tariffOfSup1}/assign`, {
        serials: ['KW2A'],
        from: '2030-02-01',
      }),
      404,
      'NOT_FOUND',
      w.h1A.meterSerial,
    );
    const put = await app.inject(
      as(cookies.sup1, {
        method: 'PUT',
        url: '/api/meters/KW1A/tariff',
        headers: { 'content-type': 'application/json' },
        payload: { tariffId: tariffOfSup2, from: '2030-02-01' },
      }),
    );
    expectOnlyError(put, 404, 'NOT_FOUND', w.h1A.meterSerial);
    const r = await db.pool.query<{ id: number }>(
      `INSERT INTO tariff_change_requests (consumer_id, meter_id, to_tariff_id) VALUES ($1, $2, $3) RETURNING id::int`,
      [w.h2A.consumerId, w.h2A.meterId, tariffOfSup2],
    );
    expectOnlyError(
      await post(cookies.sup1, `/api/tariff-change-requests/${r.rows[0]!.id}/decision`, {
        decision: 'approve',
      }),
      404,
      'NOT_FOUND',
      w.h1A.meterSerial,
    );
    const st = await db.pool.query<{ status: string }>(
      'SELECT status FROM tariff_change_requests WHERE id = $1',
      [r.rows[0]!.id],
    );
    expect(st.rows[0]!.status).toBe('requested');
    expect(await commandCount(w.h1A.meterId)).toBe(before);
  });

  test("a household cannot see another's tariff view, ask for another's meter, or for another supplier's tariff", async () => {
    const g = await app.inject(
      as(cookies.h2A, { method: 'GET', url: `/api/tariffs?serial=${w.h1A.meterSerial}` }),
    );
    expectOnlyError(g, 404, 'NOT_FOUND', w.h1A.meterSerial);
    expectOnlyError(
      await post(cookies.h2A, '/api/tariff-change-requests', { serial: 'KW1A', toTariffId: tariffOfSup1 }),
      404,
      'NOT_FOUND',
      w.h1A.meterSerial,
    );
    expectOnlyError(
      await post(cookies.h1B, '/api/tariff-change-requests', { serial: 'KW1B', toTariffId: tariffOfSup2 }),
      404,
      'NOT_FOUND',
      w.h1A.meterSerial,
    );
  });

  test('lists show only their own', async () => {
    const s2 = JSON.parse(
      (await app.inject(as(cookies.sup2, { method: 'GET', url: '/api/tariffs' }))).body,
    ) as {
      items: { id: number }[];
    };
    expect(s2.items.map((t) => t.id)).toEqual([tariffOfSup2]);
    const h2 = JSON.parse(
      (await app.inject(as(cookies.h2A, { method: 'GET', url: '/api/tariffs' }))).body,
    ) as {
      items: { id: number }[];
      meter: { serial: string };
    };
    expect(h2.items.map((t) => t.id)).toEqual([tariffOfSup2]);
    expect(h2.meter.serial).toBe('KW2A');
    const r2 = JSON.parse(
      (await app.inject(as(cookies.h2B, { method: 'GET', url: '/api/tariff-change-requests' }))).body,
    ) as { items: unknown[] };
    expect(r2.items).toEqual([]);
    const rs = JSON.parse(
      (await app.inject(as(cookies.sup2, { method: 'GET', url: '/api/tariff-change-requests' }))).body,
    ) as { items: { serial: string }[] };
    expect(rs.items.every((i) => i.serial.startsWith('KW2'))).toBe(true);
  });
});

describe('meter list is scoped', () => {
  const cases: [keyof World['login'], string[]][] = [
    ['h1A', ['KW1A']],
    ['h2B', ['KW2B']],
    ['sup1', ['KW1A', 'KW1B']],
    ['sup2', ['KW2A', 'KW2B']],
    ['opA', ['KW1A', 'KW2A']],
    ['opB', ['KW1B', 'KW2B']],
    ['admin', ['KW1A', 'KW1B', 'KW2A', 'KW2B']],
  ];
  test.each(cases)('%s sees %j', async (who, serials) => {
    const res = await app.inject(as(cookies[who], { method: 'GET', url: '/api/meters' }));
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body) as { items: { serial: string }[]; nextCursor: string | null };
    expect(body.items.map((m) => m.serial)).toEqual(serials);
    expect(body.nextCursor).toBeNull();
  });

  test('paging with limit and cursor walks every visible meter once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const url: string = `/api/meters?limit=1${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await app.inject(as(cookies.admin, { method: 'GET', url }));
      expect(res.statusCode).toBe(200);
      const body = JSON.parse(res.body) as { items: { serial: string }[]; nextCursor: string | null };
      seen.push(...body.items.map((m) => m.serial));
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(['KW1A', 'KW1B', 'KW2A', 'KW2B']);
  });

  test('a cursor does not widen the scope', async () => {
    const cursor = Buffer.from('KW0').toString('base64url');
    const res = await app.inject(as(cookies.sup2, { method: 'GET', url: `/api/meters?cursor=${cursor}` }));
    expect((JSON.parse(res.body) as { items: { serial: string }[] }).items.map((m) => m.serial)).toEqual([
      'KW2A',
      'KW2B',
    ]);
  });
});

describe('commands', () => {
  test('supplier 1 issues supply.off: 202, a pending signed command, an audit row, listed with status', async () => {
    const res = await app.inject(
      as(cookies.sup1, {
        method: 'POST',
        url: `/api/meters/${w.h1B.meterSerial}/commands`,
        headers: { 'content-type': 'application/json' },
        payload: { type: 'supply.off', reason: 'tamper' },
      }),
    );
    expect(res.statusCode).toBe(202);
    const { id } = JSON.parse(res.body) as { id: string };
    const row = await db.pool.query<{ status: string; type: string; created_by: number }>(
      'SELECT status, type, created_by FROM commands WHERE id = $1',
      [id],
    );
    expect(row.rows[0]).toMatchObject({ status: 'queued', type: 'supply.off' });
    const auditRows = await db.pool.query<{ target: string; detail: { commandId: string } }>(
      "SELECT target, detail FROM audit_log WHERE action = 'meter.command' AND detail->>'commandId' = $1",
      [id],
    );
    expect(auditRows.rows[0]?.target).toBe(w.h1B.meterSerial);

    const list = await app.inject(
      as(cookies.opB, { method: 'GET', url: `/api/meters/${w.h1B.meterSerial}/commands` }),
    );
    expect(list.statusCode).toBe(200);
    const items = (JSON.parse(list.body) as { items: { id: string; status: string; type: string }[] }).items;
    expect(items.find((i) => i.id === id)).toMatchObject({ status: 'queued', type: 'supply.off' });
  });

  test('operator of the area may not command the meter (403), and nothing is queued', async () => {
    const before = await commandCount(w.h1B.meterId);
    const res = await app.inject(
      as(cookies.opB, {
        method: 'POST',
        url: `/api/meters/${w.h1B.meterSerial}/commands`,
        headers: { 'content-type': 'application/json' },
        payload: { type: 'supply.on' },
      }),
    );
    expect(res.statusCode).toBe(403);
    expect(await commandCount(w.h1B.meterId)).toBe(before);
  });
});

// #9 collection
describe('#9 collection: an operator reaches its own areas only', () => {
  test('operator of area B on area A -> 404 on every collection route, and nothing is collected', async () => {
    await collection.ensure();
    const before = (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM collection_runs'))
      .rows[0]!.n;
    for (const [k, c] of Object.entries(ROUTES)) {
      if (!k.includes('/api/collection/areas/:areaId') || c.kind !== 'roles') continue;
      const res = await app.inject(as(cookies.opB, roleRequest(k, c)));
      expectOnlyError(res, 404, 'NOT_FOUND', w.h1A.meterSerial);
    }
    const list = await app.inject(as(cookies.opB, { method: 'GET', url: '/api/collection/areas' }));
    const ids = (JSON.parse(list.body) as { areas: { areaId: string }[] }).areas.map((a) => a.areaId);
    expect(ids).toContain('B');
    expect(ids).not.toContain('A');
    const after = (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM collection_runs'))
      .rows[0]!.n;
    expect(after).toBe(before);
  });
});
// #9 collection end
// #9 charges
describe("network charges reach only the operator's and the supplier's own", () => {
  test("another operator's tariff and another supplier's or operator's invoice -> 404, and nothing changes", async () => {
    await netCharges.ensureInvoice();
    for (const [who, url, payload] of [
      [
        cookies.opB,
        `/api/network-tariffs/${netCharges.tariff}/versions`,
        { ...NET_VERSION, effectiveFrom: '2030-06-01' },
      ],
      [
        cookies.opB,
        `/api/network-tariffs/${netCharges.tariff}/areas`,
        { areaId: 'B', fromDay: '2030-06-01' },
      ],
    ] as const) {
      const res = await app.inject(
        as(who, { method: 'POST', url, headers: { 'content-type': 'application/json' }, payload }),
      );
      expectOnlyError(res, 404, 'NOT_FOUND', w.h1A.meterSerial);
    }
    for (const who of [cookies.sup2, cookies.opB]) {
      for (const doc of ['pdf', 'lines.csv']) {
        const res = await app.inject(
          as(who, { method: 'GET', url: `/api/network-invoices/${netCharges.invoiceOfSup1}/${doc}` }),
        );
        expectOnlyError(res, 404, 'NOT_FOUND', w.h1A.meterSerial);
      }
    }
    const list = await app.inject(as(cookies.sup2, { method: 'GET', url: '/api/network-invoices' }));
    const items = (JSON.parse(list.body) as { items: { supplierId: number }[] }).items;
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((i) => i.supplierId === w.sup2)).toBe(true);
    const opB = await app.inject(as(cookies.opB, { method: 'GET', url: '/api/network-invoices' }));
    expect((JSON.parse(opB.body) as { items: unknown[] }).items).toEqual([]);
    const pay = await app.inject(
      as(cookies.opB, {
        method: 'POST',
        url: '/api/network-invoices/payments',
        headers: { 'content-type': 'application/json' },
        payload: {
          supplierId: w.sup1,
          amountMinor: 5,
          reference: 'B-ON-A',
          invoiceId: netCharges.invoiceOfSup1,
        },
      }),
    );
    expectOnlyError(pay, 404, 'NOT_FOUND', w.h1A.meterSerial);
    const v = await db.pool.query(
      'SELECT 1 FROM network_tariff_versions WHERE tariff_id = $1 AND effective_from = $2',
      [netCharges.tariff, '2030-06-01'],
    );
    expect(v.rowCount).toBe(0);
  });
});
// #9 charges end
// #10 C
describe("#10 C firmware campaigns reach only the supplier's own", () => {
  test("supplier 2 on supplier 1's campaign and image -> 404, and nothing changes", async () => {
    await fwc.ensure('running');
    const json = { 'content-type': 'application/json' };
    for (const url of [
      `/api/firmware/campaigns/${fwc.campaign}`,
      `/api/firmware/campaigns/${fwc.campaign}/meters`,
    ]) {
      const res = await app.inject(as(cookies.sup2, { method: 'GET', url }));
      expectOnlyError(res, 404, 'NOT_FOUND', w.h1B.meterSerial);
    }
    for (const action of ['pause', 'resume', 'cancel']) {
      const res = await app.inject(
        as(cookies.sup2, {
          method: 'POST',
          url: `/api/firmware/campaigns/${fwc.campaign}/${action}`,
          headers: json,
          payload: {},
        }),
      );
      expectOnlyError(res, 404, 'NOT_FOUND', w.h1B.meterSerial);
    }
    const target = { serials: ['KW2A'] };
    const create = {
      name: 'Not mine',
      imageId: fwc.image,
      target,
      canaryCount: 1,
      waveSize: 1,
      failureThresholdPct: 10,
      windowFrom: '01:00',
      windowTo: '03:00',
      reason: 'x',
    };
    for (const [url, payload] of [
      ['/api/firmware/campaigns/preview', { imageId: fwc.image, target }],
      ['/api/firmware/campaigns', create],
    ] as const) {
      const res = await app.inject(as(cookies.sup2, { method: 'POST', url, headers: json, payload }));
      expectOnlyError(res, 404, 'NOT_FOUND', w.h1B.meterSerial);
    }
    const list = await app.inject(as(cookies.sup2, { method: 'GET', url: '/api/firmware/campaigns' }));
    expect((JSON.parse(list.body) as { items: unknown[] }).items).toEqual([]);
    const st = await db.pool.query<{ status: string }>(
      'SELECT status FROM firmware_campaigns WHERE id = $1',
      [fwc.campaign],
    );
    expect(st.rows[0]!.status).toBe('running');
    expect(
      (await db.pool.query(`SELECT 1 FROM firmware_campaigns WHERE supplier_id = $1`, [w.sup2])).rowCount,
    ).toBe(0);
  });
});
// #10 C end
