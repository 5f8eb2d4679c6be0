/**
 * Running `etcdctl` (API v3) and reading what it said. 3.4 has no etcdutl, so snapshot
 * restore and status go through etcdctl (FACTS.md).
 */
import { spawn } from 'node:child_process';
import { EtcdsnapError } from '../core/errors.js';

export interface EtcdctlResult {
  code: number | null;
  stdout: string;
  /** The last 64 KiB of stderr. */
  stderr: string;
}

const STDERR_KEEP = 64 * 1024;
const STDOUT_LIMIT = 16 * 1024 * 1024;

/**
 * Runs `etcdctl args…` with ETCDCTL_API=3. Resolves with its exit code and output whatever the
 * code; throws ETCDCTL_NOT_FOUND when the binary is missing and OPERATION_ABORTED on `signal`.
 */
export function runEtcdctl(args: string[], options: { etcdctl?: string; signal?: AbortSignal } = {}): Promise<EtcdctlResult> {
  const binary = options.etcdctl ?? 'etcdctl';
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.signal ? { signal: options.signal, killSignal: 'SIGKILL' as const } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < STDOUT_LIMIT) stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(
          new EtcdsnapError('ETCDCTL_NOT_FOUND', `"${binary}" was not found. Install Debian's etcd-client (apt-get install etcd-client) or set the etcdctl path.`, {
            cause: err,
            details: { binary },
          }),
        );
      } else if (err.name === 'AbortError') {
        reject(new EtcdsnapError('OPERATION_ABORTED', `etcdctl ${args[0] ?? ''} ${args[1] ?? ''} was cancelled.`, { cause: err }));
      } else {
        reject(new EtcdsnapError('INTERNAL', `Could not run ${binary}: ${err.message}`, { cause: err }));
      }
    });
    child.once('close', (code) => {
      if (options.signal?.aborted) return; // the 'error' above reported it
      resolve({ code, stdout, stderr });
    });
  });
}

/** etcdctl's own error lines (`Error: …`), else the last lines of stderr, for messages. */
export function etcdctlErrorText(stderr: string, lines = 8): string {
  const all = stderr.split('\n').filter((l) => l.trim() !== '');
  const errors = all.filter((l) => l.startsWith('Error:'));
  return (errors.length > 0 ? errors : all).slice(-lines).join('\n') || '(etcdctl printed nothing)';
}
