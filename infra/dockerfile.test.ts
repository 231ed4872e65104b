// Dockerfile.worker cannot be built here (no Docker engine, no registry access for base images or libtensorflow),
// so this checks what can be checked without building: its structure, and that it agrees with package.json,
// the lockfile, .dockerignore and the stack's expectations.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, WORKER_DOCKERFILE } from './stack';
import { WORKER_ENV } from './worker-env';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Dockerfile → instructions (comments dropped, line continuations joined) grouped by build stage. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op, rest] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    expect(op, `unparseable line: ${line}`).toBeDefined();
    const instr = { op: op.toUpperCase(), args: rest.replace(/\s+/g, ' ') };
    if (instr.op === 'FROM') {
      const [, from, name] = /^(\S+)(?: AS (\S+))?$/i.exec(instr.args) ?? [];
      stages.push({ from, name, instructions: [] });
    } else if (instr.op === 'ARG' && stages.length === 0) {
      const [k, v] = instr.args.split('=');
      args.set(k, v);
    } else {
      expect(stages.length, `${instr.op} before the first FROM`).toBeGreaterThan(0);
      stages.at(-1)!.instructions.push(instr);
    }
  }
  return { args, stages };
}

const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), 'utf8');
const dockerfile = parseDockerfile(read(WORKER_DOCKERFILE));
const pkg = JSON.parse(read('package.json')) as {
  scripts: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version: string }> };
const stage = (name: string) => {
  const s = dockerfile.stages.find((x) => x.name === name);
  expect(s, `stage ${name}`).toBeDefined();
  return s!;
};
const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);

describe('Dockerfile.worker', () => {
  it('builds on the official Node 20 image and a CUDA 11 + cuDNN 8 runtime, the pair libtensorflow 2.9 links against', () => {
    expect(dockerfile.args.get('NODE_IMAGE')).toMatch(/^node:20[.-]/);
    expect(dockerfile.args.get('CUDA_IMAGE')).toMatch(/^nvidia\/cuda:11\.\d+\.\d+-cudnn8-runtime-ubuntu\d+\.\d+$/);
    // tfjs-node-gpu 4.x downloads libtensorflow 2.9.1 (CUDA 11 / cuDNN 8). A major upgrade must revisit the base.
    expect(lock.packages['node_modules/@tensorflow/tfjs-node-gpu']?.version).toMatch(/^4\./);
    expect(dockerfile.stages.map((s) => [s.from, s.name])).toEqual([
      ['${NODE_IMAGE}', 'node'],
      ['${CUDA_IMAGE}', 'base'],
      ['base', 'deps'],
      ['base', 'runtime'],
    ]);
  });

  it('installs production dependencies from the lockfile with tfjs-node-gpu, and fails the build if it is missing', () => {
    // npm ci installs optionalDependencies; tfjs-node-gpu must be one (it cannot install on machines like this).
    expect(pkg.optionalDependencies?.['@tensorflow/tfjs-node-gpu']).toBeDefined();
    const deps = stage('deps');
    const copyIdx = deps.instructions.findIndex((i) => i.op === 'COPY' && i.args === 'package.json package-lock.json .npmrc ./');
    const ciIdx = deps.instructions.findIndex((i) => i.op === 'RUN' && i.args.includes('npm ci --omit=dev'));
    expect(copyIdx).toBeGreaterThanOrEqual(0);
    expect(ciIdx).toBeGreaterThan(copyIdx);
    const install = deps.instructions[ciIdx].args;
    expect(install).toMatch(/npm ci --omit=dev[^&]*&& ls node_modules\/@tensorflow\/tfjs-node-gpu\/lib\/napi-v\*\/tfjs_binding\.node/);
    expect(install).toContain('ls node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so*');
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) expect(existsSync(path.join(REPO_ROOT, f)), f).toBe(true);
    // .npmrc must keep onnxruntime-node's CUDA download off, or npm ci fails in the image as it does here.
    expect(read('.npmrc')).toMatch(/^onnxruntime-node-install=skip$/m);
  });

  it('runs `npm run worker` as a non-root user under an init, preferring the GPU backend', () => {
    const runtime = stage('runtime');
    expect(dockerfile.stages.at(-1)).toBe(runtime);
    const last = (op: string) => runtime.instructions.filter((i) => i.op === op).at(-1)?.args;
    expect(JSON.parse(last('CMD')!)).toEqual(['npm', 'run', 'worker']);
    expect(JSON.parse(last('ENTRYPOINT')!)).toEqual(['/usr/bin/tini', '--']);
    expect(runs(runtime).join(' ')).toMatch(/apt-get install [^&]*\btini\b/);
    const user = last('USER');
    expect(user).toBe('prefloop');
    expect(runs(runtime).join(' ')).toContain('useradd --system --uid 10001');
    // Writable by the worker: ./data only; and the user switch comes after every COPY and RUN that needs root.
    expect(runs(runtime)).toContain('mkdir -p /app/data && chown prefloop:prefloop /app/data');
    const userIdx = runtime.instructions.findIndex((i) => i.op === 'USER');
    expect(runtime.instructions.slice(userIdx).some((i) => i.op === 'RUN' || i.op === 'COPY')).toBe(false);
    expect(runtime.instructions.some((i) => i.op === 'ENV' && i.args.includes(`${WORKER_ENV.tfBackend}=node-gpu`))).toBe(true);
    expect(runtime.instructions.some((i) => i.op === 'COPY' && i.args === '--from=deps /app/node_modules ./node_modules')).toBe(true);
    // The `worker` script belongs to the worker issue; when it lands it must start the worker's entry file.
    if (pkg.scripts.worker !== undefined) expect(pkg.scripts.worker).toMatch(/\bworker\//);
  });

  it('keeps dependencies, git history, databases and CDK output out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['.git', 'node_modules', '**/node_modules', '*.db', 'data', '**/cdk.out']));
    // What the image needs must stay in: sources and the committed base model.
    for (const needed of ['shared', 'worker', 'models', 'package.json', 'package-lock.json', '.npmrc']) expect(ignored).not.toContain(needed);
  });
});
