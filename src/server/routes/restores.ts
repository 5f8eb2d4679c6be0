import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, OperationSchema, RestoreCreateSchema } from '../../core/api.js';
import type { ServerContext } from '../context.js';
import { listNodes } from '../db/clusters.js';
import { getOperation, getRunningOperation } from '../db/operations.js';
import { operationRunning } from '../clusters.js';
import { chooseRestoreSource } from '../operations/restore-source.js';
import { nodeConnected, operationViews } from '../views.js';
import { ClusterParams, errors, resolveCluster } from './common.js';

type Params = Static<typeof ClusterParams>;

export function restoreRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Params: Params; Body: Static<typeof RestoreCreateSchema> }>(
    `${API_PREFIX}/clusters/:id/restores`,
    {
      schema: {
        tags: ['operations'],
        summary: 'Restore the whole cluster to a snapshot (an operation: Started → Shutdown → Restore → RestartCluster → Finished | Failed, rolled back). Refused before anything starts when the snapshot is missing or failed, the mode is not allowed by its metadata, an agent is not connected, or another operation runs.',
        params: ClusterParams,
        body: RestoreCreateSchema,
        response: { 202: OperationSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (req, reply) => {
      const cluster = await resolveCluster(ctx, req.params.id);
      const running = await getRunningOperation(ctx.db, cluster.id);
      if (running) throw operationRunning(running.id, cluster.id);
      const { snapshot, mode, storage } = req.body;
      const params = { snapshot, mode, ...(storage ? { storage } : {}) };
      // Every check that can refuse runs now: nothing starts unless the restore can.
      await chooseRestoreSource(ctx.db, cluster, await listNodes(ctx.db, cluster.id), params, (n) => nodeConnected(ctx, n), true);
      const op = await ctx.engine.start('restore', cluster.id, params);
      // Started records its decisions and sends restore-prepare before the answer.
      await ctx.engine.evaluate(op.id);
      const [view] = await operationViews(ctx, [(await getOperation(ctx.db, op.id)) ?? op]);
      return reply.code(202).header('location', `${API_PREFIX}/operations/${op.id}`).send(view);
    },
  );
}
