#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (scripts/setup.sh does it).
// The AWS SDK warns once per process about Node 20's end of support; the CLI pins a version that supports it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// grpc-js sets the TLS server name to the endpoint's IP (DEP0123): harmless, and noise on every TLS call.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? rest[0].code : rest[1];
  if (code === 'DEP0123') return;
  emitWarning(warning, ...rest);
};
const { main } = await import('../dist/src/cli/main.js');

main(process.argv).then((code) => {
  process.exitCode = code;
});
