import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, OperationSchema, SnapshotCreateSchema, SnapshotRecordSchema } from '../../core/api.js';
import { toEtcdsnapError } from '../../core/errors.js';
import { createS3Target } from '../../storage/s3.js';
import { clusterPolicy, clusterSecrets } from '../clusters.js';
import type { ServerContext } from '../context.js';
import { getOperation } from '../db/operations.js';
import { listSnapshots } from '../db/snapshots.js';
import { joinS3, mergeS3Input } from '../policy.js';
import { deleteRecord } from '../records.js';
import { operationViews, snapshotView } from '../views.js';
import { ClusterParams, errors, resolveCluster } from './common.js';
import { EtcdsnapError } from '../../core/errors.js';

type Params = Static<typeof ClusterParams>;
const tags = ['snapshots'];

const ListQuery = Type.Object(
  { storage: Type.Optional(Type.Union([Type.Literal('local'), Type.Literal('s3')])), state: Type.Optional(Type.Union([Type.Literal('successful'), Type.Literal('failed')])) },
  { additionalProperties: false },
);
const RecordParams = Type.Object({ id: ClusterParams.properties.id, recordId: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false });
const DeleteResultSchema = Type.Object({ id: Type.String(), deleted: Type.Boolean(), node: Type.Union([Type.String(), Type.Null()]), taskId: Type.Union([Type.String(), Type.Null()]) });
const ReconcileSchema = Type.Object({
  clusterId: Type.String(),
  added: Type.Integer(),
  updated: Type.Integer(),
  removed: Type.Integer(),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
});
const StepError = Type.Object({ code: Type.String(), message: Type.String() });
const S3TestSchema = Type.Object({
  ok: Type.Boolean(),
  failedStep: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([StepError, Type.Null()]),
  steps: Type.Array(Type.Object({ step: Type.String(), ok: Type.Boolean(), durationMs: Type.Integer(), error: Type.Optional(StepError) })),
});
const S3TestBody = Type.Object({ s3: Type.Optional(Type.Unknown()) }, { additionalProperties: false });

export function snapshotRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: Params; Querystring: Static<typeof ListQuery> }>(
    `${API_PREFIX}/clusters/:id/snapshots`,
    { schema: { tags, summary: 'Snapshot records, newest first', params: ClusterParams, querystring: ListQuery, response: { 200: Type.Array(SnapshotRecordSchema), ...errors(400, 401, 403, 404) } } },
    async (req) => (await listSnapshots(ctx.db, (await resolveCluster(ctx, req.params.id)).id, req.query)).map(snapshotView),
  );

  app.post<{ Params: Params; Body: Static<typeof SnapshotCreateSchema> | undefined }>(
    `${API_PREFIX}/clusters/:id/snapshots`,
    {
      schema: {
        tags,
        summary: 'Take a one-time snapshot on every node (an operation: Started → RestartCluster → Finished | Failed)',
        params: ClusterParams,
        body: Type.Union([SnapshotCreateSchema, Type.Null()]),
        response: { 202: OperationSchema, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const cluster = await resolveCluster(ctx, req.params.id);
      const op = await ctx.engine.start('snapshot', cluster.id, req.body?.name ? { name: req.body.name } : {});
      // The health check runs now, so an unhealthy cluster is answered with a Failed operation at once.
      await ctx.engine.evaluate(op.id);
      const [view] = await operationViews(ctx, [(await getOperation(ctx.db, op.id)) ?? op]);
      return reply.code(202).header('location', `${API_PREFIX}/operations/${op.id}`).send(view);
    },
  );

  app.delete<{ Params: Static<typeof RecordParams> }>(
    `${API_PREFIX}/clusters/:id/snapshots/:recordId`,
    {
      schema: {
        tags,
        summary: 'Delete a snapshot: S3 at once (200); local through its node (202, the record goes when the agent reports the files deleted)',
        params: RecordParams,
        response: { 200: DeleteResultSchema, 202: DeleteResultSchema, ...errors(401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const result = await deleteRecord(ctx, (await resolveCluster(ctx, req.params.id)).id, req.params.recordId);
      return reply.code(result.deleted ? 200 : 202).send(result);
    },
  );

  app.post<{ Params: Params }>(
    `${API_PREFIX}/clusters/:id/snapshots/reconcile`,
    { schema: { tags, summary: 'Reconcile the S3 records with the bucket listing now', params: ClusterParams, response: { 200: ReconcileSchema, ...errors(401, 403, 404) } } },
    async (req) => {
      const id = (await resolveCluster(ctx, req.params.id)).id;
      return (await ctx.reconciler.reconcile(id)) ?? { clusterId: id, added: 0, updated: 0, removed: 0, error: null };
    },
  );

  app.post<{ Params: Params; Body: Static<typeof S3TestBody> | undefined }>(
    `${API_PREFIX}/clusters/:id/s3/test`,
    {
      schema: {
        tags: ['clusters'],
        summary: 'Test S3 settings (the stored ones, or those in the body; secrets left out fall back to the stored ones): list, write, read, delete',
        params: ClusterParams,
        body: Type.Union([S3TestBody, Type.Null()]),
        response: { 200: S3TestSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const cluster = await resolveCluster(ctx, req.params.id);
      const stored = clusterPolicy(cluster).s3;
      const secrets = clusterSecrets(ctx, cluster);
      let config;
      if (req.body?.s3 !== undefined) config = mergeS3Input(req.body.s3, { s3: stored, secrets });
      else if (stored) config = joinS3(stored, secrets);
      else throw new EtcdsnapError('INVALID_CONFIG', `Cluster ${cluster.name} has no S3 settings: send them in the body as {"s3": {...}} to test them.`);
      const target = createS3Target(config, { clusterId: cluster.id });
      try {
        const check = await target.testConnection();
        const error = check.error ? toEtcdsnapError(check.error) : undefined;
        return { ok: check.ok, failedStep: check.failedStep ?? null, error: error ? { code: error.code, message: error.message } : null, steps: check.steps };
      } finally {
        target.close();
      }
    },
  );
}
