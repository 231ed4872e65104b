// Projects and API keys: creation, seeding, listing and revocation. Shared by the CLI, the server's start-up seed
// and tests. Keys are returned in clear exactly once, at creation; only their SHA-256 is stored.
import { and, asc, eq, isNull } from 'drizzle-orm';
import { type Sha256Hex, sha256Hex } from '../shared/hash';
import { API_KEY_PREFIX_LENGTH, newApiKey, newId } from '../shared/ids';
import { apiKeys, projects } from '../shared/schema';
import type { Scope } from './auth';
import type { Database } from './deps';

export const DEFAULT_PROJECT = 'default';

export interface Project {
  id: string;
  name: string;
  createdAt: number;
}

export async function findProject(db: Database, name: string): Promise<Project | undefined> {
  const [p] = await db.select({ id: projects.id, name: projects.name, createdAt: projects.createdAt }).from(projects).where(eq(projects.name, name));
  return p;
}

export async function createProject(db: Database, name: string, now: number): Promise<Project> {
  const p = { id: newId('proj'), name, createdAt: now };
  await db.insert(projects).values(p);
  return p;
}

/** The project called `name`, created if missing; `created` says which (concurrent starts are safe). */
export async function ensureProject(db: Database, name: string, now: number): Promise<{ project: Project; created: boolean }> {
  const inserted = await db
    .insert(projects)
    .values({ id: newId('proj'), name, createdAt: now })
    .onConflictDoNothing({ target: projects.name })
    .returning({ id: projects.id, name: projects.name, createdAt: projects.createdAt });
  if (inserted.length > 0) return { project: inserted[0], created: true };
  return { project: (await findProject(db, name))!, created: false };
}

export async function listProjects(db: Database): Promise<Project[]> {
  return db.select({ id: projects.id, name: projects.name, createdAt: projects.createdAt }).from(projects).orderBy(asc(projects.createdAt));
}

export interface CreatedKey {
  id: string;
  /** The key in clear: shown once, never stored. */
  key: string;
  prefix: string;
  scopes: Scope[];
}

/** Stores `key` (or a new random key) for a project. Idempotent for a given key: a second call changes nothing. */
export async function addKey(
  db: Database,
  opts: { projectId: string; name: string; scopes: Scope[]; now: number; key?: string; sha256?: Sha256Hex },
): Promise<CreatedKey & { created: boolean }> {
  const key = opts.key ?? newApiKey();
  const hash = await (opts.sha256 ?? sha256Hex)(key);
  const row = {
    id: newId('key'),
    projectId: opts.projectId,
    name: opts.name,
    prefix: key.slice(0, API_KEY_PREFIX_LENGTH),
    keyHash: hash,
    scopes: opts.scopes,
    createdAt: opts.now,
  };
  const inserted = await db.insert(apiKeys).values(row).onConflictDoNothing({ target: apiKeys.keyHash }).returning({ id: apiKeys.id });
  if (inserted.length > 0) return { id: row.id, key, prefix: row.prefix, scopes: opts.scopes, created: true };
  const [existing] = await db.select().from(apiKeys).where(eq(apiKeys.keyHash, hash));
  return { id: existing.id, key, prefix: existing.prefix, scopes: existing.scopes, created: false };
}

export async function listKeys(db: Database, projectId: string) {
  return db
    .select({ id: apiKeys.id, name: apiKeys.name, prefix: apiKeys.prefix, scopes: apiKeys.scopes, createdAt: apiKeys.createdAt, revokedAt: apiKeys.revokedAt })
    .from(apiKeys)
    .where(eq(apiKeys.projectId, projectId))
    .orderBy(asc(apiKeys.createdAt));
}

/** Marks a key revoked; true if it was active. Running servers stop accepting it within their auth cache TTL. */
export async function revokeKey(db: Database, keyId: string, now: number): Promise<boolean> {
  const res = await db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id });
  return res.length > 0;
}
