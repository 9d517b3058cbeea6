import type { AreaCreate, Organisation, OrganisationCreate } from '@kilowire/contract';
import type { PoolClient, Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';

/** Organisations with their staff and meter counts, and network operators' areas and feeders. */
export async function listOrganisations(q: Q, id?: number): Promise<Organisation[]> {
  const { rows } = await q.query<{
    id: number;
    kind: Organisation['kind'];
    slug: string;
    name: string;
    created_at: Date;
    staff_count: number;
    meter_count: number;
    areas: Organisation['areas'];
  }>(
    `SELECT o.id, o.kind, o.slug, o.name, o.created_at,
            (SELECT count(*)::int FROM users u WHERE u.org_id = o.id) AS staff_count,
            CASE o.kind
              WHEN 'supplier' THEN (SELECT count(*)::int FROM meters m WHERE m.supplier_id = o.id AND m.status = 'active')
              WHEN 'network_operator' THEN (SELECT count(*)::int FROM meters m JOIN network_areas na ON na.id = m.area_id
                                            WHERE na.operator_id = o.id AND m.status = 'active')
              ELSE 0 END AS meter_count,
            coalesce((SELECT json_agg(json_build_object('id', na.id, 'name', na.name, 'feeders',
                        coalesce((SELECT json_agg(json_build_object('id', f.id, 'name', f.name) ORDER BY f.id)
                                    FROM feeders f WHERE f.area_id = na.id), '[]'::json)) ORDER BY na.id)
                        FROM network_areas na WHERE na.operator_id = o.id), '[]'::json) AS areas
       FROM organisations o
      WHERE o.kind <> 'platform' AND ($1::int IS NULL OR o.id = $1)
      ORDER BY o.kind, o.name`,
    [id ?? null],
  );
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    slug: r.slug,
    name: r.name,
    createdAt: r.created_at.toISOString(),
    staffCount: r.staff_count,
    meterCount: r.meter_count,
    areas: r.areas,
  }));
}

async function one(q: Q, id: number): Promise<Organisation> {
  const o = (await listOrganisations(q, id))[0];
  if (!o) throw new AppError('NOT_FOUND', 'no such organisation');
  return o;
}

export async function createOrganisation(c: PoolClient, o: OrganisationCreate): Promise<Organisation> {
  const { rows } = await c.query<{ id: number }>(
    `INSERT INTO organisations (kind, slug, name) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING RETURNING id`,
    [o.kind, o.slug, o.name],
  );
  if (!rows[0]) throw new AppError('CONFLICT', `the slug ${o.slug} is taken`);
  return one(c, rows[0].id);
}

export async function renameOrganisation(c: PoolClient, id: number, name: string): Promise<Organisation> {
  const r = await c.query(`UPDATE organisations SET name = $2 WHERE id = $1 AND kind <> 'platform'`, [
    id,
    name,
  ]);
  if (!r.rowCount) throw new AppError('NOT_FOUND', 'no such organisation');
  return one(c, id);
}

/** A network operator's area with its feeders (the outage grouping meters are placed in). */
export async function createArea(c: PoolClient, operatorId: number, a: AreaCreate): Promise<Organisation> {
  const org = await c.query<{ kind: string }>('SELECT kind FROM organisations WHERE id = $1', [operatorId]);
  if (!org.rows[0] || org.rows[0].kind === 'platform')
    throw new AppError('NOT_FOUND', 'no such organisation');
  if (org.rows[0].kind !== 'network_operator') {
    throw new AppError('CONFLICT', 'areas and feeders belong to network operators');
  }
  const taken = await c.query<{ id: string }>(
    'SELECT id FROM network_areas WHERE id = $1 UNION ALL SELECT id FROM feeders WHERE id = ANY($2)',
    [a.id, a.feeders.map((f) => f.id)],
  );
  if (taken.rowCount)
    throw new AppError('CONFLICT', `already in use: ${taken.rows.map((r) => r.id).join(', ')}`);
  await c.query('INSERT INTO network_areas (id, operator_id, name) VALUES ($1, $2, $3)', [
    a.id,
    operatorId,
    a.name,
  ]);
  for (const f of a.feeders) {
    await c.query('INSERT INTO feeders (id, area_id, name) VALUES ($1, $2, $3)', [f.id, a.id, f.name]);
  }
  return one(c, operatorId);
}
