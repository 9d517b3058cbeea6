import { Readable } from 'node:stream';
import { z } from 'zod';
import {
  adminMeterList,
  adminMeterParams,
  adminMeterQuery,
  adminMeterSchema,
  areaCreate,
  auditExportQuery,
  auditList,
  auditQuery,
  bodyErrorResponses,
  errorResponses,
  idParams,
  inviteAccept,
  inviteInfo as inviteInfoSchema,
  inviteParams,
  meterExchange,
  meterExchanged,
  meterIssued,
  meterProvision,
  organisationCreate,
  organisationList,
  organisationPatch,
  organisationSchema,
  provisioningOptions as provisioningOptionsSchema,
  staffUserCreate,
  staffUserIssued,
  staffUserList,
  staffUserPatch,
  staffUserQuery,
  staffUserReset,
  staffUserSchema,
  systemHealth as systemHealthSchema,
} from '@kilowire/contract';
import { auditCsv, listAudit } from '../../admin/audit.ts';
import { systemHealth } from '../../admin/health.ts';
import {
  createArea,
  createOrganisation,
  listOrganisations,
  renameOrganisation,
} from '../../admin/organisations.ts';
import {
  acceptInvite,
  createStaffUser,
  inviteInfo,
  listStaffUsers,
  resetAccess,
  setDisabled,
  setStaffRole,
} from '../../admin/staff.ts';
import { hashPassword } from '../../auth/passwords.ts';
import { withTx } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import {
  decommissionMeter,
  exchangeMeter,
  listAdminMeters,
  provisionMeter,
  provisioningOptions,
  rotateCredential,
} from '../../meters/provision.ts';
import { requireCapability } from '../../policies.ts';
import {
  actorOf,
  decodeIdCursor,
  decodeSerialCursor,
  encodeIdCursor,
  encodeSerialCursor,
  whoOf,
  type Routes,
} from '../http.ts';

/** Credentials and invite links are shown once: never cached by anything on the way. */
const ONCE = { 'cache-control': 'no-store', pragma: 'no-cache' };

/**
 * The administrator's platform: organisations, staff users (supplier admins: their own
 * organisation's), invitations, meter provisioning, the audit log and system health.
 * Authorisation through policies (capabilities orgs.manage, staff.manage, meters.provision,
 * audit.read, system.read); staff users are scoped by scopeSql('users').
 */
