/**
 * etcdctl's TLS flags for commands that talk to etcd directly: `--cacert`, `--cert`, `--key`
 * (also read from `ETCDCTL_CACERT`, `ETCDCTL_CERT`, `ETCDCTL_KEY`, as etcdctl does), and their
 * translation into the EtcdTls of EtcdClient.connect. Kubernetes etcd (RKE2, K3s, kubeadm)
 * only accepts clients with a certificate signed by its CA.
 */
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { EtcdsnapError } from '../core/errors.js';
import { checkEtcdTls, type EtcdTls } from '../etcd/endpoint.js';

/** What commander gives us for the flags below. */
export interface EtcdTlsCliOptions {
  cacert?: string;
  cert?: string;
  key?: string;
}

const FLAGS = [
  { name: 'cacert', flag: '--cacert', env: 'ETCDCTL_CACERT', field: 'ca' },
  { name: 'cert', flag: '--cert', env: 'ETCDCTL_CERT', field: 'cert' },
  { name: 'key', flag: '--key', env: 'ETCDCTL_KEY', field: 'key' },
] as const;

export function addEtcdTlsOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--cacert <file>', "etcd: PEM file of the CA that signed etcd's server certificate (default: the system CAs)").env('ETCDCTL_CACERT'))
    .addOption(new Option('--cert <file>', 'etcd: PEM client certificate, for etcd with --client-cert-auth (with --key)').env('ETCDCTL_CERT'))
    .addOption(new Option('--key <file>', 'etcd: PEM private key of --cert').env('ETCDCTL_KEY'));
}

/**
 * Reads the files named by --cacert/--cert/--key into an EtcdTls, or undefined when none is
 * given. INVALID_ARGUMENT naming the flag (and its variable) when a file cannot be read or is
 * not PEM, when only one of --cert/--key is given, or when the key is not the certificate's.
 * Takes the options object of any command that called addEtcdTlsOptions.
 */
export function etcdTlsFromOptions(opts: object): EtcdTls | undefined {
  const values = opts as Partial<Record<keyof EtcdTlsCliOptions, unknown>>;
  const tls: EtcdTls = {};
  for (const { name, flag, env, field } of FLAGS) {
    const file = values[name];
    // An empty value (e.g. ETCDCTL_CERT= in the environment) counts as not given, as with etcdctl.
    if (file === undefined || file === null || file === '') continue;
    if (typeof file !== 'string') throw new EtcdsnapError('INVALID_ARGUMENT', `${flag} (or $${env}) needs a file name.`, { details: { flag } });
    try {
      tls[field] = readFileSync(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied (run as a user that may read it, e.g. root on the etcd node)' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
      throw new EtcdsnapError('INVALID_ARGUMENT', `Cannot read ${flag} ${file}${viaEnv(env, file)}: ${why}.`, { cause: err, details: { flag, file } });
    }
  }
  if (tls.ca === undefined && tls.cert === undefined && tls.key === undefined) return undefined;
  checkEtcdTls(tls);
  return tls;
}

/** " (from $ETCDCTL_CERT)" when the variable holds that file name (commander took it from there, or the flag repeats it). */
function viaEnv(env: string, file: string): string {
  return process.env[env] === file ? ` (from $${env})` : '';
}
