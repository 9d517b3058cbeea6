import { z } from 'zod';
import { METER_MODES, ORG_KINDS, ROLES, STAFF_ROLES } from './enums.ts';

export const meResponse = z.object({
  user: z.object({
    id: z.number(),
    role: z.enum(ROLES),
    displayName: z.string(),
    email: z.string().nullable(),
    consumerId: z.string().nullable().describe('The consumer ID used to sign in (consumers only)'),
    staffRole: z.enum(STAFF_ROLES).nullable().describe('Supplier and operator staff: agent or admin'),
    mustChangePassword: z
      .boolean()
      .optional()
      .describe('Signed in with an initial password: everything else answers 403 PASSWORD_CHANGE_REQUIRED'),
  }),
  capabilities: z
    .array(z.string())
    .describe("What the user may do beyond reading their own meters (e.g. 'fleet.read', 'approvals.decide')"),
  organisation: z
    .object({ id: z.number(), kind: z.enum(ORG_KINDS), slug: z.string(), name: z.string() })
    .nullable(),
  consumer: z
    .object({
      id: z.number(),
      name: z.string(),
      email: z.string().nullable(),
      mobile: z.string().nullable(),
      supplier: z.object({ id: z.number(), name: z.string() }),
      accounts: z.array(
        z.object({
          id: z.number(),
          mode: z.enum(METER_MODES),
          billingCycleDay: z.number().int().describe('Day of month (1..28) the billing period starts'),
          currency: z.string().describe('ISO 4217'),
          meters: z.array(z.string()).describe('Meter serials on the account'),
        }),
      ),
    })
    .nullable(),
});
export type Me = z.infer<typeof meResponse>;
