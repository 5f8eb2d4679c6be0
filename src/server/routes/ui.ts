import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_PREFIX } from '../../core/api.js';

/**
 * The web UI: static files built by Vite into `dist/ui` (scripts/setup.sh), served at `/`.
 *
 * It is not a route but the answer to a GET that matched no route, outside `/api/`: the files
 * hold no data (everything comes from the API with the admin token), so they need no token,
 * while unknown API paths still answer 401 before anything else (no probing). Client routes
 * (`/clusters/prod/settings`) get index.html. Hashed assets are cached for a year, everything
 * else is revalidated (ETag). A server whose UI was not built still starts and says so at `/`.
 *
 * `ETCDSNAP_UI_DIR` points at another build (tests, packaging).
 */
const DEFAULT_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** The app loads its own script and style only and talks only to this origin. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>etcdsnap</title>
<h1>etcdsnap server</h1>
<p>The web UI is not built on this server. Build it with <code>scripts/setup.sh</code> (or <code>npm run build:ui</code>) and reload this page.</p>
<p>The server itself works: the CLI (<code>etcdsnap --help</code>) and the REST API under <code>${API_PREFIX}</code> (see <code>${API_PREFIX}/openapi.json</code>) are available.</p>
</html>
`;

/** Server paths that are never UI paths (their unknown sub-paths keep the API's 401/404). */
const NOT_UI = ['/api', '/cacerts', '/healthz', '/metrics'];

function uiPath(url: string): string | undefined {
  const path = url.split('?')[0] ?? '/';
  if (NOT_UI.some((p) => path === p || path.startsWith(`${p}/`))) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const clean = normalize(decoded).replace(/\\/g, '/');
  if (!clean.startsWith('/') || clean.split('/').includes('..')) return undefined;
  return clean;
}

async function sendFile(req: FastifyRequest, reply: FastifyReply, file: string, cacheControl: string): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return false;
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const type = TYPES[extname(file)] ?? 'application/octet-stream';
  void reply.header('cache-control', cacheControl).header('etag', etag).header('x-content-type-options', 'nosniff');
  if (type.startsWith('text/html')) void reply.header('content-security-policy', CSP).header('x-frame-options', 'DENY').header('referrer-policy', 'no-referrer');
  if (req.headers['if-none-match'] === etag) {
    await reply.code(304).send();
    return true;
  }
  await reply.code(200).type(type).send(await readFile(file));
  return true;
}

/** Installs the UI fallback; call it before the auth hook so UI files need no token. */
export function installUi(app: FastifyInstance, dir = process.env.ETCDSNAP_UI_DIR || DEFAULT_DIR): void {
  const root = normalize(dir.endsWith(sep) ? dir : dir + sep);
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' || !req.is404) return;
    const path = uiPath(req.url);
    if (path === undefined) return;
    const last = path.split('/').pop() ?? '';
    if (path !== '/' && last.includes('.')) {
      // A file: found, or the API's usual answer (401 without a token, else 404).
      const file = join(root, path);
      if (!file.startsWith(root)) return;
      const immutable = path.startsWith('/assets/');
      if (await sendFile(req, reply, file, immutable ? 'public, max-age=31536000, immutable' : 'no-cache')) return reply;
      return;
    }
    // `/` and client routes: the app.
    if (await sendFile(req, reply, join(root, 'index.html'), 'no-cache')) return reply;
    await reply.code(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    return reply;
  });
}
