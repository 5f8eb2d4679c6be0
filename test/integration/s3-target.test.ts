/**
 * The BackupTarget contract against real s3rver servers: over HTTP, over HTTPS trusting a CA
 * generated for the run, and scoped to a cluster id. 5 MiB parts so multipart paths run.
 */
import { after } from 'node:test';
import { runTargetContract, type ContractFixture } from '../contract/target-contract.js';
import { parseS3Config } from '../../src/core/s3-config.js';
import { S3Target } from '../../src/storage/s3.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const MiB = 1024 * 1024;
const servers: Partial<Record<'http' | 'https', Promise<S3rverHandle>>> = {};
function server(kind: 'http' | 'https'): Promise<S3rverHandle> {
  return (servers[kind] ??= startS3rver({ https: kind === 'https' }));
}
after(async () => {
  await Promise.all(Object.values(servers).map(async (s) => (await s).stop()));
});

let seq = 0;
async function fixture(kind: 'http' | 'https', clusterId?: string): Promise<ContractFixture> {
  const s3 = await server(kind);
  const bucket = `contract-${kind}-${++seq}`;
  await s3.createBucket(bucket);
  const warnings: string[] = [];
  const target = new S3Target(parseS3Config({ ...s3.targetConfig(bucket), folder: 'clusters/one', partSizeBytes: 5 * MiB }), {
    clusterId,
    onWarning: (m) => warnings.push(m),
  });
  return {
    target,
    leftovers: () => s3.leftovers(bucket),
    cleanup: async () => {
      target.close();
      if (warnings.length) console.log(`warnings of the ${kind} contract target:\n  ${warnings.join('\n  ')}`);
    },
  };
}

runTargetContract('s3 over HTTP', () => fixture('http'));
runTargetContract('s3 over HTTPS with a private CA', () => fixture('https'));
// The contract's metadata names cluster-1: a target scoped to it must behave the same.
runTargetContract('s3 scoped to cluster-1', () => fixture('http', 'cluster-1'));
