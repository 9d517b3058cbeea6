import { errorResponses, meResponse } from '@kilowire/contract';
import { loadProfile } from '../../accounts/profile.ts';
import { CAPABILITY_ROLES, hasCapability, type Capability } from '../../policies.ts';
import { actorOf, type Routes } from '../http.ts';

export const meRoutes: Routes = async (app, deps) => {
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
          staffRole: actor.staffRole ?? null,
          mustChangePassword: actor.mustChangePassword === true,
        },
        // The portal shows what the user may do from the same table the API enforces.
        capabilities: (Object.keys(CAPABILITY_ROLES) as Capability[]).filter((c) => hasCapability(actor, c)),
        organisation: p.organisation,
        consumer: p.consumer,
      };
    },
  );
};
