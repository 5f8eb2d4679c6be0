import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, OperationSchema } from '../../core/api.js';
import { EtcdsnapError } from '../../core/errors.js';
import type { ServerContext } from '../context.js';
import { getOperation, listOperations } from '../db/operations.js';
import { operationViews } from '../views.js';
import { errors, resolveCluster } from './common.js';

const tags = ['operations'];
const ListQuery = Type.Object(
  { clusterId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) },
  { additionalProperties: false },
);
const OpParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

export function operationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Querystring: Static<typeof ListQuery> }>(
    `${API_PREFIX}/operations`,
    { schema: { tags, summary: 'Operations, newest first (optionally of one cluster, by id or name)', querystring: ListQuery, response: { 200: Type.Array(OperationSchema), ...errors(400, 401, 403, 404) } } },
    async (req) => {
      const clusterId = req.query.clusterId ? (await resolveCluster(ctx, req.query.clusterId)).id : undefined;
      return operationViews(ctx, await listOperations(ctx.db, { clusterId, limit: req.query.limit }));
    },
  );

  app.get<{ Params: Static<typeof OpParams> }>(
    `${API_PREFIX}/operations/:id`,
    { schema: { tags, summary: 'One operation: phase, per-node steps, history, failure', params: OpParams, response: { 200: OperationSchema, ...errors(401, 403, 404) } } },
    async (req) => {
      const row = await getOperation(ctx.db, req.params.id);
      if (!row) throw new EtcdsnapError('NOT_FOUND', `Operation ${req.params.id} not found.`, { details: { operationId: req.params.id } });
      return (await operationViews(ctx, [row]))[0];
    },
  );
}
