import { EtcdsnapError } from './errors.js';

/** How the stored bytes of a snapshot are compressed. */
export const CODECS = ['none', 'zstd', 'gzip'] as const;
export type Codec = (typeof CODECS)[number];

const SUFFIX: Record<Codec, string> = { none: '', zstd: '.zst', gzip: '.gz' };

export function codecSuffix(codec: Codec): string {
  return SUFFIX[codec];
}

export function codecFromSuffix(suffix: string): Codec {
  const found = CODECS.find((c) => SUFFIX[c] === suffix);
  if (found === undefined) throw new EtcdsnapError('CODEC_UNSUPPORTED', `Unknown codec suffix "${suffix}".`);
  return found;
}

/** The codec a stored name ends with (`none` for no known suffix). */
export function codecOfName(name: string): Codec {
  for (const c of CODECS) {
    const s = SUFFIX[c];
    if (s && name.endsWith(s)) return c;
  }
  return 'none';
}

export function parseCodec(value: string): Codec {
  if ((CODECS as readonly string[]).includes(value)) return value as Codec;
  throw new EtcdsnapError('CODEC_UNSUPPORTED', `Unknown compression "${value}": use one of ${CODECS.join(', ')}.`);
}
