import { createHash, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { isIP } from 'node:net';
import { mkdir, readFile, writeFile, rename, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import 'reflect-metadata'; // @peculiar/x509 → tsyringe needs the Reflect metadata API
import * as x509 from '@peculiar/x509';
import { EtcdsnapError } from '../core/errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** What the HTTPS listener serves and what agents pin. */
export interface ServerTls {
  cert: string;
  key: string;
  /** PEM of the CA agents should trust; null when a given certificate comes without its CA. */
  caPem: string | null;
  /** sha256 (hex) of the CA certificate's DER bytes, as in the join command; null without a CA. */
  caChecksum: string | null;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
/** The CA lives 10 years, a leaf 1 year; a leaf is renewed at start when under 30 days are left or names changed. */
const CA_DAYS = 3650;
const LEAF_DAYS = 365;
const RENEW_BEFORE_DAYS = 30;

/** sha256 of the first certificate of a PEM, hex (the `--ca-checksum` of the join command). */
export function caChecksumOf(pem: string): string {
  return createHash('sha256').update(new NodeX509(pem).raw).digest('hex');
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new EtcdsnapError('INVALID_CONFIG', 'The CA key file holds no PEM block.');
  return webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']) as Promise<CryptoKey>;
}

async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  await writeFile(`${file}.tmp`, text, { mode });
  await chmod(`${file}.tmp`, mode);
  await rename(`${file}.tmp`, file);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function createCA(): Promise<{ cert: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=etcdsnap-server-ca@${Math.floor(now / 1000)}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + CA_DAYS * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await exportKeyPem(keys.privateKey) };
}

/** Names a leaf always carries besides the configured ones. */
export function leafNames(hostnames: readonly string[]): string[] {
  return [...new Set([...hostnames, 'localhost', '127.0.0.1', '::1'])];
}

async function createLeaf(caPem: string, caKeyPem: string, names: string[]): Promise<{ cert: string; key: string }> {
  const ca = new x509.X509Certificate(caPem);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${names[0] ?? 'etcdsnap-server'}`,
    issuer: ca.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(Math.min(now + LEAF_DAYS * DAY, ca.notAfter.getTime())),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: await importKeyPem(caKeyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  return { cert: cert.toString('pem'), key: await exportKeyPem(keys.privateKey) };
}

/** One spelling per address (Node prints IPv6 SANs expanded). */
function normalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]`).hostname : ip;
}

/** True when the leaf must be (re)made: missing, not from this CA, expiring, or without one of the names. */
function leafIsStale(leafPem: string | undefined, caPem: string, names: string[], now: number): boolean {
  if (!leafPem) return true;
  try {
    const leaf = new NodeX509(leafPem);
    if (!leaf.checkIssued(new NodeX509(caPem))) return true;
    if (Date.parse(leaf.validTo) - now < RENEW_BEFORE_DAYS * DAY) return true;
    const san = new Set((leaf.subjectAltName ?? '').split(', ').map((e) => (e.startsWith('IP Address:') ? `IP:${normalIp(e.slice(11))}` : e)));
    return names.some((n) => !san.has(isIP(n) ? `IP:${normalIp(n)}` : `DNS:${n}`));
  } catch {
    return true;
  }
}

/**
 * The server's own CA and leaf under `<dir>/` (`ca.pem`, `ca-key.pem`, `server.pem`,
 * `server-key.pem`; keys 0600): the CA is made once, the leaf whenever it is stale. Like
 * Rancher: agents fetch the CA from `/cacerts` and compare its checksum with the join command's.
 */
export async function ensureServerTls(dir: string, hostnames: readonly string[]): Promise<ServerTls> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = { ca: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'), leaf: join(dir, 'server.pem'), leafKey: join(dir, 'server-key.pem') };
  let caPem = await readIfExists(files.ca);
  let caKey = await readIfExists(files.caKey);
  if (!caPem || !caKey) {
    const ca = await createCA();
    await writeAtomic(files.caKey, ca.key, 0o600);
    await writeAtomic(files.ca, ca.cert, 0o644);
    caPem = ca.cert;
    caKey = ca.key;
  }
  const names = leafNames(hostnames);
  let cert = await readIfExists(files.leaf);
  let key = await readIfExists(files.leafKey);
  if (!key || leafIsStale(cert, caPem, names, Date.now())) {
    const leaf = await createLeaf(caPem, caKey, names);
    await writeAtomic(files.leafKey, leaf.key, 0o600);
    await writeAtomic(files.leaf, leaf.cert, 0o644);
    cert = leaf.cert;
    key = leaf.key;
  }
  return { cert: cert as string, key, caPem, caChecksum: caChecksumOf(caPem) };
}

/** A given certificate and key (and optionally its CA), read from files. */
export async function loadGivenTls(certFile: string, keyFile: string, caFile?: string): Promise<ServerTls> {
  const read = async (f: string, what: string): Promise<string> => {
    try {
      return await readFile(f, 'utf8');
    } catch (err) {
      throw new EtcdsnapError('INVALID_CONFIG', `Cannot read the TLS ${what} ${f}: ${(err as Error).message}.`, { cause: err });
    }
  };
  const cert = await read(certFile, 'certificate');
  const key = await read(keyFile, 'key');
  const caPem = caFile ? await read(caFile, 'CA') : null;
  try {
    new NodeX509(cert);
    if (caPem) new NodeX509(caPem);
  } catch (err) {
    throw new EtcdsnapError('INVALID_CONFIG', `The TLS certificate or CA is not a PEM certificate: ${(err as Error).message}.`, { cause: err });
  }
  return { cert, key, caPem, caChecksum: caPem ? caChecksumOf(caPem) : null };
}
