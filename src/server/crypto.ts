import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { EtcdsnapError } from '../core/errors.js';

/** The server key: 32 random bytes in `<data-dir>/server.key`, mode 0600, made at first start. */
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = 'v1.';

/** Kinds of bearer token; the prefix tells an operator what a leaked string is. */
export const TOKEN_PREFIX = { admin: 'esa_', node: 'esn_', registration: 'esr_' } as const;
export type TokenKind = keyof typeof TOKEN_PREFIX;

/** A new token: prefix + 32 random bytes, base64url (47 characters). */
export function newToken(kind: TokenKind): string {
  return `${TOKEN_PREFIX[kind]}${randomBytes(32).toString('base64url')}`;
}

/** Tokens are stored as their sha256 (hex): a leaked database does not leak tokens. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time equality of two hex digests (or any two strings). */
export function sameDigest(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

/** Short random ids for rows: a prefix and 20 base32-ish characters. */
export function newId(prefix: string): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(20);
  let out = '';
  for (const b of bytes) out += alphabet[b & 31];
  return `${prefix}_${out}`;
}

/**
 * Secrets at rest (AES-256-GCM, a fresh IV per value, the context — e.g. `cluster:<id>:s3` —
 * bound as additional data so a ciphertext cannot be moved to another row) and the keyed hash
 * that makes plan ids (so a planId never reveals what a plan holds).
 */
export class Keyring {
  private readonly encKey: Buffer;
  private readonly macKey: Buffer;

  constructor(master: Buffer) {
    if (master.length !== KEY_BYTES) throw new EtcdsnapError('INVALID_CONFIG', `The server key must be ${KEY_BYTES} bytes, not ${master.length}.`);
    this.encKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'etcdsnap secrets v1', KEY_BYTES));
    this.macKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'etcdsnap plan ids v1', KEY_BYTES));
  }

  encrypt(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.encKey, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  decrypt(ciphertext: string, context: string): string {
    if (!ciphertext.startsWith(PREFIX)) throw new EtcdsnapError('INTERNAL', `A stored secret (${context}) has an unknown format.`);
    const raw = Buffer.from(ciphertext.slice(PREFIX.length), 'base64url');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.encKey, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new EtcdsnapError('INTERNAL', `A stored secret (${context}) cannot be decrypted: was server.key replaced? Restore the data dir's server.key.`, { cause: err });
    }
  }

  /** Keyed digest (base64url, 32 characters) for plan ids. */
  mac(text: string): string {
    return createHmac('sha256', this.macKey).update(text, 'utf8').digest('base64url').slice(0, 32);
  }
}

/** Reads `<file>`, or creates it (0600) with a new random key when it does not exist. */
export async function loadOrCreateKey(file: string): Promise<{ key: Buffer; created: boolean }> {
  try {
    const key = await readFile(file);
    if (key.length !== KEY_BYTES) throw new EtcdsnapError('INVALID_CONFIG', `${file} holds ${key.length} bytes, not ${KEY_BYTES}: it is not a server key.`);
    return { key, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(KEY_BYTES);
  // 'wx': never overwrite a key another process just wrote (that would orphan its secrets).
  await writeFile(file, key, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return { key, created: true };
}