export const adminRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  // Organisations.
  app.get(
    '/api/admin/organisations',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Suppliers and network operators, with staff and meter counts and operators’ areas (administrators)',
        response: { 200: organisationList, ...errorResponses },
      },
    },
    async (req) => {
      requireCapability(actorOf(req), 'orgs.manage');
      return { items: await listOrganisations(pool) };
    },
  );

  app.post(
    '/api/admin/organisations',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create a supplier or a network operator (administrators)',
        body: organisationCreate,
        response: { 201: organisationSchema, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      requireCapability(actorOf(req), 'orgs.manage');
      const o = await withTx(pool, whoOf(req), async (t) => {
        const o = await createOrganisation(t.c, req.body);
        await t.audit('org.create', `org:${o.id}`, { kind: o.kind, slug: o.slug, name: o.name });
        return o;
      });
      return reply.code(201).send(o);
    },
  );

  app.patch(
    '/api/admin/organisations/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Rename an organisation (administrators)',
        params: idParams,
        body: organisationPatch,
        response: { 200: organisationSchema, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      requireCapability(actorOf(req), 'orgs.manage');
      return withTx(pool, whoOf(req), async (t) => {
        const o = await renameOrganisation(t.c, req.params.id, req.body.name);
        await t.audit('org.rename', `org:${o.id}`, { name: o.name });
        return o;
      });
    },
  );

  app.post(
    '/api/admin/organisations/:id/areas',
    {
      schema: {
        tags: ['admin'],
        summary: 'Add a network area with its feeders to a network operator (administrators)',
        params: idParams,
        body: areaCreate,
        response: { 201: organisationSchema, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      requireCapability(actorOf(req), 'orgs.manage');
      const o = await withTx(pool, whoOf(req), async (t) => {
        const o = await createArea(t.c, req.params.id, req.body);
        await t.audit('org.area_create', `org:${o.id}`, {
          area: req.body.id,
          feeders: req.body.feeders.map((f) => f.id),
        });
        return o;
      });
      return reply.code(201).send(o);
    },
  );

  // Staff users.
  app.get(
    '/api/staff-users',
    {
      schema: {
        tags: ['admin'],
        summary: 'Staff users, newest first: administrators all, supplier admins their organisation’s',
        querystring: staffUserQuery,
        response: { 200: staffUserList, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'staff.manage');
      const page = await listStaffUsers(pool, actor, {
        q: req.query.q,
        orgId: req.query.orgId,
        limit: req.query.limit,
        before: decodeIdCursor(req.query.cursor),
      });
      return { items: page.items, nextCursor: page.next === null ? null : encodeIdCursor(page.next) };
    },
  );

  app.post(
    '/api/staff-users',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Create a staff user with an invitation link (shown once) or an initial password to be changed at first sign-in',
        body: staffUserCreate,
        response: { 201: staffUserIssued, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'staff.manage');
      const b = req.body;
      // argon2 outside the transaction: no row lock waits on a hash.
      const hash = b.access.method === 'password' ? await hashPassword(b.access.password) : null;
      const issued = await withTx(pool, whoOf(req), async (t) => {
        const r = await createStaffUser(t.c, actor, b, hash);
        await t.audit('staff.create', `user:${r.user.id}`, {
          email: r.user.email,
          role: r.user.role,
          staffRole: r.user.staffRole,
          orgId: r.user.organisation?.id ?? null,
          access: b.access.method,
        });
        return r;
      });
      return reply.code(201).headers(ONCE).send(issued);
    },
  );

  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(
      `/api/staff-users/:id/${verb}`,
      {
        schema: {
          tags: ['admin'],
          summary: disabled
            ? 'Disable a staff user: every session ends now (not oneself)'
            : 'Enable a disabled staff user again',
          params: idParams,
          response: { 200: staffUserSchema, ...errorResponses },
        },
      },
      async (req) => {
        const actor = actorOf(req);
        requireCapability(actor, 'staff.manage');
        return withTx(pool, whoOf(req), async (t) => {
          const u = await setDisabled(t.c, actor, req.params.id, disabled);
          await t.audit(`staff.${verb}`, `user:${u.id}`);
          return u;
        });
      },
    );
  }

  app.post(
    '/api/staff-users/:id/reset',
    {
      schema: {
        tags: ['admin'],
        summary: 'A new invitation link or initial password for a staff user; ends their sessions',
        params: idParams,
        body: staffUserReset,
        response: { 200: staffUserIssued, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'staff.manage');
      const hash = req.body.method === 'password' ? await hashPassword(req.body.password) : null;
      const issued = await withTx(pool, whoOf(req), async (t) => {
        const r = await resetAccess(t.c, actor, req.params.id, hash);
        await t.audit('staff.reset', `user:${r.user.id}`, { access: req.body.method });
        return r;
      });
      return reply.headers(ONCE).send(issued);
    },
  );

  app.patch(
    '/api/staff-users/:id',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Change a staff user’s role in their organisation (agent or admin; nobody demotes themselves)',
        params: idParams,
        body: staffUserPatch,
        response: { 200: staffUserSchema, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'staff.manage');
      return withTx(pool, whoOf(req), async (t) => {
        const u = await setStaffRole(t.c, actor, req.params.id, req.body.staffRole);
        await t.audit('staff.role', `user:${u.id}`, { staffRole: u.staffRole });
        return u;
      });
    },
  );

  // Invitations: public, the token is the credential (256 random bits, stored hashed).
  app.get(
    '/api/invites/:token',
    {
      config: { public: true },
      schema: {
        tags: ['admin'],
        summary: 'Who an invitation is for and until when (404 when unknown, used or expired: one answer)',
        security: [],
        params: inviteParams,
        response: { 200: inviteInfoSchema, ...errorResponses },
      },
    },
    async (req) => {
      const info = await inviteInfo(pool, req.params.token);
      if (!info) throw new AppError('NOT_FOUND', 'this invitation is not valid (used, expired or unknown)');
      return info;
    },
  );

  app.post(
    '/api/invites/:token',
    {
      config: { public: true },
      schema: {
        tags: ['admin'],
        summary: 'Accept an invitation: set one’s password (single use); then sign in',
        security: [],
        params: inviteParams,
        body: inviteAccept,
        response: { 204: z.null().describe('Password set'), ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      // Hash first (slow), then claim the invite in a short transaction.
      const hash = await hashPassword(req.body.password);
      // Nobody is signed in: the audit row names the invited user, known once the invite is claimed.
      const who: { actorId: number | null; ip: string } = { actorId: null, ip: req.ip };
      const userId = await withTx(pool, who, async (t) => {
        const id = await acceptInvite(t.c, req.params.token, hash);
        if (id !== null) {
          who.actorId = id;
          await t.audit('staff.invite_accepted', `user:${id}`);
        }
        return id;
      });
      if (userId === null)
        throw new AppError('NOT_FOUND', 'this invitation is not valid (used, expired or unknown)');
      return reply.code(204).send(null);
    },
  );

  // Meter provisioning.
  app.get(
    '/api/admin/meters',
    {
      schema: {
        tags: ['admin'],
        summary: 'Every meter, by serial, decommissioned ones included (administrators)',
        querystring: adminMeterQuery,
        response: { 200: adminMeterList, ...errorResponses },
      },
    },
    async (req) => {
      requireCapability(actorOf(req), 'meters.provision');
      const page = await listAdminMeters(pool, { ...req.query, after: decodeSerialCursor(req.query.cursor) });
      return { items: page.items, nextCursor: page.next === null ? null : encodeSerialCursor(page.next) };
    },
  );

  app.get(
    '/api/admin/meters/options',
    {
      schema: {
        tags: ['admin'],
        summary: 'What a meter can be registered with: suppliers, areas and their feeders (administrators)',
        response: { 200: provisioningOptionsSchema, ...errorResponses },
      },
    },
    async (req) => {
      requireCapability(actorOf(req), 'meters.provision');
      return provisioningOptions(pool);
    },
  );

  app.post(
    '/api/admin/meters',
    {
      schema: {
        tags: ['admin'],
        summary: 'Register a meter; its broker credential (MQTT password) is in this answer only',
        body: meterProvision,
        response: { 201: meterIssued, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      requireCapability(actorOf(req), 'meters.provision');
      const issued = await withTx(pool, whoOf(req), async (t) => {
        const r = await provisionMeter(t.c, req.body);
        // The credential itself never goes in the audit log.
        await t.audit('meter.provision', r.meter.serial, {
          supplierId: r.meter.supplier.id,
          areaId: r.meter.area.id,
          feederId: r.meter.feederId,
          accountId: r.meter.accountId,
          hardwareClass: r.meter.hardwareClass,
        });
        return r;
      });
      return reply.code(201).headers(ONCE).send(issued);
    },
  );

  app.post(
    '/api/admin/meters/:meter/rotate-credential',
    {
      schema: {
        tags: ['admin'],
        summary: 'A new broker credential (shown once); the old one stops working at once',
        params: adminMeterParams,
        response: { 200: meterIssued, ...errorResponses },
      },
    },
    async (req, reply) => {
      requireCapability(actorOf(req), 'meters.provision');
      const issued = await withTx(pool, whoOf(req), async (t) => {
        const r = await rotateCredential(t.c, req.params.meter);
        await t.audit('meter.rotate_credential', r.meter.serial);
        return r;
      });
      return reply.headers(ONCE).send(issued);
    },
  );

  app.post(
    '/api/admin/meters/:meter/decommission',
    {
      schema: {
        tags: ['admin'],
        summary: 'Take a meter out of service: it can no longer connect; its readings stay',
        params: adminMeterParams,
        response: { 200: adminMeterSchema, ...errorResponses },
      },
    },
    async (req) => {
      requireCapability(actorOf(req), 'meters.provision');
      return withTx(pool, whoOf(req), async (t) => {
        const r = await decommissionMeter(t.c, req.params.meter, actorOf(req).userId);
        await t.audit('meter.decommission', r.meter.serial, { commandsCancelled: r.commandsCancelled });
        return r.meter;
      });
    },
  );

  app.post(
    '/api/admin/meters/:meter/exchange',
    {
      schema: {
        tags: ['admin'],
        summary:
          'A new meter takes this one’s place on its account (this one is decommissioned, its history kept); the new credential is shown once',
        params: adminMeterParams,
        body: meterExchange,
        response: { 201: meterExchanged, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      requireCapability(actorOf(req), 'meters.provision');
      const r = await withTx(pool, whoOf(req), async (t) => {
        const r = await exchangeMeter(t.c, req.params.meter, req.body, actorOf(req).userId);
        await t.audit('meter.exchange', r.old.serial, {
          newSerial: r.meter.serial,
          accountId: r.meter.accountId,
        });
        return r;
      });
      return reply.code(201).headers(ONCE).send(r);
    },
  );

  // The audit log.
  app.get(
    '/api/audit',
    {
      schema: {
        tags: ['admin'],
        summary: 'The audit log, newest first, with filters (administrators)',
        querystring: auditQuery,
        response: { 200: auditList, ...errorResponses },
      },
    },
    async (req) => {
      requireCapability(actorOf(req), 'audit.read');
      const { cursor, limit, ...f } = req.query;
      const page = await listAudit(pool, { ...f, limit, before: decodeIdCursor(cursor) });
      return { items: page.items, nextCursor: page.next === null ? null : encodeIdCursor(page.next) };
    },
  );

  app.get(
    '/api/audit/export.csv',
    {
      schema: {
        tags: ['admin'],
        summary: 'The audit log as CSV, with the same filters, streamed (administrators)',
        querystring: auditExportQuery,
        produces: ['text/csv'],
        response: { 200: z.any().describe('text/csv'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'audit.read');
      // Exporting the log is itself recorded.
      await withTx(pool, whoOf(req), (t) => t.audit('audit.export', null, { filters: req.query }));
      const day = new Date().toISOString().slice(0, 10);
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="kilowire-audit-${day}.csv"`)
        .send(Readable.from(auditCsv(pool, req.query)));
    },
  );

  // System health.
  app.get(
    '/api/admin/health',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Ingest rate, queues, events, failing deliveries, open commands, connected meters (administrators)',
        response: { 200: systemHealthSchema, ...errorResponses },
      },
    },
    async (req) => {
      requireCapability(actorOf(req), 'system.read');
      return systemHealth(pool);
    },
  );
};
