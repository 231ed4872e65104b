import { describe, expect, it } from 'vitest';
import { resolveInfraConfig, SQS_MAX_VISIBILITY_S } from './config';

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
});
