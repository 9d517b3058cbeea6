import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { IncidentDetail, IncidentsResponse, SlaResponse } from '@kilowire/contract';
import { applyPowerEvent, sweepOutages } from '../src/outages/detect.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';

/**
 * The operator's console over incidents: its own area only, the transitions and their 409s,
 * the ETR told to households once per change, the SLA clock flagged once, the dashboard,
 * and the settings. Incidents come from the detector's own entry point (the power events a
 * gateway would hand it); the end-to-end path with real meters is outages.test.ts.
 */
let db: TestDb;
let app: FastifyInstance;
let w: World;
const cookie: Record<string, string> = {};
let incident = 0;
let firstFailure = 0;

const call = async (who: string, o: InjectOptions) => {
  const res = await app.inject(
    as(
      cookie[who],
      o.payload ? { ...o, headers: { 'content-type': 'application/json', ...(o.headers ?? {}) } } : o,
    ),
  );
  return {
    status: res.statusCode,
    body: res.body ? (JSON.parse(res.body) as Record<string, unknown>) : {},
    raw: res.body,
  };
};

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  for (const [name, id] of Object.entries(w.login)) cookie[name] = await login(app, id);
  // Both area-A households on feeder A-F1, with postcodes; two meters off make an incident.
  await db.pool.query(`UPDATE meters SET feeder_id = 'A-F1' WHERE area_id = 'A'`);
  await db.pool.query(
    `UPDATE consumers c SET postcode = CASE WHEN c.id = $1 THEN 'ab1 2cd' ELSE 'AB1 9ZZ' END
      WHERE c.id IN ($1, $2)`,
    [w.h1A.consumerId, w.h2A.consumerId],
  );
  await db.pool.query(
    `UPDATE network_settings SET outage_min_meters = 2, sla_feeder_min = 10, sla_at_risk_pct = 50,
            oncall_mobiles = '{+447700900002}' WHERE operator_id = $1`,
    [w.opA],
  );
  firstFailure = Math.floor(Date.now() / 1000) - 5;
  expect(
    await applyPowerEvent(db.pool, {
      meterId: w.h1A.meterId,
      seq: 10,
      idx: 0,
      code: 'power.fail',
      t: firstFailure,
    }),
  ).toBe('off');
  expect(
    await applyPowerEvent(db.pool, {
      meterId: w.h2A.meterId,
      seq: 4,
      idx: 0,
      code: 'power.fail',
      t: firstFailure + 2,
    }),
  ).toBe('opened');
  // The same event again (a redelivered domain event) changes nothing.
  expect(
    await applyPowerEvent(db.pool, {
      meterId: w.h2A.meterId,
      seq: 4,
      idx: 0,
      code: 'power.fail',
      t: firstFailure + 2,
    }),
  ).toBe('already applied');
  incident = Number(
    (await db.pool.query<{ id: string }>(`SELECT id FROM outage_incidents WHERE feeder_id = 'A-F1'`)).rows[0]!
      .id,
  );
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('reading incidents', () => {
  it('shows the operator its incident, households as a count and postcodes, never a name', async () => {
    const list = await call('opA', { method: 'GET', url: '/api/incidents' });
    expect(list.status).toBe(200);
    expect((list.body as unknown as IncidentsResponse).items.map((i) => i.id)).toEqual([incident]);
    const d = await call('opA', { method: 'GET', url: `/api/incidents/${incident}` });
    expect(d.status).toBe(200);
    const detail = d.body as unknown as IncidentDetail;
    expect(detail.households).toEqual({ count: 2, postcodes: ['AB1 2CD', 'AB1 9ZZ'] });
    expect(detail.meterList.map((m) => m.serial).sort()).toEqual(
      [w.h1A.meterSerial, w.h2A.meterSerial].sort(),
    );
    expect(new Date(detail.firstFailureAt).getTime()).toBe(firstFailure * 1000);
    expect(d.raw).not.toContain('Household C1A');
    // The household's home shows the power cut; another area's household has none.
    const home = await call('h1A', { method: 'GET', url: '/api/home' });
    expect(home.body.outage).toEqual({ since: new Date(firstFailure * 1000).toISOString(), etr: null });
    expect((await call('h1B', { method: 'GET', url: '/api/home' })).body.outage).toBeNull();
    expect(d.raw).not.toContain('C1A"');
    const feeders = await call('opA', { method: 'GET', url: '/api/network/feeders' });
    expect(feeders.body).toMatchObject({
      items: [{ id: 'A-F1', meters: 2, metersOff: 2, incidentId: incident }],
      counters: { feeders: 1, feedersOut: 1, metersOff: 2, openIncidents: 1 },
    });
  });

  it("gives another area's operator nothing: empty lists, 404 on the incident and on every action", async () => {
    expect((await call('opB', { method: 'GET', url: '/api/incidents?state=all' })).body).toEqual({
      items: [],
      nextCursor: null,
    });
    const feeders = await call('opB', { method: 'GET', url: '/api/network/feeders' });
    expect((feeders.body as { items: { id: string }[] }).items.map((f) => f.id)).toEqual(['B-F1']);
    expect((await call('opB', { method: 'GET', url: `/api/incidents/${incident}` })).status).toBe(404);
    for (const o of [
      { method: 'POST', url: `/api/incidents/${incident}/status`, payload: { to: 'acknowledged' } },
      { method: 'PUT', url: `/api/incidents/${incident}/etr`, payload: { etr: '2030-01-01T10:00:00Z' } },
      { method: 'POST', url: `/api/incidents/${incident}/notes`, payload: { text: 'mine now' } },
    ] as InjectOptions[]) {
      const r = await call('opB', o);
      expect(r.status).toBe(404);
      expect(r.raw).not.toContain('A-F1');
    }
    const sla = (await call('opB', { method: 'GET', url: '/api/network/sla?months=1' }))
      .body as unknown as SlaResponse;
    expect(sla.months[0]!.incidents).toBe(0);
  });

  it('lets an admin read but not work an incident, and refuses suppliers and households', async () => {
    expect((await call('admin', { method: 'GET', url: `/api/incidents/${incident}` })).status).toBe(200);
    expect(
      (
        await call('admin', {
          method: 'POST',
          url: `/api/incidents/${incident}/status`,
          payload: { to: 'acknowledged' },
        })
      ).status,
    ).toBe(403);
    for (const who of ['sup1', 'agent1', 'h1A'])
      expect((await call(who, { method: 'GET', url: `/api/incidents/${incident}` })).status).toBe(403);
  });
});

