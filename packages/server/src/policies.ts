import { AppError } from './errors.ts';
import type { Role } from './accounts/repo.ts';

/**
 * Authorisation, in one place. Every route asks here; no route writes its own role check
 * or scope condition.
 *
 * Two kinds of refusal, on purpose:
 * - a route the role may never use -> 403 FORBIDDEN (`requireRole`, `can`): nothing about
 *   any particular meter is revealed, since the answer is the same for every serial;
 * - a meter the actor may not see -> 404 NOT_FOUND (`meterScopeSql` in the query), exactly
 *   as if it did not exist, so serials of other households or suppliers cannot be probed.
 */
export interface Actor {
  userId: number;
  role: Role;
  /** Supplier or network-operator organisation of staff; null for consumers and admins. */
  orgId: number | null;
  /** consumers.id of a consumer user. */
  consumerId?: number;
}

/** What a policy needs to know about a meter (loaded under `meterScopeSql`). */
export interface MeterSubject {
  kind: 'meter';
  supplierId: number;
  /** operator_id of the meter's network area. */
  operatorId: number;
  /** consumers.id of the account holder, if the meter is on an account. */
  consumerId: number | null;
}

export type Action =
  /** Read the meter, its readings, rollups and events. */
  | 'meter.read'
  /** Read the commands sent to a meter (staff only). */
  | 'meter.commands.read'
  /** Issue a command (supply off/on/arm): supplier staff of the owning supplier only. */
  | 'meter.command'
  /** Read and set the consumption limits of a meter: the consumer who owns it only. */
  | 'meter.limits';

export interface ScopeSql {
  /** A boolean SQL condition over `alias` (the meters table), using $first.. placeholders. */
  sql: string;
  params: unknown[];
}

/**
 * The condition limiting `meters AS alias` to what the actor may see. Placeholders start at
 * `$first`, so the caller appends `params` after its own.
 */
export function meterScopeSql(actor: Actor, alias: string, first = 1): ScopeSql {
  if (!/^[a-z_][a-z0-9_]*$/i.test(alias)) throw new Error(`bad SQL alias ${alias}`);
  const p = `$${first}`;
  switch (actor.role) {
    case 'admin':
      return { sql: 'TRUE', params: [] };
    case 'consumer':
      if (actor.consumerId === undefined) return { sql: 'FALSE', params: [] };
      return {
        sql: `${alias}.account_id IN (SELECT kw_a.id FROM accounts kw_a WHERE kw_a.consumer_id = ${p})`,
        params: [actor.consumerId],
      };
    case 'supplier':
      if (actor.orgId === null) return { sql: 'FALSE', params: [] };
      return { sql: `${alias}.supplier_id = ${p}`, params: [actor.orgId] };
    case 'operator':
      if (actor.orgId === null) return { sql: 'FALSE', params: [] };
      return {
        sql: `${alias}.area_id IN (SELECT kw_na.id FROM network_areas kw_na WHERE kw_na.operator_id = ${p})`,
        params: [actor.orgId],
      };
  }
}

/** 403 unless the actor has one of `roles`. For routes a role may never use. */
export function requireRole(actor: Actor, ...roles: Role[]): void {
  if (!roles.includes(actor.role)) throw new AppError('FORBIDDEN', 'not permitted for this role');
}

/** Whether the actor may see a meter: the JavaScript twin of `meterScopeSql`. */
function seesMeter(actor: Actor, m: MeterSubject): boolean {
  switch (actor.role) {
    case 'admin':
      return true;
    case 'consumer':
      return actor.consumerId !== undefined && m.consumerId === actor.consumerId;
    case 'supplier':
      return actor.orgId !== null && m.supplierId === actor.orgId;
    case 'operator':
      return actor.orgId !== null && m.operatorId === actor.orgId;
  }
}

