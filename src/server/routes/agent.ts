import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { API_PREFIX } from '../../core/api.js';
import { AgentReportSchema, NodePlanSchema, RegistrationRequestSchema, RegistrationResponseSchema } from '../../core/plans.js';
import { EtcdsnapError } from '../../core/errors.js';
import { applyReport, clusterForRegistrationToken, registerNode, touchNode } from '../agents.js';
import { bearerToken, nodePrincipal, unauthorized } from '../auth.js';
import type { ServerContext } from '../context.js';
import { getNode, type ClusterRow, type NodeRow } from '../db/clusters.js';
import { errors } from './common.js';

const tags = ['agent'];
const PlanQuery = Type.Object(
  {
    /** The planId the agent applied last: the answer waits while the plan is still that one. */
    after: Type.Optional(Type.String({ maxLength: 64 })),
    /** Seconds to hold the request while nothing changes. Default 30; capped by the server (300). */
    wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, default: 30 })),
  },
  { additionalProperties: false },
);
const ReportResponse = Type.Object({ planId: Type.Union([Type.String(), Type.Null()]) });

const registered = new WeakMap<FastifyRequest, ClusterRow>();

async function callerNode(ctx: ServerContext, req: FastifyRequest): Promise<NodeRow> {
  const { nodeId } = nodePrincipal(req);
  const node = await getNode(ctx.db, nodeId);
  if (!node) throw unauthorized('This node was removed from its cluster: register again with the registration token.');
  return node;
}

export function agentRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: Static<typeof RegistrationRequestSchema> }>(
    `${API_PREFIX}/agent/register`,
    {
      config: { auth: 'registration' },
      schema: { tags, security: [], summary: 'Register a node with a cluster’s registration token (in the body); returns the node token', body: RegistrationRequestSchema, response: { 200: RegistrationResponseSchema, ...errors(400, 401) } },
      // Before validation: a caller without a valid token learns nothing about the schema.
      preValidation: async (req) => {
        const body = req.body as { registrationToken?: unknown } | null | undefined;
        const token = typeof body?.registrationToken === 'string' ? body.registrationToken : bearerToken(req);
        const cluster = token ? await clusterForRegistrationToken(ctx, token) : undefined;
        if (!cluster) throw unauthorized(token ? 'Invalid registration token: copy it again from the cluster’s join command.' : 'Missing registration token.');
        registered.set(req, cluster);
      },
    },
    async (req) => registerNode(ctx, registered.get(req) as ClusterRow, req.body),
  );

  app.get<{ Querystring: Static<typeof PlanQuery> }>(
    `${API_PREFIX}/agent/plan`,
    {
      config: { auth: 'node' },
      schema: {
        tags,
        summary: 'Long-poll the node’s plan: 200 with the plan when its id differs from `after`, else held until it changes or `wait` seconds pass (204)',
        querystring: PlanQuery,
        response: { 200: NodePlanSchema, ...errors(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const node = await callerNode(ctx, req);
      await touchNode(ctx, node);
      const waitMs = Math.min((req.query.wait ?? 30) * 1000, ctx.config.maxPlanWaitMs);
      const gone = new AbortController();
      const onClose = (): void => gone.abort();
      reply.raw.once('close', onClose);
      try {
        const plan = await ctx.plans.next(node.cluster_id, node.id, req.query.after, waitMs, gone.signal);
        if (plan === undefined) throw unauthorized('This node was removed from its cluster.');
        if (plan === null) return reply.code(204).send();
        return plan;
      } finally {
        reply.raw.off('close', onClose);
      }
    },
  );

  app.post<{ Body: Static<typeof AgentReportSchema> }>(
    `${API_PREFIX}/agent/report`,
    {
      config: { auth: 'node' },
      schema: {
        tags,
        summary: 'Report member status, task statuses, snapshots taken or deleted; returns the current planId',
        body: AgentReportSchema,
        response: { 200: ReportResponse, ...errors(400, 401, 403) },
      },
    },
    async (req) => {
      const node = await callerNode(ctx, req);
      await applyReport(ctx, node, req.body);
      const plan = await ctx.plans.compute(node.id);
      if (!plan) throw new EtcdsnapError('UNAUTHORIZED', 'This node was removed from its cluster.');
      return { planId: plan.planId };
    },
  );
}
