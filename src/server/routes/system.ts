import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../core/api.js';
import { EtcdsnapError } from '../../core/errors.js';
import type { ServerContext } from '../context.js';
import { ping } from '../db/migrations.js';
import type { Kysely } from 'kysely';

/** `/cacerts` and `/healthz` (public), `/metrics` and the OpenAPI document (admin). */
export function systemRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get(
    '/cacerts',
    { config: { auth: 'public' }, schema: { tags: ['system'], security: [], summary: 'The server CA (PEM), unauthenticated like Rancher’s: agents check its sha256 against the join command' } },
    async (_req, reply) => {
      if (!ctx.tls?.caPem) throw new EtcdsnapError('NOT_FOUND', ctx.tls ? 'This server uses a given certificate without a CA file (--tls-ca): agents use the system trust store.' : 'This server runs plain HTTP: there is no CA.');
      return reply.type('application/x-pem-file').send(ctx.tls.caPem);
    },
  );

  app.get('/healthz', { config: { auth: 'public' }, schema: { tags: ['system'], security: [], summary: 'Liveness: "ok" when the database answers' } }, async (_req, reply) => {
    await ping(ctx.db as unknown as Kysely<unknown>);
    return reply.type('text/plain').send('ok\n');
  });

  app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus metrics (admin token)' } }, async (_req, reply) => {
    const text = await ctx.metrics.registry.metrics();
    return reply.type(ctx.metrics.registry.contentType).send(text);
  });

  app.get(`${API_PREFIX}/openapi.json`, { schema: { tags: ['system'], summary: 'This API as an OpenAPI 3 document' } }, async () => app.swagger());
}
