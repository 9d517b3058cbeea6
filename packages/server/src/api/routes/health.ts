import { z } from 'zod';
import { registry } from '../../metrics.ts';
import type { ApiApp, ApiDeps } from '../http.ts';

const health = z.object({
  status: z.enum(['ok', 'unavailable']),
  db: z.boolean().optional(),
  mqtt: z.boolean().optional(),
});

/** Probes and metrics: no session, no /api prefix (load balancers and Prometheus call these). */
export function healthRoutes(app: ApiApp, deps: ApiDeps): void {
  app.get(
    '/healthz',
    { schema: { tags: ['ops'], summary: 'Liveness: the process is up', response: { 200: health } } },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Readiness: the database answers and the broker connection (if any) is up',
        response: { 200: health, 503: health },
      },
    },
    async (_req, reply) => {
      let db = false;
      try {
        await deps.pool.query('SELECT 1');
        db = true;
      } catch (err) {
        deps.log.warn({ err }, 'readiness: database check failed');
      }
      const mqtt = deps.ready?.().mqtt !== false;
      const ok = db && mqtt;
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', db, mqtt });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics (text exposition format)',
        response: { 200: z.string() },
      },
    },
    async (_req, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    },
  );
}