/** May `actor` do `action` on `subject`? Pure; callers turn `false` into 403 via `authorise`. */
export function can(actor: Actor, action: Action, subject: MeterSubject): boolean {
  switch (action) {
    case 'meter.read':
      return seesMeter(actor, subject);
    case 'meter.commands.read':
      return actor.role !== 'consumer' && seesMeter(actor, subject);
    case 'meter.command':
      // Network operators never change a meter; admins run the platform, not the fleet.
      return actor.role === 'supplier' && actor.orgId !== null && subject.supplierId === actor.orgId;
    case 'meter.limits':
      return actor.role === 'consumer' && seesMeter(actor, subject);
  }
}

/** Throw 403 unless `can(actor, action, subject)`. */
export function authorise(actor: Actor, action: Action, subject: MeterSubject): void {
  if (!can(actor, action, subject)) throw new AppError('FORBIDDEN', 'not permitted');
}

/** Roles that may ever use a route guarded by `action` (the coarse check, before any lookup). */
export const ROLES_FOR: Record<Action, readonly Role[]> = {
  'meter.read': ['consumer', 'supplier', 'operator', 'admin'],
  'meter.commands.read': ['supplier', 'operator', 'admin'],
  'meter.command': ['supplier'],
  'meter.limits': ['consumer'],
};

/** What a role may do that is not about one meter named in the request. */
export type Capability =
  /** The consumer portal's home summary. */
  | 'home.read'
  /** The consumer's own profile: contact details, quiet hours, alert channels. */
  | 'profile.manage'
  /** List alerts (consumers their own, supplier staff their supplier's, admins all). */
  | 'alerts.list'
  /** Mark alerts read (the consumer's own). */
  | 'alerts.mark'
  /** Messages sent or parked in the outbox (supplier staff their supplier's, admins all). */
  | 'outbox.read';

export const CAPABILITY_ROLES: Record<Capability, readonly Role[]> = {
  'home.read': ['consumer'],
  'profile.manage': ['consumer'],
  // Network operators get their own outage alerts later; consumer alerts are not theirs.
  'alerts.list': ['consumer', 'supplier', 'admin'],
  'alerts.mark': ['consumer'],
  'outbox.read': ['supplier', 'admin'],
};

/** 403 unless the actor's role has `cap`. */
export function requireCapability(actor: Actor, cap: Capability): void {
  requireRole(actor, ...CAPABILITY_ROLES[cap]);
}

/**
 * The condition limiting `alerts AS alias` to what the actor may see: a consumer their own
 * alerts shown on the web, supplier staff the alerts of their supplier's meters, an admin all.
 */
export function alertScopeSql(actor: Actor, alias: string, first = 1): ScopeSql {
  if (!/^[a-z_][a-z0-9_]*$/i.test(alias)) throw new Error(`bad SQL alias ${alias}`);
  const p = `$${first}`;
  switch (actor.role) {
    case 'admin':
      return { sql: 'TRUE', params: [] };
    case 'consumer':
      if (actor.consumerId === undefined) return { sql: 'FALSE', params: [] };
      return { sql: `(${alias}.consumer_id = ${p} AND ${alias}.web)`, params: [actor.consumerId] };
    case 'supplier':
      if (actor.orgId === null) return { sql: 'FALSE', params: [] };
      return { sql: `${alias}.supplier_id = ${p}`, params: [actor.orgId] };
    case 'operator':
      return { sql: 'FALSE', params: [] };
  }
}

/**
 * The condition limiting `outbox AS alias` to what the actor may see: supplier staff the
 * messages about their supplier's meters (through the alert), an admin all.
 */
export function outboxScopeSql(actor: Actor, alias: string, first = 1): ScopeSql {
  if (!/^[a-z_][a-z0-9_]*$/i.test(alias)) throw new Error(`bad SQL alias ${alias}`);
  switch (actor.role) {
    case 'admin':
      return { sql: 'TRUE', params: [] };
    case 'supplier':
      if (actor.orgId === null) return { sql: 'FALSE', params: [] };
      return {
        sql: `${alias}.alert_id IN (SELECT kw_al.id FROM alerts kw_al WHERE kw_al.supplier_id = $${first})`,
        params: [actor.orgId],
      };
    case 'consumer':
    case 'operator':
      return { sql: 'FALSE', params: [] };
  }
}
