// The admin CLI (api/cli.ts) as a user runs it, against the database a real server then serves from.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from '../../api/server';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(os.tmpdir(), 'prefloop-cli-'));
const dbPath = join(dir, 'cli.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...args: string[]) {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'api/cli.ts', ...args], { cwd: root, env: { ...process.env, PREFLOOP_DB: dbPath } });
    return { code: 0, out: stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

describe('npm run cli', () => {
  it('creates a project and keys, lists and revokes them; the server honours them', async () => {
    expect((await cli('projects', 'create', 'acme')).out).toMatch(/created project acme \(proj_/);
    expect((await cli('projects', 'create', 'acme')).code).toBe(1);
    const created = await cli('keys', 'create', '--project', 'acme', '--scopes', 'ingest');
    const key = /pfk_[0-9A-Za-z]{40}/.exec(created.out)![0];
    const keyId = /key_[0-9A-Za-z]+/.exec(created.out)![0];
    expect((await cli('keys', 'create', '--project', 'nope')).code).toBe(1);
    expect((await cli('keys', 'create', '--project', 'acme', '--scopes', 'root')).code).not.toBe(0);
    const listed = await cli('keys', 'list', '--project', 'acme');
    expect(listed.out).toContain(keyId);
    expect(listed.out).not.toContain(key);

    const server = await startServer({ dbPath, port: 0, settings: { authCacheTtlMs: 0 } });
    try {
      const post = () =>
        fetch(`${server.url}/v1/feedback`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'thumbs', value: 'up', prompt: 'p', response: 'r' }),
        });
      expect((await post()).status).toBe(201);
      expect((await cli('keys', 'revoke', keyId)).out).toContain(`revoked ${keyId}`);
      expect((await post()).status).toBe(401);
    } finally {
      await server.close();
    }
  });
});
