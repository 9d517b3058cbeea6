import type { MeterMode, OrgKind, Role } from '@kilowire/contract/enums';
import type { Q } from '../db/pool.ts';

export interface Profile {
  user: { id: number; role: Role; displayName: string; email: string | null; loginId: string | null };
  organisation: { id: number; kind: OrgKind; slug: string; name: string } | null;
  consumer: {
    id: number;
    name: string;
    email: string | null;
    mobile: string | null;
    supplier: { id: number; name: string };
    accounts: {
      id: number;
      mode: MeterMode;
      billingCycleDay: number;
      currency: string;
      meters: string[];
    }[];
  } | null;
}

/** Who the user is: for staff their organisation, for consumers their profile and accounts. */
export async function loadProfile(q: Q, userId: number): Promise<Profile> {
  const u = (
    await q.query<{
      id: number;
      role: Role;
      display_name: string;
      email: string | null;
      login_id: string | null;
      org_id: number | null;
      org_kind: OrgKind | null;
      org_slug: string | null;
      org_name: string | null;
    }>(
      `SELECT u.id, u.role, u.display_name, u.email, u.login_id, o.id AS org_id, o.kind AS org_kind,
              o.slug AS org_slug, o.name AS org_name
         FROM users u LEFT JOIN organisations o ON o.id = u.org_id WHERE u.id = $1`,
      [userId],
    )
  ).rows[0];
  if (!u) throw new Error(`user ${userId} vanished`);
  const profile: Profile = {
    user: { id: u.id, role: u.role, displayName: u.display_name, email: u.email, loginId: u.login_id },
    organisation:
      u.org_id !== null ? { id: u.org_id, kind: u.org_kind!, slug: u.org_slug!, name: u.org_name! } : null,
    consumer: null,
  };
  if (u.role !== 'consumer') return profile;
  const c = (
    await q.query<{
      id: number;
      name: string;
      email: string | null;
      mobile: string | null;
      supplier_id: number;
      supplier_name: string;
    }>(
      `SELECT c.id, c.name, c.email, c.mobile, c.supplier_id, o.name AS supplier_name
         FROM consumers c JOIN organisations o ON o.id = c.supplier_id WHERE c.user_id = $1`,
      [userId],
    )
  ).rows[0];
  if (!c) return profile;
  const accounts = await q.query<{
    id: number;
    mode: MeterMode;
    billing_cycle_day: number;
    currency: string;
    meters: string[];
  }>(
    `SELECT a.id, a.mode, a.billing_cycle_day, a.currency,
            coalesce(array_agg(m.serial ORDER BY m.serial) FILTER (WHERE m.id IS NOT NULL), '{}') AS meters
       FROM accounts a LEFT JOIN meters m ON m.account_id = a.id
      WHERE a.consumer_id = $1 GROUP BY a.id ORDER BY a.id`,
    [c.id],
  );
  profile.consumer = {
    id: c.id,
    name: c.name,
    email: c.email,
    mobile: c.mobile,
    supplier: { id: c.supplier_id, name: c.supplier_name },
    accounts: accounts.rows.map((a) => ({
      id: a.id,
      mode: a.mode,
      billingCycleDay: a.billing_cycle_day,
      currency: a.currency,
      meters: a.meters,
    })),
  };
  return profile;
}
