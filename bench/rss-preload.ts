/**
 * Preloaded into a benchmarked Node child with `node --import <this file>`: when the process
 * exits (normally or not), writes its own resource usage as JSON to $BENCH_RSS_FILE.
 *
 * `process.resourceUsage().maxRSS` is getrusage(RUSAGE_SELF).ru_maxrss: the kernel's
 * high-water mark of the whole process's resident set (every thread: zstd worker, libuv pool,
 * V8 heap, Buffers), in KiB. Measured by the kernel over the process's whole life, so nothing
 * is missed between samples, unlike polling /proc/<pid>/status. The preload adds nothing to
 * the process but this one listener.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ maxRssKiB: u.maxRSS, userCpuUs: u.userCPUTime, systemCpuUs: u.systemCPUTime }));
  });
}
