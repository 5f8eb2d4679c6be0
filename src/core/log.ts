import { pino, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * JSON logs to stderr (stdout stays for command output). Secrets never reach a log: the
 * redact paths cover every field name that may hold one.
 */
export function createLogger(level: string = process.env.ETCDSNAP_LOG_LEVEL ?? 'warn', name = 'etcdsnap'): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: ['*.secretAccessKey', '*.sessionToken', '*.accessKeyId', '*.token', '*.password', 'secretAccessKey', 'sessionToken', 'token', 'password', 'authorization', '*.authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
}
