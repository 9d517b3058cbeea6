import { z } from 'zod';
import { API_ERROR_CODES } from './enums.ts';

/** Years the API accepts in dates: what meters can have measured (the wire contract's range). */
export const FIRST_YEAR = 2000;
export const LAST_YEAR = 2099;

export const errorBody = z
  .object({
    error: z.object({
      code: z.enum(API_ERROR_CODES).describe('Stable machine-readable code, e.g. NOT_FOUND, VALIDATION'),
      message: z.string(),
      issues: z
        .array(z.object({ path: z.string().describe('e.g. query.date or body.type'), message: z.string() }))
        .optional(),
    }),
  })
  .describe('Error');
export type ErrorBody = z.infer<typeof errorBody>;

/** Error responses every route can give. */
export const errorResponses = {
  400: errorBody.describe('Invalid input (VALIDATION), with the offending fields in `issues`'),
  401: errorBody.describe('Not signed in (UNAUTHENTICATED)'),
  403: errorBody.describe(
    'Not permitted for this role (FORBIDDEN), or a request from a foreign origin (FOREIGN_ORIGIN)',
  ),
  404: errorBody.describe('No such resource, or not yours (NOT_FOUND)'),
  414: errorBody.describe('URL too long (URI_TOO_LONG)'),
  429: errorBody.describe('Too many requests (RATE_LIMITED); see Retry-After'),
  500: errorBody.describe('A fault on our side (INTERNAL)'),
  503: errorBody.describe('Starting, or the database is unavailable (UNAVAILABLE)'),
} as const;

/** Extra error responses of routes that take a body. */
export const bodyErrorResponses = {
  413: errorBody.describe('Body larger than 64 KiB (PAYLOAD_TOO_LARGE)'),
  415: errorBody.describe('Body not sent as application/json (UNSUPPORTED_MEDIA_TYPE)'),
} as const;

export const serial = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, 'serial: letters, digits, . _ -');
export const serialParams = z.object({ serial });

const inRange = (year: number) => year >= FIRST_YEAR && year <= LAST_YEAR;

/** A real calendar date, YYYY-MM-DD, in the years meters can have measured. */
export const isoDate = z.iso
  .date()
  .refine((d) => inRange(Number(d.slice(0, 4))), `dates from ${FIRST_YEAR}-01-01 to ${LAST_YEAR}-12-31`);
/** A calendar month, YYYY-MM. */
export const isoMonth = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'expected YYYY-MM')
  .refine((m) => inRange(Number(m.slice(0, 4))), `months from ${FIRST_YEAR}-01 to ${LAST_YEAR}-12`);
/** An ISO 8601 instant with an offset, in the same years. */
export const isoInstant = z.iso
  .datetime({ offset: true })
  .refine((t) => inRange(new Date(t).getUTCFullYear()), `instants from ${FIRST_YEAR} to ${LAST_YEAR}`);

export const timestamp = z.string().describe('ISO 8601 instant');

/** An opaque page cursor (the nextCursor of the previous page). */
export const cursor = z.string().min(1).max(200).describe('nextCursor of the previous page');

export const limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);
