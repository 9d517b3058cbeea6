import { z } from 'zod';
import { health } from '@kilowire/contract';
import { registry } from '../../metrics.ts';
import type { Routes } from '../http.ts';

/** /readyz answers within this long whatever the database does (a hung server included). */
const READY_TIMEOUT_MS = 800;

/** Probes and metrics: no session, no /api prefix (load balancers and Prometheus call these). */
export const healthRoutes: Routes = async (app, deps) => {
  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        tags: ['ops'],
        summary: 'Liveness: the process is up',
        security: [],
        response: { 200: health },
      },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        tags: ['ops'],
        summary:
          'Readiness: started, the database answers within a second, the broker connection (if any) is up',
        security: [],
        response: { 200: health, 503: health },
      },
    },
    async (_req, reply) => {
      const r = deps.ready?.() ?? { mqtt: true };
      let timer: NodeJS.Timeout | undefined;
      const db = await Promise.race([
        deps.pool.query('SELECT 1').then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      const started = r.started !== false;
      const ok = started && db && r.mqtt;
      return reply
        .code(ok ? 200 : 503)
        .send({ status: ok ? 'ok' : started ? 'unavailable' : 'starting', db, mqtt: r.mqtt });
    },
  );

  // With METRICS_PORT set, /metrics lives on that port only (api/metrics-server.ts).
  if (deps.config.metrics.port !== undefined) return;
  const token = deps.config.metrics.token;
  app.get(
    '/metrics',
    {
      config: { public: true },
      schema: {
        tags: ['ops'],
        summary: token
          ? 'Prometheus metrics (text exposition format); needs Authorization: Bearer METRICS_TOKEN'
          : 'Prometheus metrics (text exposition format); set METRICS_TOKEN or METRICS_PORT in production',
        security: [],
        response: { 200: z.string(), 401: z.string() },
      },
    },
    async (req, reply) => {
      if (token && req.headers.authorization !== `Bearer ${token}`) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .type('text/plain')
          .send('metrics need a bearer token\n');
      }
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    },
  );
};