describe('working an incident', () => {
  it('moves through acknowledge, dispatch, ETR, restore and close, with 409 on an illegal move', async () => {
    const close = await call('opA', {
      method: 'POST',
      url: `/api/incidents/${incident}/status`,
      payload: { to: 'closed' },
    });
    expect(close.status).toBe(409);
    expect(close.body).toMatchObject({ error: { code: 'CONFLICT' } });
    expect(
      (
        await call('opA', {
          method: 'POST',
          url: `/api/incidents/${incident}/status`,
          payload: { to: 'acknowledged' },
        })
      ).body,
    ).toMatchObject({ status: 'acknowledged' });
    expect(
      (
        await call('opA', {
          method: 'POST',
          url: `/api/incidents/${incident}/status`,
          payload: { to: 'acknowledged' },
        })
      ).status,
    ).toBe(409);

    // The ETR: each household still off is told once per version; the same ETR twice is one version.
    const etr = '2030-01-01T10:00:00.000Z';
    for (let i = 0; i < 2; i++)
      expect(
        (await call('opA', { method: 'PUT', url: `/api/incidents/${incident}/etr`, payload: { etr } })).body,
      ).toMatchObject({
        etr,
        etrVersion: 1,
      });
    await call('opA', {
      method: 'PUT',
      url: `/api/incidents/${incident}/etr`,
      payload: { etr: '2030-01-01T12:00:00Z' },
    });
    const etrAlerts = await db.pool.query<{ meter_id: number; dedupe_key: string }>(
      `SELECT meter_id, dedupe_key FROM alerts WHERE type = 'outage' AND dedupe_key LIKE $1 ORDER BY dedupe_key, meter_id`,
      [`incident:${incident}:etr:%`],
    );
    expect(etrAlerts.rows.map((r) => r.dedupe_key)).toEqual([
      `incident:${incident}:etr:1`,
      `incident:${incident}:etr:1`,
      `incident:${incident}:etr:2`,
      `incident:${incident}:etr:2`,
    ]);

    // One household's power comes back: it is told; the incident waits for the other.
    expect(
      await applyPowerEvent(db.pool, {
        meterId: w.h1A.meterId,
        seq: 11,
        idx: 0,
        code: 'power.restored',
        t: Math.floor(Date.now() / 1000),
      }),
    ).toBe('restored');
    expect(
      (
        await call('opA', {
          method: 'POST',
          url: `/api/incidents/${incident}/status`,
          payload: { to: 'dispatched', note: 'Crew 4' },
        })
      ).body,
    ).toMatchObject({ status: 'dispatched', metersOff: 1 });
    const restored = await call('opA', {
      method: 'POST',
      url: `/api/incidents/${incident}/status`,
      payload: { to: 'restored' },
    });
    const d = restored.body as unknown as IncidentDetail;
    expect(d.status).toBe('restored');
    // The meter that never reported power is a straggler, followed up as a single incident.
    expect(d.meterList.filter((m) => m.straggler).map((m) => m.serial)).toEqual([w.h2A.meterSerial]);
    expect(d.followUps).toHaveLength(1);
    expect(
      (await call('opA', { method: 'PUT', url: `/api/incidents/${incident}/etr`, payload: { etr } })).status,
    ).toBe(409);
    const closed = await call('opA', {
      method: 'POST',
      url: `/api/incidents/${incident}/status`,
      payload: { to: 'closed' },
    });
    expect(closed.body).toMatchObject({ status: 'closed' });
    const kinds = (closed.body as unknown as IncidentDetail).timeline.map((e) => e.kind);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'detected',
        'acknowledged',
        'etr_set',
        'dispatched',
        'restored',
        'stragglers',
        'closed',
      ]),
    );
    expect(
      (closed.body as unknown as IncidentDetail).timeline.find((e) => e.kind === 'acknowledged')!.actor,
    ).not.toBeNull();
    const audit = await db.pool.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE target = $1 AND action LIKE 'incident.%' ORDER BY id`,
      [String(incident)],
    );
    expect(audit.rows.map((a) => a.action)).toEqual([
      'incident.acknowledged',
      'incident.etr',
      'incident.etr',
      'incident.dispatched',
      'incident.restored',
      'incident.closed',
    ]);
    // No command went to any meter.
    expect((await db.pool.query('SELECT 1 FROM commands')).rowCount).toBe(0);
  });
});

describe('the SLA clock', () => {
  it('flags an incident at risk and in breach once each, paging the on-call mobile', async () => {
    // A fresh incident on the straggler's single follow-up: its target is sla_single_min.
    await db.pool.query(`UPDATE network_settings SET sla_single_min = 2 WHERE operator_id = $1`, [w.opA]);
    const single = (
      await db.pool.query<{ id: string; first_failure_at: Date; sla_target_at: Date }>(
        `SELECT id, first_failure_at, sla_target_at FROM outage_incidents WHERE kind = 'single' AND follows_id = $1`,
        [incident],
      )
    ).rows[0]!;
    // Its target came from the settings when it opened (24 h); shorten it as if opened under 2 min.
    await db.pool.query(
      `UPDATE outage_incidents SET sla_target_at = first_failure_at + interval '2 minutes' WHERE id = $1`,
      [single.id],
    );
    const t0 = single.first_failure_at.getTime();
    const at = (s: number) => new Date(t0 + s * 1000);
    expect((await sweepOutages(db.pool, { now: at(30) })).atRisk).toBe(0);
    expect((await sweepOutages(db.pool, { now: at(61) })).atRisk).toBe(1);
    expect((await sweepOutages(db.pool, { now: at(62) })).atRisk).toBe(0);
    expect((await sweepOutages(db.pool, { now: at(121) })).breached).toBe(1);
    expect((await sweepOutages(db.pool, { now: at(122) })).breached).toBe(0);
    const alerts = await db.pool.query<{ type: string; id: number }>(
      `SELECT type, id FROM alerts WHERE operator_id = $1 AND dedupe_key = $2 ORDER BY type`,
      [w.opA, `incident:${single.id}`],
    );
    expect(alerts.rows.map((a) => a.type)).toEqual(['sla_at_risk', 'sla_breached']);
    const sms = await db.pool.query<{ recipient: string }>(
      `SELECT recipient FROM deliveries WHERE alert_id = $1 AND channel = 'sms'`,
      [alerts.rows[1]!.id],
    );
    expect(sms.rows).toEqual([{ recipient: '+447700900002' }]);

    const month = new Date(t0).toISOString().slice(0, 7);
    const sla = (await call('opA', { method: 'GET', url: `/api/network/sla?month=${month}&months=1` }))
      .body as unknown as SlaResponse;
    expect(sla.months).toHaveLength(1);
    expect(sla.months[0]).toMatchObject({
      month,
      incidents: 2,
      feeder: 1,
      single: 1,
      breaches: 1,
      atRisk: 1,
      restored: 1,
    });
    expect(sla.months[0]!.detectP95S).toBeGreaterThanOrEqual(0);
  });
});

describe('outage settings', () => {
  it('stores rules, targets and on-call contacts, normalising mobiles and refusing bad input', async () => {
    const body = {
      outageMinMeters: 5,
      outageMinSharePct: 12.5,
      outageWindowS: 90,
      silentAfterS: 1800,
      outageRestoreGraceS: 600,
      outageAutoCloseH: 12,
      slaFeederMin: 360,
      slaSingleMin: 720,
      slaAtRiskPct: 80,
      oncallEmails: ['Duty@OpA.test'],
      oncallMobiles: ['07700 900123'],
    };
    const put = await call('opA', { method: 'PUT', url: '/api/network/outage-settings', payload: body });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      ...body,
      oncallEmails: ['duty@opa.test'],
      oncallMobiles: ['+447700900123'],
    });
    expect((await call('opA', { method: 'GET', url: '/api/network/outage-settings' })).body).toMatchObject({
      outageMinMeters: 5,
    });
    const bad = await call('opA', {
      method: 'PUT',
      url: '/api/network/outage-settings',
      payload: { ...body, oncallMobiles: ['call me'], oncallEmails: ['nope'] },
    });
    expect(bad.status).toBe(400);
    // Operator B's settings are untouched; admins do not edit an operator's settings.
    expect((await call('opB', { method: 'GET', url: '/api/network/outage-settings' })).body).toMatchObject({
      outageMinMeters: 3,
    });
    expect(
      (await call('admin', { method: 'PUT', url: '/api/network/outage-settings', payload: body })).status,
    ).toBe(403);
  });
});

describe('single outages and closing', () => {
  it('makes a meter off alone past the window a single incident once, but never a disconnected one', async () => {
    // Area B: h1B off alone; h2B remotely disconnected and off too.
    await db.pool.query(`UPDATE meters SET relay = 'disconnected' WHERE id = $1`, [w.h2B.meterId]);
    const t = Math.floor(Date.now() / 1000) - 5;
    expect(
      await applyPowerEvent(db.pool, { meterId: w.h1B.meterId, seq: 3, idx: 0, code: 'power.fail', t }),
    ).toBe('off (no feeder)');
    expect(
      await applyPowerEvent(db.pool, { meterId: w.h2B.meterId, seq: 3, idx: 0, code: 'power.fail', t }),
    ).toBe('not counted');
    // Within the window nothing; past it (120 s by default) one single incident, once.
    expect((await sweepOutages(db.pool, { now: new Date((t + 60) * 1000) })).singles).toBe(0);
    expect((await sweepOutages(db.pool, { now: new Date((t + 130) * 1000) })).singles).toBe(1);
    expect((await sweepOutages(db.pool, { now: new Date((t + 140) * 1000) })).singles).toBe(0);
    const singles = await db.pool.query<{ id: string; meter_id: number; operator_id: number }>(
      `SELECT id, meter_id, operator_id FROM outage_incidents WHERE area_id = 'B'`,
    );
    expect(singles.rows.map((r) => [r.meter_id, r.operator_id])).toEqual([[w.h1B.meterId, w.opB]]);
    const id = singles.rows[0]!.id;
    // Operator B is paged once; the household told once.
    expect(
      (
        await db.pool.query(`SELECT 1 FROM alerts WHERE operator_id = $1 AND type = 'incident_opened'`, [
          w.opB,
        ])
      ).rowCount,
    ).toBe(1);
    expect(
      (await db.pool.query(`SELECT 1 FROM alerts WHERE meter_id = $1 AND type = 'outage'`, [w.h1B.meterId]))
        .rowCount,
    ).toBe(1);

    // Power back: restored, the household told; 24 h later (the default) it closes itself.
    expect(
      await applyPowerEvent(db.pool, {
        meterId: w.h1B.meterId,
        seq: 4,
        idx: 0,
        code: 'power.restored_long',
        t: t + 200,
      }),
    ).toBe('restored');
    const r = (
      await db.pool.query<{ status: string; restored_at: Date }>(
        'SELECT status, restored_at FROM outage_incidents WHERE id = $1',
        [id],
      )
    ).rows[0]!;
    expect(r.status).toBe('restored');
    expect(
      (await sweepOutages(db.pool, { now: new Date(r.restored_at.getTime() + 23 * 3600_000) })).closed,
    ).toBe(0);
    expect(
      (await sweepOutages(db.pool, { now: new Date(r.restored_at.getTime() + 25 * 3600_000) })).closed,
    ).toBe(1);
    expect(
      (await db.pool.query<{ status: string }>('SELECT status FROM outage_incidents WHERE id = $1', [id]))
        .rows[0]!.status,
    ).toBe('closed');
    expect(
      (await db.pool.query(`SELECT 1 FROM alerts WHERE meter_id = $1 AND type = 'outage'`, [w.h1B.meterId]))
        .rowCount,
    ).toBe(2);
    // The disconnected meter never became an outage.
    expect(
      (await db.pool.query(`SELECT 1 FROM outage_incident_meters WHERE meter_id = $1`, [w.h2B.meterId]))
        .rowCount,
    ).toBe(0);
  });
});
