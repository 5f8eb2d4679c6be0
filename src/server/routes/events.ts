import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, type ServerEvent } from '../../core/api.js';
import type { ServerContext } from '../context.js';
import { eventClusterId, sseFrame } from '../events.js';
import { errors, resolveCluster } from './common.js';

const Query = Type.Object(
  {
    clusterId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    /** For EventSource, which cannot send headers. Prefer the header: URLs end up in proxy logs. */
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  { additionalProperties: false },
);

/** Open streams, ended when the server closes (they would hold it open otherwise). */
export class EventStreams {
  private readonly ends = new Set<() => void>();
  add(end: () => void): () => void {
    this.ends.add(end);
    return () => this.ends.delete(end);
  }
  closeAll(): void {
    for (const end of [...this.ends]) end();
  }
}

/**
 * `GET /api/v1/events`: server-sent events (`event:` the ServerEvent type, `data:` its JSON, `id:`
 * a counter), optionally of one cluster, with a comment line every 15 s so proxies keep it open.
 */
export function eventRoutes(app: FastifyInstance, ctx: ServerContext, streams: EventStreams): void {
  app.get<{ Querystring: Static<typeof Query> }>(
    `${API_PREFIX}/events`,
    {
      config: { queryToken: true },
      schema: {
        tags: ['events'],
        summary: 'Live events (text/event-stream): operation, snapshot, cluster, node. Bearer header, or ?token= for EventSource',
        querystring: Query,
        response: { ...errors(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      const only = req.query.clusterId ? (await resolveCluster(ctx, req.query.clusterId)).id : undefined;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(`retry: 3000\n: connected\n\n`);
      let seq = 0;
      const unsubscribe = ctx.events.subscribe((event: ServerEvent) => {
        if (only && eventClusterId(event) !== only) return;
        res.write(sseFrame(event, ++seq));
      });
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), ctx.config.sseHeartbeatMs);
      let removeStream: () => unknown = () => undefined;
      const end = (): void => {
        clearInterval(heartbeat);
        unsubscribe();
        removeStream();
        if (!res.writableEnded) res.end();
      };
      removeStream = streams.add(end);
      res.once('close', end);
      req.log.debug({ clusterId: only ?? null }, 'event stream opened');
    },
  );
}
