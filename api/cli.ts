// `npm run cli -- <command>`: manage projects and API keys in the database PREFLOOP_DB points at (migrated first).
//   projects create <name> | projects list
//   keys create --project <name> [--scopes ingest,admin] [--name <label>] | keys list --project <name> | keys revoke <key-id>
import { Command, InvalidArgumentError } from 'commander';
import type { Scope } from './auth';
import { openDatabase } from './database';
import { loadEnv } from './env';
import { addKey, createProject, findProject, listKeys, listProjects, revokeKey } from './keys';
import { nodeSha256Hex } from './server';

const env = loadEnv();
const program = new Command('prefloop').description(`prefloop admin CLI (database: ${env.PREFLOOP_DB})`);

function parseScopes(value: string): Scope[] {
  const scopes = value.split(',').map((s) => s.trim());
  for (const s of scopes) if (s !== 'ingest' && s !== 'admin') throw new InvalidArgumentError(`unknown scope "${s}" (ingest, admin)`);
  return scopes as Scope[];
}

async function withDb<T>(fn: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> {
  const opened = await openDatabase(env.PREFLOOP_DB);
  try {
    return await fn(opened.db);
  } finally {
    opened.close();
  }
}

async function projectOrExit(db: Parameters<typeof findProject>[0], name: string) {
  const p = await findProject(db, name);
  if (!p) {
    console.error(`no project named "${name}" (create it with: npm run cli -- projects create ${name})`);
    process.exit(1);
  }
  return p;
}

const projects = program.command('projects').description('create and list projects');
projects
  .command('create <name>')
  .description('create a project')
  .action((name: string) =>
    withDb(async (db) => {
      if (await findProject(db, name)) {
        console.error(`project "${name}" already exists`);
        process.exit(1);
      }
      const p = await createProject(db, name, Date.now());
      console.log(`created project ${p.name} (${p.id})`);
    }),
  );
projects
  .command('list')
  .description('list projects')
  .action(() =>
    withDb(async (db) => {
      for (const p of await listProjects(db)) console.log(`${p.id}\t${p.name}\t${new Date(p.createdAt).toISOString()}`);
    }),
  );

const keys = program.command('keys').description('create, list and revoke API keys');
keys
  .command('create')
  .description('create an API key (printed once; only its hash is stored)')
  .requiredOption('--project <name>', 'project name')
  .option('--scopes <list>', 'comma-separated: ingest, admin', parseScopes, ['ingest'] as Scope[])
  .option('--name <label>', 'label shown in listings', 'cli')
  .action((opts: { project: string; scopes: Scope[]; name: string }) =>
    withDb(async (db) => {
      const p = await projectOrExit(db, opts.project);
      const k = await addKey(db, { projectId: p.id, name: opts.name, scopes: opts.scopes, now: Date.now(), sha256: nodeSha256Hex });
      console.log(`created key ${k.id} for project ${p.name} with scopes ${k.scopes.join(',')}; store it now, it is not shown again:`);
      console.log(k.key);
    }),
  );
keys
  .command('list')
  .description("list a project's keys (prefix only)")
  .requiredOption('--project <name>', 'project name')
  .action((opts: { project: string }) =>
    withDb(async (db) => {
      const p = await projectOrExit(db, opts.project);
      for (const k of await listKeys(db, p.id)) {
        console.log(`${k.id}\t${k.prefix}…\t${k.scopes.join(',')}\t${k.name}\t${k.revokedAt ? `revoked ${new Date(k.revokedAt).toISOString()}` : 'active'}`);
      }
    }),
  );
keys
  .command('revoke <keyId>')
  .description('revoke a key (running servers stop accepting it within their auth cache TTL, default 5 s)')
  .action((keyId: string) =>
    withDb(async (db) => {
      if (!(await revokeKey(db, keyId, Date.now()))) {
        console.error(`no active key ${keyId}`);
        process.exit(1);
      }
      console.log(`revoked ${keyId}`);
    }),
  );

await program.parseAsync(process.argv);
