// The group-commit writer on a real SQLite file: values survive the JSON row transport exactly, concurrent writes
// share commits and all land, and client ids resolve to replay / conflict within one flush and against stored rows.
// Every case runs twice: with the portable insert (json_each on the writer's own connection, as on D1) and with
// Node's insert thread (api/adapters/feedback-insert-thread.ts: its own connection, multi-row VALUES statements).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newTimeOrderedId } from '../shared/ids';
import { feedback, projects } from '../shared/schema';
import { FeedbackInsertThread } from './adapters/feedback-insert-thread';
import { type OpenedDatabase, openDatabase } from './database';
import { FeedbackWriter, type NewFeedbackRow } from './feedback-writer';

let dir: string;
let opened: OpenedDatabase;
let thread: FeedbackInsertThread;
const writers: Record<string, FeedbackWriter> = {};
const P = 'proj_writer_test';

beforeAll(async () => {
  dir = mkdtempSync(join(os.tmpdir(), 'prefloop-writer-'));
  opened = await openDatabase(join(dir, 'w.db'));
  await opened.db.insert(projects).values({ id: P, name: 'writer', createdAt: 0 });
  thread = new FeedbackInsertThread(join(dir, 'w.db'));
  writers['json_each on db'] = new FeedbackWriter(opened.db);
  writers['insert thread'] = new FeedbackWriter(opened.db, { groupCommit: true, inserter: thread });
});
afterAll(async () => {
  await thread.close();
  opened.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function row(over: Partial<NewFeedbackRow> = {}): NewFeedbackRow {
  return {
    id: newTimeOrderedId('fb', Date.now()),
    projectId: P,
    type: 'thumbs',
    generationId: null,
    rejectedGenerationId: null,
    prompt: `prompt ${n++}`,
    response: 'response',
    rejected: null,
    correction: null,
    value: 1,
    name: null,
    comment: null,
    userId: null,
    metadata: null,
    bodyHash: 'h'.repeat(64),
    createdAt: 1_764_000_000_000 + n,
    ...over,
  };
}
const stored = async (id: string) => (await opened.db.select().from(feedback).where(eq(feedback.id, id)))[0];

describe.each(['json_each on db', 'insert thread'])('FeedbackWriter, %s', (inserter) => {
  let writer: FeedbackWriter;
  beforeAll(() => {
    writer = writers[inserter];
  });

  it('stores text and numbers exactly (unicode, quotes, line separators, doubles, metadata)', async () => {
    const odd = ['quote " back \\ slash', 'emoji 😀 ü 中文', 'tab\tnl\n\u2028\u2029', ' ', '{"not": "json"}'];
    const values = [0.1, -2.5e-300, 1e308, 123456789.123456789, 2 ** 53 + 2, -7];
    const rows = odd.map((text, i) =>
      row({ type: 'score', name: text, prompt: text, response: `${text}!`, comment: text, userId: text, value: values[i], metadata: { text, nested: { a: [1, 'b', null] } } }),
    );
    const outcomes = await writer.write(rows, rows.map(() => false));
    expect(outcomes.map((o) => o.status)).toEqual(rows.map(() => 'created'));
    for (const r of rows) {
      const s = await stored(r.id);
      expect(s).toMatchObject({ prompt: r.prompt, response: r.response, comment: r.comment, userId: r.userId, name: r.name, value: r.value, metadata: r.metadata, createdAt: r.createdAt });
      expect(Object.is(s.value, r.value)).toBe(true);
    }
  });

  it('stores a NUL character byte for byte (the libsql driver reads such text back only up to the NUL, either way)', async () => {
    const r = row({ prompt: 'nul\u0000inside' });
    await writer.write([r], [false]);
    const [h] = await opened.db.all<{ h: string }>(sql`SELECT hex(prompt) AS h FROM feedback WHERE id = ${r.id}`);
    expect(h.h).toBe(Buffer.from(r.prompt).toString('hex').toUpperCase());
  });

  it('stores a lone UTF-16 surrogate as U+FFFD (as a bound parameter would), and the row reads back', async () => {
    const r = row({ prompt: 'a\ud800b', response: 'c\udc00' });
    await writer.write([r], [false]);
    expect(await stored(r.id)).toMatchObject({ prompt: 'a\ufffdb', response: 'c\ufffd' });
  });

  it('stores every row of many concurrent writers (sharing commits) exactly once', async () => {
    const before = Number((await opened.db.all<{ c: number }>(sql`SELECT count(*) AS c FROM feedback`))[0].c);
    const units = Array.from({ length: 200 }, (_, i) => Array.from({ length: 1 + (i % 7) }, () => row()));
    const outcomes = await Promise.all(units.map((u) => writer.write(u, u.map(() => false))));
    expect(outcomes.flat().every((o) => o.status === 'created')).toBe(true);
    const after = Number((await opened.db.all<{ c: number }>(sql`SELECT count(*) AS c FROM feedback`))[0].c);
    expect(after - before).toBe(units.flat().length);
  });

  it('rejects a flush that breaks a constraint, stores none of its rows, and keeps writing afterwards', async () => {
    const good = row();
    const orphan = row({ projectId: 'proj_that_does_not_exist' }); // foreign key to projects
    await expect(writer.write([good, orphan], [false, false])).rejects.toThrow(); // drizzle wraps the FOREIGN KEY error as "Failed query: ..."
    expect(await stored(good.id)).toBeUndefined();
    const next = row();
    expect((await writer.write([next], [false]))[0].status).toBe('created');
    expect(await stored(next.id)).toBeDefined();
  });

  it('resolves client ids: replay or conflict within one flush and against stored rows, one row stored per id', async () => {
    const id = `client-a-${inserter}`;
    const a = row({ id, bodyHash: 'A'.repeat(64) });
    const aSame = { ...a };
    const aOther = { ...a, bodyHash: 'B'.repeat(64), prompt: 'different' };
    const [first, second, third] = await Promise.all([writer.write([a], [true]), writer.write([aSame], [true]), writer.write([aOther], [true])]);
    expect([first[0].status, second[0].status, third[0].status]).toEqual(['created', 'replayed', 'conflict']);
    expect(third[0].row.prompt).toBe(a.prompt);
    const later = await writer.write([aSame, aOther, row({ id: `client-b-${inserter}` })], [true, true, true]);
    expect(later.map((o) => o.status)).toEqual(['replayed', 'conflict', 'created']);
    const rows = await opened.db.select().from(feedback).where(eq(feedback.id, id)).orderBy(asc(feedback.seq));
    expect(rows).toHaveLength(1);
  });
});
