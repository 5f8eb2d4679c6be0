/** Ages, times and sizes as an operator reads them. */

export function size(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function span(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 && h < 10 ? `${h} h ${m % 60} min` : `${h} h`;
  return `${Math.round(h / 24)} d`;
}

/** "5 min ago" / "in 3 h". */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const d = Date.parse(iso) - now;
  if (Math.abs(d) < 1500) return 'just now';
  return d < 0 ? `${span(d)} ago` : `in ${span(d)}`;
}

/** Exact local time with the UTC offset, for hover titles and dialogs. */
export function exact(iso: string | Date | null | undefined): string {
  if (!iso) return '';
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  const pad = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const tz = off === 0 ? 'UTC' : `UTC${off > 0 ? '+' : '-'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${tz}`;
}

export function duration(fromIso: string, toIso: string | null, now = Date.now()): string {
  const ms = (toIso ? Date.parse(toIso) : now) - Date.parse(fromIso);
  return ms < 1000 ? `${ms} ms` : span(ms);
}

export const MODE_WORDS: Record<string, string> = {
  etcd: 'etcd only',
  'kubernetes-version': 'etcd and Kubernetes version',
  all: 'etcd, Kubernetes version and cluster config',
};
