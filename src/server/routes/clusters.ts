import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, ClusterCreateSchema, ClusterPatchSchema, ClusterSchema, JoinInfoSchema, NodeSchema } from '../../core/api.js';
import { createCluster, deleteCluster, joinInfo, patchCluster, removeNode, rotateRegistrationToken } from '../clusters.js';
import type { ServerContext } from '../context.js';
import { listClusters, listNodes } from '../db/clusters.js';
import { clusterViews, nodeView } from '../views.js';
import { ClusterParams, errors, resolveCluster } from './common.js';

type Params = Static<typeof ClusterParams>;
const tags = ['clusters'];

export function clusterRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const one = async (id: string): Promise<Static<typeof ClusterSchema>> => (await clusterViews(ctx, [await resolveCluster(ctx, id)]))[0] as Static<typeof ClusterSchema>;

  app.get(`${API_PREFIX}/clusters`, { schema: { tags, summary: 'List clusters', response: { 200: Type.Array(ClusterSchema), ...errors(401, 403) } } }, async () => clusterViews(ctx, await listClusters(ctx.db)));

  app.post<{ Body: Static<typeof ClusterCreateSchema> }>(
    `${API_PREFIX}/clusters`,
    { schema: { tags, summary: 'Create a cluster (policy defaults: enabled, "0 */5 * * *", retention 5, zstd, no S3)', body: ClusterCreateSchema, response: { 201: ClusterSchema, ...errors(400, 401, 403, 409) } } },
    async (req, reply) => {
      const row = await createCluster(ctx, req.body);
      return reply.code(201).send((await clusterViews(ctx, [row]))[0]);
    },
  );

  app.get<{ Params: Params }>(`${API_PREFIX}/clusters/:id`, { schema: { tags, summary: 'Show a cluster (by id or name)', params: ClusterParams, response: { 200: ClusterSchema, ...errors(401, 403, 404) } } }, async (req) => one(req.params.id));

  app.patch<{ Params: Params; Body: Static<typeof ClusterPatchSchema> }>(
    `${API_PREFIX}/clusters/:id`,
    {
      schema: {
        tags,
        summary: 'Edit a cluster: version, config, policy (an S3 secret left out is kept; null clears it)',
        params: ClusterParams,
        body: ClusterPatchSchema,
        response: { 200: ClusterSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const row = await resolveCluster(ctx, req.params.id);
      return (await clusterViews(ctx, [await patchCluster(ctx, row.id, req.body)]))[0];
    },
  );

  app.delete<{ Params: Params }>(
    `${API_PREFIX}/clusters/:id`,
    { schema: { tags, summary: 'Delete a cluster and its records (not the snapshot files); refused while an operation runs', params: ClusterParams, response: { ...errors(401, 403, 404, 409) } } },
    async (req, reply) => {
      const row = await resolveCluster(ctx, req.params.id);
      await deleteCluster(ctx, row.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: Params }>(
    `${API_PREFIX}/clusters/:id/join`,
    { schema: { tags, summary: 'How to start an agent on a node of this cluster', params: ClusterParams, response: { 200: JoinInfoSchema, ...errors(401, 403, 404) } } },
    async (req) => joinInfo(ctx, await resolveCluster(ctx, req.params.id)),
  );

  app.post<{ Params: Params }>(
    `${API_PREFIX}/clusters/:id/join/rotate`,
    { schema: { tags, summary: 'Replace the registration token (registered nodes keep working)', params: ClusterParams, response: { 200: JoinInfoSchema, ...errors(401, 403, 404) } } },
    async (req) => joinInfo(ctx, await rotateRegistrationToken(ctx, (await resolveCluster(ctx, req.params.id)).id)),
  );

  app.get<{ Params: Params }>(
    `${API_PREFIX}/clusters/:id/nodes`,
    { schema: { tags: ['nodes'], summary: 'Registered nodes (disconnected when unseen for 3 report intervals)', params: ClusterParams, response: { 200: Type.Array(NodeSchema), ...errors(401, 403, 404) } } },
    async (req) => (await listNodes(ctx.db, (await resolveCluster(ctx, req.params.id)).id)).map((n) => nodeView(ctx, n)),
  );

  const NodeParams = Type.Object({ id: ClusterParams.properties.id, nodeId: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
  app.delete<{ Params: Static<typeof NodeParams> }>(
    `${API_PREFIX}/clusters/:id/nodes/:nodeId`,
    { schema: { tags: ['nodes'], summary: 'Remove a node (decommissioned machine): its token stops working; its snapshot records stay', params: NodeParams, response: { ...errors(401, 403, 404) } } },
    async (req, reply) => {
      await removeNode(ctx, (await resolveCluster(ctx, req.params.id)).id, req.params.nodeId);
      return reply.code(204).send();
    },
  );
}
