import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlerts, type NewAlert } from '../src/alerts/raise.ts';
import { defaultNotifyConfig } from '../src/config.ts';
import { startJobs, type RunningJobs } from '../src/jobs/service.ts';
import { encodeSms } from '../src/notify/sms.ts';
import { logger } from '../src/log.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { testConfig } from './support/api.ts';
import { seedMeters, sleep, waitFor } from './support/world.ts';
import { decodeQp, reassemble, startSmsc, startSmtp } from './support/notify.ts';

/** Delivery over real SMTP and SMPP servers, through pg-boss, with retries. */
let db: TestDb;
let jobs: RunningJobs;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let smsc: Awaited<ReturnType<typeof startSmsc>>;
let hh: CreatedHousehold[];

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 8);
  smtp = await startSmtp({ flakyFailures: 2 });
  smsc = await startSmsc();
  const config = testConfig({
    notify: defaultNotifyConfig({
      smtpUrl: smtp.url,
      smtpFrom: 'Kilowire Alerts <alerts@kilowire.test>',
      smppUrl: smsc.url,
      smsFrom: 'Kilowire',
      retryLimit: 2,
      retryDelayS: 1,
      pollS: 0.5,
      dispatchMs: 200,
      concurrency: 2,
    }),
  });
  jobs = await startJobs({ pool: db.pool, config, log: logger('test-jobs') });
});

afterAll(async () => {
  await jobs?.stop();
  await smtp?.close();
  await smsc?.close();
  await db?.drop();
});

async function contact(h: CreatedHousehold, email: string | null, mobile: string | null) {
  await db.pool.query('UPDATE consumers SET email = $2, mobile = $3 WHERE id = $1', [
    h.consumerId,
    email,
    mobile,
  ]);
}

function alert(h: CreatedHousehold, over: Partial<NewAlert> = {}): NewAlert {
  return {
    meterId: h.meterId,
    type: 'daily_limit',
    dedupeKey: '2026-11-26',
    title: 'Daily limit reached',
    message: 'You used 12.4 kWh on 26 Nov, above your daily limit of 10.0 kWh.',
    figures: { wh: 12400, limitWh: 10000 },
    ...over,
  };
}

async function delivery(alertId: number, channel: string) {
  return (
    await db.pool.query<{
      status: string;
      attempts: number;
      last_error: string | null;
      sent_at: Date | null;
    }>('SELECT status, attempts, last_error, sent_at FROM deliveries WHERE alert_id = $1 AND channel = $2', [
      alertId,
      channel,
    ])
  ).rows[0];
}

describe('email over SMTP', () => {
  it('delivers the alert with subject, body and recipient (and authenticates)', async () => {
    await contact(hh[0]!, 'anna@example.test', null);
    const [id] = await raiseAlerts(db.pool, [alert(hh[0]!)]);
    const mail = await waitFor(
      () => smtp.received.find((m) => m.to.includes('anna@example.test')),
      15_000,
      'email',
    );
    expect(mail.from).toBe('alerts@kilowire.test');
    expect(mail.user).toBe('alerts');
    expect(mail.raw).toMatch(/^Subject: Kilowire: Daily limit reached\r?$/m);
    expect(decodeQp(mail.raw)).toContain('You used 12.4 kWh on 26 Nov, above your daily limit of 10.0 kWh.');
    await waitFor(async () => (await delivery(id!, 'email'))?.status === 'sent', 5000, 'sent');
    expect(await delivery(id!, 'email')).toMatchObject({ status: 'sent', attempts: 1, last_error: null });
  });

  it('a server that answers 451 twice then accepts gets the message exactly once; one that never accepts is given up', async () => {
    await contact(hh[1]!, 'flaky@example.test', null);
    await contact(hh[4]!, 'down@example.test', null);
    const [id] = await raiseAlerts(db.pool, [alert(hh[1]!)]);
    const [downId] = await raiseAlerts(db.pool, [alert(hh[4]!)]);
    await waitFor(
      async () => (await delivery(id!, 'email'))?.status === 'sent',
      30_000,
      'sent after retries',
    );
    expect(smtp.attempts.get('flaky@example.test')).toBe(3);
    expect(smtp.received.filter((m) => m.to.includes('flaky@example.test'))).toHaveLength(1);
    expect(await delivery(id!, 'email')).toMatchObject({ status: 'sent', attempts: 3, last_error: null });
    // Raising the same crossing again sends nothing more.
    expect(await raiseAlerts(db.pool, [alert(hh[1]!)])).toEqual([]);
    // Always 451: failed after the first try and retryLimit (2) retries, then left alone.
    const d = await waitFor(
      async () => {
        const r = await delivery(downId!, 'email');
        return r?.status === 'failed' ? r : undefined;
      },
      30_000,
      'failed',
    );
    expect(d.attempts).toBe(3);
    expect(d.last_error).toContain('451');
    expect(smtp.received.filter((m) => m.to.includes('flaky@example.test'))).toHaveLength(1);
  });

  it('a mailbox refused with 550 fails visibly at once and is not retried', async () => {
    await contact(hh[2]!, 'bounce@example.test', null);
    const [id] = await raiseAlerts(db.pool, [alert(hh[2]!)]);
    const d = await waitFor(
      async () => {
        const r = await delivery(id!, 'email');
        return r?.status === 'failed' ? r : undefined;
      },
      15_000,
      'failed',
    );
    expect(d.attempts).toBe(1);
    expect(d.last_error).toContain('550');
    await sleep(2000);
    expect((await delivery(id!, 'email'))!.attempts).toBe(1);
  });

  it('an invalid address fails without reaching the server', async () => {
    await contact(hh[3]!, 'not-an-address', null);
    const [id] = await raiseAlerts(db.pool, [alert(hh[3]!)]);
    const d = await waitFor(
      async () => {
        const r = await delivery(id!, 'email');
        return r?.status === 'failed' ? r : undefined;
      },
      15_000,
      'failed',
    );
    expect(d).toMatchObject({ attempts: 1, last_error: 'invalid email address' });
  });
});

