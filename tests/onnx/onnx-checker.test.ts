// A second opinion on the hand-built graphs: python onnx's checker (full_check runs strict shape inference)
// must accept policy.onnx and reward.onnx. Skips, saying why, where Debian's python3-onnx is not installed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPolicyOnnx } from '../../worker/onnx/export-policy';
import { buildRewardOnnx } from '../../worker/onnx/export-reward';
import { randomWeights, TINY_CONFIG as c } from './reference-gpt';

// Debian's package lives under /usr/bin/python3; a pyenv or venv python3 earlier on PATH may lack it.
const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import onnx']).status === 0);
const hasPythonOnnx = python !== undefined;
if (!hasPythonOnnx) console.warn('skipping onnx.checker test: no python3 with the onnx module (apt-get install python3-onnx)');

const CHECK = `
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print(m.opset_import[0].version, m.ir_version, len(m.graph.node))
`;

describe.skipIf(!hasPythonOnnx)('onnx.checker (python onnx)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prefloop-onnx-'));
  for (const [kind, build] of [['policy', buildPolicyOnnx], ['reward', buildRewardOnnx]] as const) {
    it(`accepts ${kind}.onnx with full_check`, () => {
      const w = randomWeights(c, 3, kind === 'policy' ? ['value'] : ['score']);
      const file = join(dir, `${kind}.onnx`);
      writeFileSync(file, build(w, c, { tokenizerSha256: '0'.repeat(64), version: 'check' }));
      const r = spawnSync(python!, ['-c', CHECK, file], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const [opset, ir] = r.stdout.trim().split(' ').map(Number);
      expect(opset).toBeGreaterThanOrEqual(17);
      expect(ir).toBe(8);
    });
  }
});
