import type { KeyObject } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Config } from '../config.ts';
import type { Pool, Who } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { AppError } from '../errors.ts';
import type { Actor } from '../policies.ts';

/** What the API needs from the process that hosts it. */
export interface ApiDeps {
  pool: Pool;
  config: Config;
  log: Logger;
  /** Ed25519 private key that signs meter commands. */
  commandKey: KeyObject;
  /**
   * Readiness of this process: `started: false` while it still waits for the database or
   * starts its services (the API answers 503 meanwhile); `mqtt: false` when the process's
   * gateway has lost the broker.
   */
  ready?: () => { started?: boolean; mqtt: boolean };
}

/**
 * A group of routes: a Fastify plugin that receives the API's dependencies. Each route:
 * validate (zod, from @kilowire/contract) -> authenticate (the app's hook) -> authorise
 * (policies) -> call the domain, in `withTx` when it changes something (the audit row
 * commits with the change) -> present.
 */
export type Routes = FastifyPluginAsyncZod<ApiDeps>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the session hook for /api routes; null on public routes. */
    actor: Actor | null;
  }
  interface FastifyContextConfig {
    /** An /api route reachable without a session (login, session state). Every other /api route needs one. */
    public?: boolean;
    /**
     * A provider's webhook, authenticated by its signature: exempt from the browser CSRF walls
     * (content type and origin), which a server-to-server caller has no reason to satisfy.
     */
    signedWebhook?: boolean;
  }
}

/** The signed-in actor of a route that requires a session (the hook guarantees it). */
export function actorOf(req: FastifyRequest): Actor {
  if (!req.actor) throw new AppError('UNAUTHENTICATED', 'sign in first');
  return req.actor;
}

/** Who is making a change, for its audit row. */
export function whoOf(req: FastifyRequest): Who {
  return { actorId: req.actor?.userId ?? null, ip: req.ip };
}

export function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

/** ISO 8601 with the zone's UTC offset at that instant, e.g. 2026-10-25T01:30:00+01:00. */
export { isoWithOffset as isoInZone } from '@kilowire/protocol';

/** Page cursors are opaque: base64url of the last id returned. */
export function encodeIdCursor(id: number): string {
  return Buffer.from(String(id)).toString('base64url');
}

export function decodeIdCursor(cursor: string | undefined): number | null {
  if (cursor === undefined) return null;
  const s = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[1-9]\d{0,15}$/.test(s)) throw badCursor();
  return Number(s);
}

/** Cursors over serials: base64url of the last serial of the page. */
export function encodeSerialCursor(serial: string): string {
  return Buffer.from(serial, 'utf8').toString('base64url');
}

export function decodeSerialCursor(c: string | undefined): string | null {
  if (c === undefined) return null;
  const s = Buffer.from(c, 'base64url').toString('utf8');
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(s) || encodeSerialCursor(s) !== c) throw badCursor();
  return s;
}

function badCursor(): AppError {
  return new AppError('VALIDATION', 'query.cursor: not a cursor from this API', [
    { path: 'query.cursor', message: 'not a cursor from this API' },
  ]);
}