describe('SMS over SMPP', () => {
  it('submit_sm reaches the SMSC with the destination, sender and GSM-7 text', async () => {
    await contact(hh[5]!, null, '+447700900123');
    const [id] = await raiseAlerts(db.pool, [
      alert(hh[5]!, {
        type: 'tamper',
        dedupeKey: '1:0',
        title: 'Tamper alert',
        message: 'Meter cover opened at 14:05 on 26 Nov.',
      }),
    ]);
    const sms = await waitFor(
      () => smsc.submits.find((s) => s.destination === '447700900123'),
      15_000,
      'sms',
    );
    expect(sms).toMatchObject({
      systemId: 'kwtest',
      source: 'Kilowire',
      dataCoding: 0,
      esmClass: 0,
      text: 'Kilowire: Tamper alert. Meter cover opened at 14:05 on 26 Nov.',
    });
    expect(smsc.binds[0]).toEqual({ systemId: 'kwtest', password: 'pw123' });
    await waitFor(async () => (await delivery(id!, 'sms'))?.status === 'sent', 5000, 'sent');
  });

  it('a long GSM text arrives as concatenated parts that reassemble to the text', async () => {
    await contact(hh[6]!, null, '+447700900456');
    const message = 'Your usage today {peak} is high: ' + 'use less at 17:00-19:00 € [tips] '.repeat(9);
    await raiseAlerts(db.pool, [alert(hh[6]!, { type: 'tamper', dedupeKey: '2:0', title: 'Long', message })]);
    const expected = `Kilowire: Long. ${message}`;
    const enc = encodeSms(expected, 1);
    expect(enc.parts.length).toBeGreaterThan(1);
    const parts = await waitFor(
      () => {
        const p = smsc.submits.filter((s) => s.destination === '447700900456');
        return p.length === enc.parts.length ? p : undefined;
      },
      15_000,
      'all parts',
    );
    for (const p of parts) {
      expect(p.dataCoding).toBe(0);
      expect(p.esmClass & 0x40).toBe(0x40);
      expect(p.udh[0]![0]).toBe(0x00); // concatenation IEI
      expect(p.udh[0]![3]).toBe(parts.length);
    }
    expect(new Set(parts.map((p) => p.udh[0]![2])).size).toBe(1); // one reference
    expect(reassemble(parts)).toBe(expected);
  });

  it('a text outside the GSM alphabet goes as UCS-2 (data_coding 8), surrogate pairs intact', async () => {
    await contact(hh[7]!, null, '+48500100200');
    const message = 'Łódź 😀 '.repeat(12);
    await raiseAlerts(db.pool, [
      alert(hh[7]!, { type: 'tamper', dedupeKey: '3:0', title: 'Zażółć', message }),
    ]);
    const expected = `Kilowire: Zażółć. ${message}`;
    const n = encodeSms(expected, 1).parts.length;
    expect(n).toBeGreaterThan(1);
    const parts = await waitFor(
      () => {
        const p = smsc.submits.filter((s) => s.destination === '48500100200');
        return p.length === n ? p : undefined;
      },
      15_000,
      'all parts',
    );
    for (const p of parts) expect(p.dataCoding).toBe(8);
    expect(reassemble(parts)).toBe(expected);
  });
});

describe('SMS encoding', () => {
  it('uses GSM-7 for the default alphabet and its extension (€), UCS-2 otherwise; 160/70 fit one SMS', () => {
    expect(encodeSms('x'.repeat(160), 1)).toMatchObject({ dataCoding: 0, esmClass: 0 });
    expect(encodeSms('x'.repeat(160), 1).parts).toHaveLength(1);
    expect(encodeSms('x'.repeat(161), 1).parts).toHaveLength(2);
    expect(encodeSms('€'.repeat(80), 1).parts).toHaveLength(1); // 160 septets
    expect(encodeSms('€'.repeat(81), 1).parts).toHaveLength(2);
    expect(encodeSms('Ł'.repeat(70), 1)).toMatchObject({ dataCoding: 8, esmClass: 0 });
    expect(encodeSms('Ł'.repeat(71), 1).parts).toHaveLength(2);
    // An escape (0x1B) never ends a part.
    for (const p of encodeSms('a'.repeat(152) + '€'.repeat(10), 7).parts)
      expect(p[p.length - 1]).not.toBe(0x1b);
  });
});
