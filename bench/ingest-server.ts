// Child process of bench/ingest.ts: the real API (startServer) on a fresh database, rate limit off. Prints one JSON
// line {url} when ready, then answers the parent's messages: 'cpu' (CPU time used so far), 'stop', and, when
// BENCH_CPU_PROF names a directory, {profile: name} / {profile: null} to start / stop a V8 CPU profile of one phase
// (written as <dir>/<name>.cpuprofile, for chrome://inspect or any .cpuprofile viewer).
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { startServer } from '../api/server';

const server = await startServer({
  dbPath: process.env.BENCH_DB!,
  port: 0,
  apiKey: process.env.BENCH_KEY!,
  settings: { rateLimit: { requestsPerSecond: 0, burst: 1 } },
});
const profileDir = process.env.BENCH_CPU_PROF;
const inspector = profileDir ? new Session() : undefined;
if (inspector) {
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
}
let profiling: string | null = null;

/**
 * CPU time of this (the event loop's) thread alone, µs, from Linux's /proc/thread-self/stat (utime + stime, in clock
 * ticks of 10 ms: coarse, fine over a 10 s phase). With the feedback INSERT on a thread of its own, process CPU minus
 * this is what that thread (plus GC and libuv helpers) used. null where /proc is missing.
 */
function threadCpuUs(): number | null {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10_000; // fields 14, 15 of proc(5), counted after the comm field
  } catch {
    return null;
  }
}

process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
process.on('message', async (m: unknown) => {
  if (m === 'stop') void server.close().then(() => process.exit(0));
  // CPU time used so far (user + system, µs): the parent divides per-phase differences by requests served, a cost
  // figure that stays meaningful when other processes share the cores.
  if (m === 'cpu') {
    const u = process.cpuUsage();
    process.send!({ cpuUs: u.user + u.system, mainThreadCpuUs: threadCpuUs() });
  }
  if (inspector && typeof m === 'object' && m !== null && 'profile' in m) {
    const name = (m as { profile: string | null }).profile;
    if (profiling) {
      const { profile } = await inspector.post('Profiler.stop');
      writeFileSync(join(profileDir!, `${profiling}.cpuprofile`), JSON.stringify(profile));
      profiling = null;
    }
    if (name) {
      await inspector.post('Profiler.start');
      profiling = name;
    }
    process.send!({ profiled: name });
  }
});
