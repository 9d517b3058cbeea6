import http from 'node:http';
import { registry } from '../metrics.ts';

/**
 * /metrics on a port of its own (METRICS_PORT), typically bound to a private address, so the
 * public port never serves it. Still honours METRICS_TOKEN when set.
 */
export async function startMetricsServer(
  port: number,
  host: string,
  token: string | undefined,
): Promise<() => Promise<void>> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      res
        .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' })
        .end('metrics need a bearer token\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
