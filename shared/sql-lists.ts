// `column IN (list)` with the whole list bound as ONE JSON parameter, unpacked by SQLite's json_each. drizzle's
// inArray binds one parameter per value, and Cloudflare D1 refuses a statement with more than 100 bound
// parameters; a 1,000-event feedback batch can name a thousand ids. One string also keeps the SQL text constant.
import { type SQL, type SQLWrapper, sql } from 'drizzle-orm';

export function inJsonList(column: SQLWrapper, values: readonly string[]): SQL {
  return sql`${column} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`;
}
