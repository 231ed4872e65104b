// The walls from the design, checked on every run: api/ never imports worker/ (the API never loads TF.js);
// shared/ imports neither and stays runtime-neutral (no Node built-ins, no Node-only packages), so it runs on
// Node and workerd alike. Node- or workerd-specific code belongs in entry files and adapters.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;
  return [...src.matchAll(re)].map((m) => m[1] ?? m[2] ?? m[3]);
}

const NODE_ONLY = /^(node:|fs$|path$|os$|child_process$|worker_threads$|@libsql\/client|onnxruntime-node|@hono\/node-server|@tensorflow\/)/;

describe('architecture walls', () => {
  it('api/ never imports worker/ or TF.js', () => {
    for (const f of sourceFiles(join(root, 'api'))) {
      for (const spec of imports(f)) {
        expect(spec.includes('/worker/') || spec.startsWith('../worker') || spec.startsWith('@tensorflow/'), `${relative(root, f)} imports ${spec}`).toBe(false);
      }
    }
  });

  it('shared/ imports neither api/ nor worker/, and no Node-only module', () => {
    for (const f of sourceFiles(join(root, 'shared'))) {
      for (const spec of imports(f)) {
        const rel = relative(root, f);
        expect(/(^|\/)(api|worker)\//.test(spec) || spec.startsWith('../api') || spec.startsWith('../worker'), `${rel} imports ${spec}`).toBe(false);
        expect(NODE_ONLY.test(spec), `${rel} imports the Node-only module ${spec}`).toBe(false);
      }
    }
  });
});
