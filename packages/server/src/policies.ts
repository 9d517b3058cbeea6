import type { Role, StaffRole } from '@kilowire/contract/enums';
import { AppError } from './errors.ts';

/**
 * Authorisation, in one place. Every route asks here; no route writes its own role check
 * or scope condition.
 *
 * Two kinds of refusal, on purpose:
 * - a route the role may never use -> 403 FORBIDDEN (`requireRole`, `authorise`): nothing
 *   about any particular meter is revealed, since the answer is the same for every serial;
 * - a meter (alert, message) the actor may not see -> 404 NOT_FOUND (`scopeSql` in the
 *   query), exactly as if it did not exist, so other households' or suppliers' serials
 *   cannot be probed.
 */

/** The four kinds of user (from the contract); what each may do is decided below and nowhere else. */
export { ROLES, type Role } from '@kilowire/contract/enums';

export interface Actor {
  userId: number;
  role: Role;
  /** Supplier or network-operator organisation of staff; null for consumers and admins. */
  orgId: number | null;
  /** consumers.id of a consumer user. */
  consumerId?: number;
  /** Supplier and network-operator staff: agent or admin inside their organisation. */
  staffRole?: StaffRole;
  /** Signed in with an initial password someone else chose: nothing but choosing one's own until then. */
  mustChangePassword?: true;
}

/**
 * Who may hold a permission: a role, `supplier_admin` (supplier staff whose staff role is
 * admin) or `operator_admin` (the same inside a network operator). `supplier` alone means
 * every supplier staff user, agents included.
 */
export type Holder = Role | 'supplier_admin' | 'operator_admin';

/** Does the actor hold any of `holders`? */
export function holds(actor: Actor, holders: readonly Holder[]): boolean {
  if (holders.includes(actor.role)) return true;
  if (actor.staffRole !== 'admin') return false;
  if (actor.role === 'supplier') return holders.includes('supplier_admin');
  if (actor.role === 'operator') return holders.includes('operator_admin');
  return false;
}

export type Action =
  /** Read the meter, its readings, rollups and events. */
  | 'meter.read'
  /** Read the commands sent to a meter (staff only). */
  | 'meter.commands.read'
  /** Issue a command (supply off/on/arm): supplier staff of the owning supplier only. */
  | 'meter.command'
  /** Read and set the consumption limits of a meter: the consumer who owns it only. */
  | 'meter.limits'
  /** See the meter's tariff, its prices and costs: the household and its supplier (not the network operator). */
  | 'meter.tariff.read'
  /** Put the meter on a tariff: supplier staff of the owning supplier only. */
  | 'meter.tariff.assign'
  /** The meter's tamper cases on its page: supplier staff of the owning supplier, admins (read only). */
  | 'meter.cases.read'
  /** The meter's readings as a Green Button (ESPI) file: its household and its supplier's staff. */
  | 'meter.green_button'
  /** The staff meter page: household contact details, balance, commands and who asked (supplier staff, admins). */
  | 'meter.overview';

/**
 * Roles that may ever do `action` on a meter they can see. Which meters they can see is the
 * scope below, so "supplier staff of the owning supplier" is: role supplier + meter in scope.
 * Network operators never change a meter; admins run the platform, not the fleet.
 */
