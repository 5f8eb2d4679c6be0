import type { ContentSummary } from '../core/metadata.js';
import { prefixRangeEnd } from '../etcd/endpoint.js';

export const OTHER_RESOURCE = '(other)';

/** `/registry/pods/ns/name` → `pods`; anything outside `/registry/<resource>/` → `(other)`. */
export function resourceOfKey(key: string): string {
  if (!key.startsWith('/registry/')) return OTHER_RESOURCE;
  const end = key.indexOf('/', 10);
  const resource = end === -1 ? '' : key.slice(10, end);
  return resource === '' ? OTHER_RESOURCE : resource;
}

/** Counts live keys per resource from pages of keys (as `rangeKeys` yields them). */
export async function summarizeKeys(pages: AsyncIterable<Buffer[]>, revision: number): Promise<ContentSummary> {
  const byResource: Record<string, number> = {};
  let keys = 0;
  for await (const page of pages) {
    for (const key of page) {
      const r = resourceOfKey(key.toString('utf8'));
      byResource[r] = (byResource[r] ?? 0) + 1;
      keys += 1;
    }
  }
  const sorted: Record<string, number> = {};
  for (const k of Object.keys(byResource).sort()) sorted[k] = byResource[k] as number;
  return { revision, keys, byResource: sorted };
}

export interface CountingSource {
  countRange(o: { key: Buffer; rangeEnd: Buffer; revision: number; endpoint: string }): Promise<number>;
  firstKey(o: { key: Buffer; rangeEnd: Buffer; revision: number; endpoint: string }): Promise<Buffer | undefined>;
}

/**
 * The same summary as {@link summarizeKeys}, from counts: finds each `/registry/<resource>/`
 * prefix by its first key and counts it with count_only (etcd walks its in-memory index and
 * reads no values); `(other)` is the total minus the resources. About two small requests per
 * resource instead of every key of the DB.
 */
export async function summarizeByCount(source: CountingSource, revision: number, endpoint: string): Promise<ContentSummary> {
  const all = { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), revision, endpoint };
  const keys = await source.countRange(all);
  const byResource: Record<string, number> = {};
  const registryEnd = prefixRangeEnd(Buffer.from('/registry/'));
  let from: Buffer = Buffer.from('/registry/');
  let counted = 0;
  for (;;) {
    const first = await source.firstKey({ key: from, rangeEnd: registryEnd, revision, endpoint });
    if (!first) break;
    const resource = resourceOfKey(first.toString('utf8'));
    if (resource === OTHER_RESOURCE) {
      from = Buffer.concat([first, Buffer.from([0])]); // e.g. `/registry/x`: counted under (other)
      continue;
    }
    const prefix = Buffer.from(`/registry/${resource}/`);
    const n = await source.countRange({ key: prefix, rangeEnd: prefixRangeEnd(prefix), revision, endpoint });
    byResource[resource] = n;
    counted += n;
    from = prefixRangeEnd(prefix);
  }
  if (keys - counted > 0) byResource[OTHER_RESOURCE] = keys - counted;
  const sorted: Record<string, number> = {};
  for (const k of Object.keys(byResource).sort()) sorted[k] = byResource[k] as number;
  return { revision, keys, byResource: sorted };
}
