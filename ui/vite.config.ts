import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

/**
 * The web UI, built to dist/ui (served by the server at `/`, see src/server/routes/ui.ts).
 * Preact through esbuild's automatic JSX runtime: no Babel, no plugin.
 * `npx vite --config ui/vite.config.ts` serves it in development, proxying the API to
 * ETCDSNAP_DEV_SERVER (default https://127.0.0.1:8443).
 */
export default defineConfig({
  root: here('.'),
  base: '/',
  publicDir: false,
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: here('../dist/ui'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // No inline script: the server sends a strict Content-Security-Policy.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    fs: { allow: [here('..')] },
    proxy: { '/api': { target: process.env.ETCDSNAP_DEV_SERVER ?? 'https://127.0.0.1:8443', secure: false, changeOrigin: true } },
  },
});
