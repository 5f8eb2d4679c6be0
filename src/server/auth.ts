import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EtcdsnapError } from '../core/errors.js';
import type { ServerContext } from './context.js';
import { hashToken, sameDigest } from './crypto.js';
import { findToken } from './db/clusters.js';

/**
 * Who may call a route, from its `config.auth` (default `admin`, so a new route cannot forget):
 * - `admin`: the admin token (node tokens get 403);
 * - `node`: a node token, for `/api/v1/agent/*` (the route checks it is the caller's own node);
 * - `registration`: a cluster's registration token, in the body or as the bearer (agent registration);
 * - `public`: nothing (`/cacerts`, `/healthz`).
 * `config.queryToken` also accepts `?token=` (EventSource cannot set headers).
 */
export type AuthMode = 'admin' | 'node' | 'registration' | 'public';
export type Principal = { kind: 'admin' } | { kind: 'node'; nodeId: string; clusterId: string };

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthMode;
    queryToken?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function unauthorized(message = 'Missing bearer token: send "Authorization: Bearer <token>".'): EtcdsnapError {
  return new EtcdsnapError('UNAUTHORIZED', message);
}

/** The bearer token of a request (header), or of `?token=` where the route allows it. */
export function bearerToken(req: FastifyRequest, allowQuery = false): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m) return m[1];
  }
  if (allowQuery) {
    const q = (req.query as Record<string, unknown> | undefined)?.token;
    if (typeof q === 'string' && q.length > 0) return q;
  }
  return undefined;
}

export async function principalOf(ctx: ServerContext, token: string): Promise<Principal | undefined> {
  const hash = hashToken(token);
  const row = await findToken(ctx.db, hash);
  if (!row || !sameDigest(row.hash, hash)) return undefined;
  if (row.kind === 'admin') return { kind: 'admin' };
  if (row.node_id && row.cluster_id) return { kind: 'node', nodeId: row.node_id, clusterId: row.cluster_id };
  return undefined;
}

export function installAuth(app: FastifyInstance, ctx: ServerContext): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config ?? {};
    const mode: AuthMode = config.auth ?? 'admin';
    if (mode === 'public' || mode === 'registration') return;
    const token = bearerToken(req, config.queryToken === true);
    if (!token) throw unauthorized();
    const principal = await principalOf(ctx, token);
    if (!principal) throw unauthorized('Invalid or revoked token.');
    if (mode === 'admin' && principal.kind !== 'admin') throw new EtcdsnapError('FORBIDDEN', 'A node token may only call /api/v1/agent/* for its own node.');
    if (mode === 'node' && principal.kind !== 'node') throw new EtcdsnapError('FORBIDDEN', 'Agent routes need a node token (from POST /api/v1/agent/register).');
    req.principal = principal;
  });
}

/** The node principal of an agent route (installAuth guarantees it). */
export function nodePrincipal(req: FastifyRequest): { nodeId: string; clusterId: string } {
  const p = req.principal;
  if (!p || p.kind !== 'node') throw new EtcdsnapError('FORBIDDEN', 'Agent routes need a node token.');
  return p;
}
