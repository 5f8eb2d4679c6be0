/**
 * The transfer endpoint's certificate: self-signed EC P-256, made once and kept in
 * `<dataDir>/transfer-tls/` (`cert.pem`, `key.pem` 0600). Nobody needs to trust a CA: the
 * server announces the certificate's sha256 (DER) in the restore-fetch task and the other
 * nodes accept only that certificate (see transfer-client.ts).
 */
import { createHash, createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import 'reflect-metadata'; // @peculiar/x509 → tsyringe needs the Reflect metadata API
import * as x509 from '@peculiar/x509';
import { writeFileAtomic } from './state.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface TransferTls {
  cert: string;
  key: string;
  /** sha256 (hex) of the certificate's DER bytes: what the other nodes pin. */
  certSha256: string;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const YEARS_10 = 3650 * 86_400_000;

/** sha256 (hex) of a PEM certificate's DER bytes. */
export function certSha256(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

async function create(node: string): Promise<{ cert: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=etcdsnap-transfer ${node}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + YEARS_10),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem'), key: x509.PemConverter.encode(der, 'PRIVATE KEY') };
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The certificate and key under `<dataDir>/transfer-tls/`, made on first use. */
export async function ensureTransferTls(dataDir: string, node: string): Promise<TransferTls> {
  const dir = path.join(dataDir, 'transfer-tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  let cert = await readIfExists(certFile);
  let key = await readIfExists(keyFile);
  let usable = false;
  try {
    usable = cert !== undefined && key !== undefined && new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch {
    usable = false;
  }
  if (!usable) {
    const made = await create(node);
    // Key first: a crash in between leaves a key without a certificate, which is made again.
    await writeFileAtomic(keyFile, made.key, 0o600);
    await writeFileAtomic(certFile, made.cert, 0o644);
    cert = made.cert;
    key = made.key;
  }
  return { cert: cert as string, key: key as string, certSha256: certSha256(cert as string) };
}
