import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveInfraConfig, SQS_MAX_VISIBILITY_S } from './config';

const root = path.resolve(import.meta.dirname, '..');
const readJson = (file: string) => JSON.parse(readFileSync(path.join(root, file), 'utf8'));

describe('infra config', () => {
  it('has defaults that need no context at all, and derives the queue timeouts from the run limit', () => {
    const c = resolveInfraConfig({});
    expect(c).toMatchObject({ stackName: 'Prefloop', instanceType: 'g4dn.xlarge', maxWorkers: 4, maxReceiveCount: 5, tfBackend: 'node-gpu' });
    expect(c.account).toBeUndefined();
    expect(c.region).toBeUndefined();
    expect(c.visibilityTimeoutS).toBe((c.maxTrainingMinutes + c.visibilityMarginMinutes) * 60);
    expect(c.visibilityTimeoutS).toBeGreaterThan(c.maxTrainingMinutes * 60);
    expect(c.oldestMessageAlarmS).toBe(c.visibilityTimeoutS + c.queueWaitAlarmMinutes * 60);
  });

  it('reads the cdk.json object and lets CLI `prefloop:<field>` strings override it', () => {
    const c = resolveInfraConfig({
      prefloop: { maxWorkers: 2, schedule: 'rate(30 minutes)' },
      'prefloop:maxWorkers': '9',
      'prefloop:workerImageAsset': 'true',
      '@aws-cdk/core:someFlag': true, // CDK's own keys are not ours to check
    });
    expect(c.maxWorkers).toBe(9);
    expect(c.schedule).toBe('rate(30 minutes)');
    expect(c.workerImageAsset).toBe(true);
  });

  it.each([
    [{ 'prefloop:maxWorker': '3' }, /maxWorker/], // typo: refused, not ignored
    [{ 'prefloop:instanceType': 't3.large' }, /instanceType: must be a GPU instance type/],
    [{ 'prefloop:maxWorkers': '0' }, /maxWorkers/],
    [{ 'prefloop:maxWorkers': '40' }, /maxWorkers/], // one step per task count, 40 steps at most
    [{ 'prefloop:maxReceiveCount': '2.5' }, /maxReceiveCount/],
    [{ 'prefloop:schedule': '0 * * * *' }, /schedule: must be an EventBridge expression/],
    [{ 'prefloop:logRetentionDays': '10' }, /logRetentionDays: must be one of/],
    [{ 'prefloop:artifactsPrefix': 'models' }, /artifactsPrefix/],
    [{ 'prefloop:workerImageAsset': 'yes' }, /workerImageAsset/],
    [{ 'prefloop:databaseUrlSecretArn': 'my-secret' }, /databaseUrlSecretArn/],
    [{ prefloop: 'maxWorkers=3' }, /must be an object/],
  ])('refuses %j', (context, message) => {
    expect(() => resolveInfraConfig(context)).toThrow(message);
  });

  it('refuses a run limit the SQS visibility timeout cannot cover', () => {
    const atLimit = SQS_MAX_VISIBILITY_S / 60 - 15;
    expect(resolveInfraConfig({ 'prefloop:maxTrainingMinutes': String(atLimit) }).visibilityTimeoutS).toBe(SQS_MAX_VISIBILITY_S);
    expect(() => resolveInfraConfig({ 'prefloop:maxTrainingMinutes': String(atLimit + 1) })).toThrow(/exceeds the SQS visibility limit/);
  });

  it('refuses a task that does not fit the instance type, and accepts one that does', () => {
    expect(() => resolveInfraConfig({ 'prefloop:taskMemoryMiB': '16384' })).toThrow(/does not fit g4dn.xlarge/);
    expect(() => resolveInfraConfig({ 'prefloop:taskCpu': '8192' })).toThrow(/does not fit g4dn.xlarge/);
    expect(resolveInfraConfig({ 'prefloop:instanceType': 'g5.2xlarge', 'prefloop:taskMemoryMiB': '28000' }).taskMemoryMiB).toBe(28000);
  });
});

describe('cdk.json and the offline synth command', () => {
  it('runs the app with tsx, writes to infra/cdk.out (ignored everywhere), and sends nothing home', () => {
    const cdk = readJson('cdk.json');
    expect(cdk.app).toBe('node --import tsx infra/app.ts');
    expect(cdk.output).toBe('infra/cdk.out');
    expect(cdk.notices).toBe(false);
    expect(cdk.context['cli-telemetry']).toBe(false);
    expect(cdk.context['@aws-cdk/core:validateAgainstDefaultRules']).toBe(true);
    expect(() => resolveInfraConfig(cdk.context)).not.toThrow();
    const scripts = readJson('package.json').scripts;
    expect(scripts['infra:synth']).toMatch(/\bcdk synth\b/);
    expect(readFileSync(path.join(root, '.gitignore'), 'utf8')).toMatch(/^cdk\.out\/$/m);
    expect(readFileSync(path.join(root, 'tsconfig.json'), 'utf8')).toContain('"infra/cdk.out"');
    expect(readFileSync(path.join(root, 'vitest.config.ts'), 'utf8')).toContain("'infra/cdk.out/**'");
  });
});
