// `npm start` runs one training worker beside the API unless PREFLOOP_WORKER=0: a child process running
// worker/main.ts, started by path (never imported: the API must not load TF.js; tests/architecture.test.ts
// keeps that wall). Node-only, used by the Node entry alone. A child that dies is restarted after a pause;
// SIGTERM to the API forwards to the worker, whose graceful stop finishes the run in progress.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKER_ENTRY = join(dirname(fileURLToPath(import.meta.url)), '..', 'worker', 'main.ts');

export interface WorkerProcess {
  stop(): Promise<void>;
}

/** Spawns `node --import tsx worker/main.ts` with this process's environment plus `env`. */
export function startWorkerProcess(env: Record<string, string> = {}, restartDelayMs = 5_000): WorkerProcess {
  let child: ChildProcess | null = null;
  let stopping = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const launch = () => {
    child = spawn(process.execPath, ['--import', 'tsx', WORKER_ENTRY], { env: { ...process.env, ...env }, stdio: 'inherit' });
    child.once('exit', (code, signal) => {
      child = null;
      if (stopping) return;
      console.error(`training worker exited (${signal ?? code}); restarting in ${restartDelayMs / 1000} s`);
      timer = setTimeout(launch, restartDelayMs);
    });
  };
  launch();
  return {
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((r) => {
        c.once('exit', () => r());
        c.kill('SIGTERM');
      });
    },
  };
}
