import { Type } from '@sinclair/typebox';
import { ErrorBodySchema } from '../../core/api.js';
import { EtcdsnapError } from '../../core/errors.js';
import type { ServerContext } from '../context.js';
import { getCluster, getClusterByName, type ClusterRow } from '../db/clusters.js';

/** Path parameter of cluster routes: the cluster's id or its name. */
export const ClusterParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });

/** Error responses for the OpenAPI document. */
export const errors = (...statuses: number[]): Record<number, typeof ErrorBodySchema> => Object.fromEntries(statuses.map((s) => [s, ErrorBodySchema]));

/** A cluster by id, or by name (the CLI takes names); NOT_FOUND otherwise. */
export async function resolveCluster(ctx: ServerContext, idOrName: string): Promise<ClusterRow> {
  const row = (await getCluster(ctx.db, idOrName)) ?? (await getClusterByName(ctx.db, idOrName));
  if (!row) throw new EtcdsnapError('NOT_FOUND', `Cluster ${idOrName} not found: list clusters with GET /api/v1/clusters.`, { details: { cluster: idOrName } });
  return row;
}
