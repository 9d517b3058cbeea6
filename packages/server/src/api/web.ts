import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Longest path parameter the API routes accept (a serial is at most 64). */
export const MAX_PARAM_LENGTH = 200;

/** The built portal (`npm run build:web`), served from the API's origin so the session cookie just works. */
export const WEB_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web/dist');

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  // Scripts only from this origin; the SVG charts set inline style attributes.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
};

/**
 * One public catch-all GET route: a file of the build if it exists (hashed assets cached
 * for a year), else index.html so the portal's own router handles deep links. API and docs
 * paths never fall through to the portal: they keep their JSON 404.
 */
export async function webRoutes(app: FastifyInstance, dist = WEB_DIST): Promise<void> {
  const built = existsSync(path.join(dist, 'index.html'));
  if (built) await app.register(fastifyStatic, { root: dist, serve: false });
  app.get('/*', { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    const url = req.url.split('?')[0]!;
    if (url.startsWith('/api/') || url === '/api' || url.startsWith('/docs') || url === '/metrics') {
      // An API path that matched no route because a segment is longer than any parameter may be.
      if (url.split('/').some((seg) => seg.length > MAX_PARAM_LENGTH)) {
        return reply
          .code(414)
          .send({ error: { code: 'URI_TOO_LONG', message: 'a path segment is too long' } });
      }
      return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such route' } });
    }
    void reply.headers(SECURITY_HEADERS);
    if (!built) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The portal is not built: run `npm run build:web` (npm start does it for you).');
    }
    const rel = decodeURIComponent(url).replace(/^\/+/, '');
    const file = path.resolve(dist, rel);
    // Inside dist only (no ../ escapes), a real file, and not the build manifest.
    if (
      rel &&
      file.startsWith(dist + path.sep) &&
      !rel.startsWith('.') &&
      existsSync(file) &&
      !file.endsWith(path.sep)
    ) {
      const immutable = rel.startsWith('assets/');
      return reply.sendFile(rel, { maxAge: immutable ? 365 * 86_400_000 : 0, immutable, dotfiles: 'deny' });
    }
    void reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html', { maxAge: 0 });
  });
}