export const ROLES_FOR: Record<Action, readonly Role[]> = {
  'meter.read': ['consumer', 'supplier', 'operator', 'admin'],
  'meter.commands.read': ['supplier', 'operator', 'admin'],
  'meter.command': ['supplier'],
  'meter.limits': ['consumer'],
  // Prices are between a household and its supplier; the network operator charges the
  // supplier, not the household, and has no business with them.
  'meter.tariff.read': ['consumer', 'supplier', 'admin'],
  'meter.tariff.assign': ['supplier'],
  // #8 cases: tamper cases are the supplier's investigation (admins may look, as they see every meter).
  'meter.cases.read': ['supplier', 'admin'],
  // A household's own consumption (mydata.download is checked too) and its supplier's copy.
  'meter.green_button': ['consumer', 'supplier'],
  // Contact details and money: the supplier's business (and the platform's); a network
  // operator sees the meter's readings, not who lives there or what they owe.
  'meter.overview': ['supplier', 'admin'],
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
  | 'outbox.read'
  /** Start a top-up or a payment for one of the household's own meters. */
  | 'topups.create'
  /** See top-ups: a household its own, supplier staff those for their meters. */
  | 'topups.read'
  /** Give a payment back to the card (supplier staff, for their meters). */
  | 'topups.refund'
  /** Accounts with balances and their ledgers (households their own, supplier staff their supplier's, admins all). */
  | 'accounts.read'
  /** Bills and their PDFs (households their own, supplier staff their supplier's, admins all). */
  | 'bills.read'
  /** Bill runs and their progress (supplier staff their supplier's, admins all). */
  | 'billruns.read'
  /** Start a bill run: supplier staff, for their own supplier's accounts. */
  | 'billruns.start'
  /** Tariffs: a household its own and the open ones of its supplier, supplier staff their own. */
  | 'tariffs.read'
  /** Create tariffs, add price versions, assign them to many meters (supplier staff). */
  | 'tariffs.manage'
  /** Ask to move one's meter to another tariff (households). */
  | 'tariff_requests.create'
  /** Tariff-change requests: a household its own, supplier staff those on their meters. */
  | 'tariff_requests.list'
  /** Approve or decline a tariff-change request (supplier staff of the meter's supplier). */
  | 'tariff_requests.decide'
  /** The supplier's fleet table, its counts and its CSV export (supplier staff; admins all meters). */
  | 'fleet.read'
  /** Disconnect or reconnect several meters in one action (supplier admins; over the threshold it waits for a second admin). */
  | 'supply.bulk'
  /** See actions waiting for a second person's approval (supplier staff their supplier's). */
  | 'approvals.read'
  /** Approve or reject someone else's action (supplier admins). */
  | 'approvals.decide'
  /** The supplier's protection settings: friendly hours, holidays, thresholds, quotas (supplier admins). */
  | 'supplier.settings'
  /** Read those settings: every supplier staff user acts under them, so agents may see them (#8 supply). */
  | 'supplier.settings.read'
  /** Tamper cases: see them, add notes and actions, move them on (supplier staff). */
  | 'tamper.manage'
  /** Monthly consumption extracts: start one, follow it, download it (supplier staff). */
  | 'extracts.manage'
  /** The household's own data in Green Button (ESPI) form. */
  | 'mydata.download'
  /** Staff accounts: supplier admins for their own organisation, administrators for all. */
  | 'staff.manage'
  /** Organisations (suppliers, network operators) (administrators). */
  | 'orgs.manage'
  /** Register, re-key, decommission and exchange meters (administrators). */
  | 'meters.provision'
  /** The audit log, filtered and exported (administrators). */
  | 'audit.read'
  /** System health: ingest rate, queues, failing deliveries, commands waiting, meters connected (administrators). */
  | 'system.read'
  /** #9 the network console: feeders, incidents, the SLA dashboard, collections and their files (operator staff their areas; admins all). */
  | 'network.read'
  /** #9 work an incident: acknowledge, dispatch a crew, set the estimated restoration, close, add notes (operator staff). Never a meter. */
  | 'incidents.manage'
  /** #9 the operator's settings: cut-off, completeness threshold, outage rules, SLA targets, on-call contacts (operator admins). */
  | 'network.settings'
  /** #9 network tariffs and issuing network-use invoices (operator admins). */
  | 'network_tariffs.manage'
  /** #9 network-use invoices: the operator its own issued, a supplier those it owes (and admins all). */
  | 'network_invoices.read'
  /** #10 firmware images and campaigns, their progress per state and per meter (supplier staff their own; admins all). */
  | 'firmware.read'
  /** #10 upload images, create, pause, resume and cancel campaigns (supplier admins; starting one needs a second admin's approval). */
  | 'firmware.manage';

export const CAPABILITY_ROLES: Record<Capability, readonly Holder[]> = {
  'home.read': ['consumer'],
  'profile.manage': ['consumer'],
  // Network operators see the alerts addressed to them (incidents, SLA, collection), never a household's.
  'alerts.list': ['consumer', 'supplier', 'operator', 'admin'],
  'alerts.mark': ['consumer'],
  'outbox.read': ['supplier', 'admin'],
  'topups.create': ['consumer'],
  // Money is the household's and its supplier's business; operators and platform admins stay out.
  'topups.read': ['consumer', 'supplier'],
  'topups.refund': ['supplier'],
  // Network operators run the wires, not the money.
  'accounts.read': ['consumer', 'supplier', 'admin'],
  'bills.read': ['consumer', 'supplier', 'admin'],
  'billruns.read': ['supplier', 'admin'],
  // Pricing and billing the whole book are the supplier admin's; agents work one account at a time.
  'billruns.start': ['supplier_admin'],
  'tariffs.read': ['consumer', 'supplier'],
  'tariffs.manage': ['supplier_admin'],
  'tariff_requests.create': ['consumer'],
  'tariff_requests.list': ['consumer', 'supplier'],
  'tariff_requests.decide': ['supplier'],
  'fleet.read': ['supplier', 'admin'],
  'supply.bulk': ['supplier_admin'],
  'approvals.read': ['supplier'],
  'approvals.decide': ['supplier_admin'],
  'supplier.settings': ['supplier_admin'],
  'supplier.settings.read': ['supplier'],
  'tamper.manage': ['supplier'],
  'extracts.manage': ['supplier'],
  'mydata.download': ['consumer'],
  'staff.manage': ['supplier_admin', 'admin'],
  'orgs.manage': ['admin'],
  'meters.provision': ['admin'],
  'audit.read': ['admin'],
  'system.read': ['admin'],
  'network.read': ['operator', 'admin'],
  'incidents.manage': ['operator'],
  'network.settings': ['operator_admin'],
  'network_tariffs.manage': ['operator_admin'],
  'network_invoices.read': ['operator', 'supplier', 'admin'],
  // Putting code on meters is the supplier's (the meters' owner's) business; a bad image is
  // the fleet's biggest risk, so only its admins change anything, and a second one approves.
  'firmware.read': ['supplier', 'admin'],
  'firmware.manage': ['supplier_admin'],
};

/** 403 unless the actor has one of `roles`. For routes a role may never use. */
export function requireRole(actor: Actor, ...roles: readonly Role[]): void {
  if (!roles.includes(actor.role)) throw new AppError('FORBIDDEN', 'not permitted for this role');
}

/** Does the actor have `cap`? (The portal shows what it may do from the same table, via /api/me.) */
export function hasCapability(actor: Actor, cap: Capability): boolean {
  return holds(actor, CAPABILITY_ROLES[cap]);
}

/** 403 unless the actor has `cap`. */
export function requireCapability(actor: Actor, cap: Capability): void {
  if (!hasCapability(actor, cap)) throw new AppError('FORBIDDEN', 'not permitted for this role');
}

/** May `actor` do `action` on a meter that is in its scope? */
export function can(actor: Actor, action: Action): boolean {
  return ROLES_FOR[action].includes(actor.role);
}

/** Throw 403 unless `can(actor, action)`. */
export function authorise(actor: Actor, action: Action): void {
  if (!can(actor, action)) throw new AppError('FORBIDDEN', 'not permitted');
}

export interface ScopeSql {
  /** A boolean SQL condition over `alias`, using $first.. placeholders. */
  sql: string;
  params: unknown[];
}

/** The tables a scope can limit. */
export type Scoped =
  | 'meters'
  | 'alerts'
  | 'outbox'
  | 'topups'
  | 'accounts'
  | 'bills'
  | 'bill_runs'
  | 'action_requests'
  | 'tamper_cases'
  | 'extracts'
  | 'users'
  | 'incidents'
  | 'collection_runs'
  | 'network_tariffs'
  | 'network_invoices'
  | 'network_areas'
  | 'firmware_images'
  | 'firmware_campaigns';

/**
 * Per table and role, the condition that limits rows to what the actor may see, given the
 * alias and the placeholder of the one parameter (the consumer's or organisation's id).
 * null = nothing at all. Admins see everything.
 */
const SCOPES: Record<Scoped, Record<Exclude<Role, 'admin'>, ((a: string, p: string) => string) | null>> = {
  meters: {
    consumer: (a, p) =>
      `${a}.account_id IN (SELECT kw_a.id FROM accounts kw_a WHERE kw_a.consumer_id = ${p})`,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: (a, p) =>
      `${a}.area_id IN (SELECT kw_na.id FROM network_areas kw_na WHERE kw_na.operator_id = ${p})`,
  },
  alerts: {
    // A consumer sees the alerts they chose to see on the web.
    consumer: (a, p) => `(${a}.consumer_id = ${p} AND ${a}.web)`,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    // Alerts addressed to the operator itself (incidents, SLA, collection).
    operator: (a, p) => `${a}.operator_id = ${p}`,
  },
  accounts: {
    consumer: (a, p) => `${a}.consumer_id = ${p}`,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: null,
  },
  bills: {
    consumer: (a, p) =>
      `${a}.account_id IN (SELECT kw_a.id FROM accounts kw_a WHERE kw_a.consumer_id = ${p})`,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: null,
  },
  bill_runs: {
    consumer: null,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: null,
  },
  outbox: {
    consumer: null,
    supplier: (a, p) => `${a}.alert_id IN (SELECT kw_al.id FROM alerts kw_al WHERE kw_al.supplier_id = ${p})`,
    operator: null,
  },
  // Actions waiting for approval, tamper cases and extracts: the supplier's own, by its id.
  action_requests: {
    consumer: null,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: null,
  },
  tamper_cases: {
    consumer: null,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: null,
  },
  extracts: {
    consumer: null,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: null,
  },
  // Staff accounts: an organisation's own staff (supplier admins manage theirs).
  users: {
    consumer: null,
    supplier: (a, p) => `${a}.org_id = ${p}`,
    operator: null,
  },
  // #9 the network operator's own records. Incidents and network tariffs carry operator_id;
  // a collection run belongs to an area; a network invoice is the operator's and the supplier's.
  incidents: {
    consumer: null,
    supplier: null,
    operator: (a, p) => `${a}.operator_id = ${p}`,
  },
  collection_runs: {
    consumer: null,
    supplier: null,
    operator: (a, p) =>
      `${a}.area_id IN (SELECT kw_na.id FROM network_areas kw_na WHERE kw_na.operator_id = ${p})`,
  },
  network_tariffs: {
    consumer: null,
    supplier: null,
    operator: (a, p) => `${a}.operator_id = ${p}`,
  },
  network_invoices: {
    consumer: null,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: (a, p) => `${a}.operator_id = ${p}`,
  },
  network_areas: {
    consumer: null,
    supplier: null,
    operator: (a, p) => `${a}.operator_id = ${p}`,
  },
  // #10 a supplier's own images and campaigns (carry supplier_id).
  firmware_images: {
    consumer: null,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: null,
  },
  firmware_campaigns: {
    consumer: null,
    supplier: (a, p) => `${a}.supplier_id = ${p}`,
    operator: null,
  },
  topups: {
    consumer: (a, p) => `${a}.consumer_id = ${p}`,
    supplier: (a, p) => `${a}.meter_id IN (SELECT kw_m.id FROM meters kw_m WHERE kw_m.supplier_id = ${p})`,
    operator: null,
  },
};

/**
 * The one scope builder: the condition limiting `table AS alias` to what the actor may see.
 * Placeholders start at `$first`, so the caller appends `params` after its own.
 */
export function scopeSql(actor: Actor, table: Scoped, alias: string, first = 1): ScopeSql {
  if (!/^[a-z_][a-z0-9_]*$/i.test(alias)) throw new Error(`bad SQL alias ${alias}`);
  if (actor.role === 'admin') return { sql: 'TRUE', params: [] };
  const build = SCOPES[table][actor.role];
  const id = actor.role === 'consumer' ? actor.consumerId : actor.orgId;
  if (!build || id === undefined || id === null) return { sql: 'FALSE', params: [] };
  return { sql: build(alias, `$${first}`), params: [id] };
}
