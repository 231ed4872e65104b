// The generation group-commit writer on a real SQLite file: concurrent requests share one INSERT and every row
// lands with its values; a request whose rows cannot be stored fails alone, the others in its flush still land.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../shared/ids';
import { generations, projects } from '../shared/schema';
import { type OpenedDatabase, openDatabase } from './database';
import { GenerationWriter, type NewGenerationRow } from './generation-writer';

let dir: string;
let opened: OpenedDatabase;
const P = 'proj_gen_writer_test';

beforeAll(async () => {
  dir = mkdtempSync(join(os.tmpdir(), 'prefloop-gen-writer-'));
  opened = await openDatabase(join(dir, 'g.db'));
  await opened.db.insert(projects).values({ id: P, name: 'gen writer', createdAt: 0 });
});
afterAll(() => {
  opened.close();
  rmSync(dir, { recursive: true, force: true });
});

function row(i: number, over: Partial<NewGenerationRow> = {}): NewGenerationRow {
  return {
    id: newId('gen'),
    projectId: P,
    requestId: `req_${i}`,
    policyVersion: 1,
    prompt: `prompt ${i}`,
    output: `output ${i} \u{1F600}`,
    params: { temperature: 1, seed: i },
    promptTokens: 3,
    completionTokens: 5,
    finishReason: 'length',
    createdAt: 1_764_000_000_000 + i,
    ...over,
  };
}

describe('GenerationWriter', () => {
  it('stores concurrent requests in shared commits, every row with its values', async () => {
    let statements = 0;
    const counting = new Proxy(opened.db, {
      get: (db, k) => (k === 'insert' ? (...a: unknown[]) => (statements++, (db.insert as (...x: unknown[]) => unknown)(...a)) : Reflect.get(db, k)),
    });
    const counted = new GenerationWriter(counting);
    const requests = Array.from({ length: 40 }, (_, i) => [row(i), row(i)]);
    await Promise.all(requests.map((rows) => counted.write(rows)));
    expect(statements).toBeLessThan(requests.length / 4);
    for (const rows of requests) {
      for (const r of rows) expect((await opened.db.select().from(generations).where(eq(generations.id, r.id)))[0]).toEqual(r);
    }
  });

  it('fails only the request whose rows cannot be stored', async () => {
    const writer = new GenerationWriter(opened.db);
    const good = [row(1), row(2)];
    const dupe = row(3);
    await writer.write([dupe]);
    const results = await Promise.allSettled([writer.write([good[0]]), writer.write([{ ...dupe }]), writer.write([good[1]])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const ids = good.map((g) => g.id);
    const found = await opened.db.select({ n: sql<number>`count(*)` }).from(generations).where(sql`${generations.id} in (${sql.join(ids.map((i) => sql`${i}`), sql`, `)})`);
    expect(found[0].n).toBe(2);
  });

  it('stores each request alone without group commit (workerd)', async () => {
    const writer = new GenerationWriter(opened.db, { groupCommit: false });
    const r = row(7);
    await writer.write([r]);
    expect((await opened.db.select().from(generations).where(eq(generations.id, r.id)))[0]).toEqual(r);
  });
});
