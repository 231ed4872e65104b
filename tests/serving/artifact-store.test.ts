// Artifact store adapters: local directories (file://, read-only base://) and S3 against an emulator on
// 127.0.0.1 (fauxqs serves S3 in-process), reached through the same routing store the API uses.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeArtifactStore } from '../../api/adapters/artifact-stores';
import { S3ArtifactStore, s3ClientConfigFromEnv } from '../../api/adapters/s3-artifact-store';
import { ArtifactNotFoundError, ArtifactReadOnlyError, artifactFileUri } from '../../shared/artifact-store';

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
// Buffer.compare, not toEqual: vitest's deep equality walks big typed arrays element by element (seconds).
const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe('local artifact stores', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'prefloop-artifacts-'));
    mkdirSync(join(dir, 'base'));
    writeFileSync(join(dir, 'base', 'config.json'), '{"x":1}');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('file:// round trip, list, exists, not-found, and no escape from the root', async () => {
    const store = createNodeArtifactStore({ artifactsDir: join(dir, 'artifacts'), baseModelDir: join(dir, 'base') });
    const uri = artifactFileUri('file://projects/p1/policies/v2', 'policy.onnx');
    expect(uri).toBe('file://projects/p1/policies/v2/policy.onnx');
    expect(await store.exists(uri)).toBe(false);
    await expect(store.get(uri)).rejects.toBeInstanceOf(ArtifactNotFoundError);
    const data = bytes(100_000);
    await store.put(uri, data);
    await store.put(artifactFileUri('file://projects/p1/policies/v2', 'config.json'), new TextEncoder().encode('{}'));
    expect(await store.exists(uri)).toBe(true);
    expect(same(await store.get(uri), data)).toBe(true);
    expect(same(readFileSync(join(dir, 'artifacts/projects/p1/policies/v2/policy.onnx')), data)).toBe(true);
    expect(await store.list('file://projects/p1/policies/v2')).toEqual([
      'file://projects/p1/policies/v2/config.json',
      'file://projects/p1/policies/v2/policy.onnx',
    ]);
    await expect(store.get('file://../outside')).rejects.toThrow(/escapes/);
    const abs = `file://${join(dir, 'artifacts/projects/p1/policies/v2/policy.onnx')}`;
    expect(same(await store.get(abs), data)).toBe(true);
  });

  it('base:// reads the bundled model and refuses writes', async () => {
    const store = createNodeArtifactStore({ artifactsDir: join(dir, 'artifacts'), baseModelDir: join(dir, 'base') });
    expect(new TextDecoder().decode(await store.get(artifactFileUri('base://', 'config.json')))).toBe('{"x":1}');
    await expect(store.put('base://config.json', bytes(3))).rejects.toBeInstanceOf(ArtifactReadOnlyError);
    expect(await store.list('base://')).toEqual(['base://config.json']);
  });
});

describe('S3 artifact store against an emulator on 127.0.0.1', () => {
  let server: FauxqsServer;
  let s3: S3ArtifactStore;
  beforeAll(async () => {
    server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
    const client = new S3Client({
      ...s3ClientConfigFromEnv({ PREFLOOP_S3_ENDPOINT: `http://127.0.0.1:${server.port}`, AWS_REGION: 'us-east-1' }),
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await client.send(new CreateBucketCommand({ Bucket: 'prefloop-artifacts' }));
    s3 = new S3ArtifactStore({ client });
  });
  afterAll(async () => {
    s3?.client.destroy();
    await server?.stop();
  });

  it('round-trips bytes exactly, lists a prefix, and reports missing objects', async () => {
    const store = createNodeArtifactStore({ s3 });
    const dirUri = 's3://prefloop-artifacts/projects/p1/policies/v3';
    const onnx = bytes(3_000_000, 7); // several MB: multi-chunk bodies must not be framed or truncated
    await store.put(artifactFileUri(dirUri, 'policy.onnx'), onnx);
    await store.put(artifactFileUri(dirUri, 'config.json'), new TextEncoder().encode('{"nLayer":2}'));
    await store.put('s3://prefloop-artifacts/projects/p1/policies/v30/config.json', bytes(5)); // a sibling prefix
    const back = await store.get(artifactFileUri(dirUri, 'policy.onnx'));
    expect(same(back, onnx)).toBe(true);
    expect(await store.exists(artifactFileUri(dirUri, 'config.json'))).toBe(true);
    expect(await store.exists(artifactFileUri(dirUri, 'reward.onnx'))).toBe(false);
    await expect(store.get(artifactFileUri(dirUri, 'reward.onnx'))).rejects.toBeInstanceOf(ArtifactNotFoundError);
    expect(await store.list(dirUri)).toEqual([`${dirUri}/config.json`, `${dirUri}/policy.onnx`]);
  });
});
