import type { ContentSummary } from '../core/metadata.js';

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
