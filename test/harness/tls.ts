/**
 * TLS material for etcd clusters in tests, made with the openssl CLI (the approach of
 * s3rver.ts): a CA, one server certificate and one peer certificate for 127.0.0.1/localhost,
 * and a client certificate, all signed by that CA. Keys are EC P-256 (fast to make).
 *
 *   const tls = await makeEtcdTls(dir);
 *   // members: --cert-file tls.serverCertFile … ; clients: tls.clientTls
 *
 * Two calls give two unrelated CAs: the second one's files are "untrusted" by the first's
 * cluster, for negative tests.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EtcdTls } from '../../src/etcd/endpoint.js';

const run = promisify(execFile);

export interface EtcdTlsMaterial {
  dir: string;
  /** PEM file of the CA (etcd's --trusted-ca-file and --peer-trusted-ca-file; clients' --cacert). */
  caFile: string;
  /** Served on the client port (etcd's --cert-file/--key-file); serverAuth and clientAuth. */
  serverCertFile: string;
  serverKeyFile: string;
  /** Served on the peer port (--peer-cert-file/--peer-key-file); serverAuth and clientAuth. */
  peerCertFile: string;
  peerKeyFile: string;
  /** A client certificate (clientAuth only): --cert/--key of etcdctl and etcdsnap. */
  clientCertFile: string;
  clientKeyFile: string;
  /** The CA, client certificate and key read into memory, for EtcdClient.connect. */
  clientTls: Required<EtcdTls>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = '2';

/** A self-signed CA in `dir`: `<name>-ca.pem` and `<name>-ca.key`. */
async function makeCa(dir: string, name: string): Promise<{ caFile: string; caKeyFile: string }> {
  const caFile = path.join(dir, `${name}-ca.pem`);
  const caKeyFile = path.join(dir, `${name}-ca.key`);
  await run('openssl', [
    'req', '-x509', ...EC, '-keyout', caKeyFile, '-out', caFile, '-days', DAYS,
    '-subj', `/CN=etcdsnap test ${name} CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { caFile, caKeyFile };
}

/** A leaf certificate `<name>.pem`/`<name>.key` signed by the CA (random serial: leaves are made in parallel). */
async function makeLeaf(dir: string, name: string, ca: { caFile: string; caKeyFile: string }, cn: string, ext: string): Promise<{ certFile: string; keyFile: string }> {
  const f = (suffix: string): string => path.join(dir, `${name}.${suffix}`);
  await run('openssl', ['req', ...EC, '-keyout', f('key'), '-out', f('csr'), '-subj', `/CN=${cn}`]);
  await writeFile(f('ext'), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n${ext}\n`);
  await run('openssl', ['x509', '-req', '-in', f('csr'), '-CA', ca.caFile, '-CAkey', ca.caKeyFile, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', f('pem'), '-days', DAYS, '-extfile', f('ext')]);
  return { certFile: f('pem'), keyFile: f('key') };
}

/**
 * A CA and server, peer and client certificates in `dir` (which must exist). Server and peer
 * certificates carry both serverAuth and clientAuth, as kubeadm's and RKE2's do: peers dial
 * each other with them, and etcd 3.4's gRPC gateway dials its own client port with the
 * server certificate.
 */
export async function makeEtcdTls(dir: string, name = 'etcd'): Promise<EtcdTlsMaterial> {
  const ca = await makeCa(dir, name);
  const san = 'subjectAltName=IP:127.0.0.1,DNS:localhost';
  const [server, peer, client] = await Promise.all([
    makeLeaf(dir, `${name}-server`, ca, '127.0.0.1', `${san}\nextendedKeyUsage=serverAuth,clientAuth`),
    makeLeaf(dir, `${name}-peer`, ca, '127.0.0.1', `${san}\nextendedKeyUsage=serverAuth,clientAuth`),
    makeLeaf(dir, `${name}-client`, ca, 'etcdsnap-test-client', 'extendedKeyUsage=clientAuth'),
  ]);
  const [caPem, cert, key] = await Promise.all([readFile(ca.caFile), readFile(client.certFile), readFile(client.keyFile)]);
  return {
    dir,
    caFile: ca.caFile,
    serverCertFile: server.certFile,
    serverKeyFile: server.keyFile,
    peerCertFile: peer.certFile,
    peerKeyFile: peer.keyFile,
    clientCertFile: client.certFile,
    clientKeyFile: client.keyFile,
    clientTls: { ca: caPem, cert, key },
  };
}
