import { z } from 'zod';
import { loadProfile } from '../../accounts/profile.ts';
import { actorOf, errorResponses, type ApiApp, type ApiDeps } from '../http.ts';

const meResponse = z.object({
  user: z.object({
    id: z.number(),
    role: z.enum(['consumer', 'supplier', 'operator', 'admin']),
    displayName: z.string(),
    email: z.string().nullable(),
    consumerId: z.string().nullable().describe('The consumer ID used to sign in (consumers only)'),
  }),
  organisation: z
    .object({
      id: z.number(),
      kind: z.enum(['supplier', 'network_operator', 'platform']),
      slug: z.string(),
      name: z.string(),
    })
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
          mode: z.enum(['credit', 'prepayment']),
          billingCycleDay: z.number().int().describe('Day of month (1..28) the billing period starts'),
          currency: z.string().describe('ISO 4217'),
          meters: z.array(z.string()).describe('Meter serials on the account'),
        }),
      ),
    })
    .nullable(),
});

export function meRoutes(app: ApiApp, deps: ApiDeps): void {
  app.get(
    '/api/me',
    {
      schema: {
        tags: ['session'],
        summary: 'The signed-in user, their organisation, and for consumers their profile and accounts',
        response: { 200: meResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const p = await loadProfile(deps.pool, actor.userId);
      return {
        user: {
          id: p.user.id,
          role: p.user.role,
          displayName: p.user.displayName,
          email: p.user.email,
          consumerId: p.user.loginId,
        },
        organisation: p.organisation,
        consumer: p.consumer,
      };
    },
  );
}
