// Migration drift: apply migrations/ to an empty database (the same way the server does at start) and compare
// every table, column and index with shared/schema.ts. A schema change without `npm run db:generate` fails here.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { is } from 'drizzle-orm';
import { SQLiteTable, getTableConfig } from 'drizzle-orm/sqlite-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenedDatabase, openDatabase } from '../../api/database';
import * as schema from '../../shared/schema';

let dir: string;
let opened: OpenedDatabase;
beforeAll(async () => {
  dir = mkdtempSync(join(os.tmpdir(), 'prefloop-migrations-'));
  opened = await openDatabase(join(dir, 'empty.db'));
});
afterAll(() => {
  opened.close();
  rmSync(dir, { recursive: true, force: true });
});

const tables = (Object.values(schema) as unknown[]).filter((v) => is(v, SQLiteTable)).map((t) => getTableConfig(t as SQLiteTable));

async function rows<T>(sqlText: string): Promise<T[]> {
  return (await opened.client.execute(sqlText)).rows as unknown as T[];
}

describe('migrations match shared/schema.ts', () => {
  it('creates exactly the schema’s tables', async () => {
    const inDb = (await rows<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__drizzle%'")).map((r) => r.name);
    expect(inDb.sort()).toEqual(tables.map((t) => t.name).sort());
  });

  for (const t of tables) {
    it(`table ${t.name}: columns and indexes`, async () => {
      const cols = await rows<{ name: string; type: string; notnull: number; pk: number }>(`PRAGMA table_info(${t.name})`);
      const expected = t.columns.map((c) => ({ name: c.name, type: c.getSQLType().toLowerCase(), notnull: c.notNull || c.primary ? 1 : 0 }));
      expect(cols.map((c) => ({ name: c.name, type: c.type.toLowerCase(), notnull: c.pk && c.type.toLowerCase() === 'integer' ? 1 : Number(c.notnull) || (c.pk ? 1 : 0) })).sort(byName)).toEqual(
        expected.sort(byName),
      );
      const pkCols = cols.filter((c) => Number(c.pk) > 0).map((c) => c.name).sort();
      const expectedPk = [...t.columns.filter((c) => c.primary).map((c) => c.name), ...t.primaryKeys.flatMap((pk) => pk.columns.map((c) => c.name))].sort();
      expect(pkCols).toEqual(expectedPk);

      const idx = await rows<{ name: string; unique: number; origin: string }>(`PRAGMA index_list(${t.name})`);
      const declared = idx.filter((i) => i.origin === 'c');
      const actual = await Promise.all(
        declared.map(async (i) => ({ name: i.name, unique: Number(i.unique) === 1, columns: (await rows<{ name: string }>(`PRAGMA index_info(${i.name})`)).map((c) => c.name) })),
      );
      const wanted = [
        ...t.indexes.map((i) => ({ name: i.config.name, unique: i.config.unique, columns: i.config.columns.map((c) => (c as { name: string }).name) })),
        // `.unique()` on a column becomes a `<table>_<column>_unique` index.
        ...t.columns.filter((c) => c.isUnique).map((c) => ({ name: c.uniqueName ?? `${t.name}_${c.name}_unique`, unique: true, columns: [c.name] })),
      ];
      expect(actual.sort(byName)).toEqual(wanted.sort(byName));
    });
  }
});

function byName(a: { name: string }, b: { name: string }) {
  return a.name.localeCompare(b.name);
}
