import type { KeyObject } from 'node:crypto';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
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
  /** Readiness of other subsystems in this process; `mqtt: false` makes /readyz 503. */
  ready?: () => { mqtt: boolean };
}

/** The Fastify instance routes register on: zod schemas give validation, types and OpenAPI. */
export type ApiApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the session hook for /api routes; null on public routes. */
    actor: Actor | null;
  }
  interface FastifyContextConfig {
    /** An /api route reachable without a session (login only). Every other /api route needs one. */
    public?: boolean;
  }
}

/** The signed-in actor of a route that requires a session (the hook guarantees it). */
export function actorOf(req: FastifyRequest): Actor {
  if (!req.actor) throw new AppError('UNAUTHENTICATED', 'sign in first');
  return req.actor;
}

// ---- shared schemas -------------------------------------------------------------------

export const errorBody = z
  .object({
    error: z.object({
      code: z.string().describe('Stable machine-readable code, e.g. NOT_FOUND, VALIDATION'),
      message: z.string(),
      issues: z
        .array(z.object({ path: z.string().describe('e.g. query.date or body.type'), message: z.string() }))
        .optional(),
    }),
  })
  .describe('Error');

/** Error responses documented on every route. */
export const errorResponses = {
  400: errorBody,
  401: errorBody,
  403: errorBody,
  404: errorBody,
  429: errorBody,
  500: errorBody,
} as const;

export const serialParams = z.object({
  serial: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/, 'serial: letters, digits, . _ -'),
});

/** A real calendar date, YYYY-MM-DD. */
export const isoDate = z.iso.date();
/** A calendar month, YYYY-MM. */
export const isoMonth = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'expected YYYY-MM');

export const timestamp = z.string().describe('ISO 8601 instant');

// One calendar for gateway, API and portal lives in the protocol package; routes keep these names.
export { daysBetween, isoWithOffset as isoInZone } from '@kilowire/protocol';

export function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}
