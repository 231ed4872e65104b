// `npm run simulate` and `npm run bench:loop`: runs the simulation (sim/loop.ts) for one or every preference
// and writes, per preference, `<stem>.json`, plus the chart `<stem>.svg` of every result in the directory
// (win rate and hidden score against KL). Stems: loop (vader), loop-<preference>; `--quick` adds `-quick`.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { renderChart, type ChartSeries } from './chart';
import { runSimulation, type SimResult } from './loop';
import { PREFERENCES } from './preferences';
import { DEFAULT_SETTINGS, QUICK_SETTINGS } from './presets';
import { ensureTinyBase } from './tiny-base';

const repoRoot = resolve(import.meta.dirname, '..');

export interface CliOptions {
  preference: string;
  quick: boolean;
  out: string;
  baseModel?: string;
  maxEvents?: number;
  seed?: number;
  keepData: boolean;
}

export function parseCli(argv: string[], defaults: { out: string }): CliOptions {
  const p = new Command()
    .name('simulate')
    .description('Simulated users with a hidden preference, through the public REST API; measures every new live policy')
    .option('--preference <name>', `hidden preference: ${Object.keys(PREFERENCES).join(', ')} or all`, 'vader')
    .option('--quick', 'reduced version: tiny base model, fewer events (about 5 minutes)', false)
    .option('--out <dir>', 'where to write the JSON results and the SVG chart', defaults.out)
    .option('--base-model <dir>', 'base model artifact directory (default: models/base, or the tiny model with --quick)')
    .option('--max-events <n>', 'feedback events in total (default: the preset)')
    .option('--seed <n>', 'seed of prompts, users, labeler and evaluation')
    .option('--keep-data', "keep the service's temporary data directory", false)
    .allowExcessArguments(false)
    .parse(argv, { from: 'user' });
  const o = p.opts();
  if (o.preference !== 'all' && !PREFERENCES[o.preference]) p.error(`unknown preference "${o.preference}" (known: ${Object.keys(PREFERENCES).join(', ')}, all)`);
  return {
    preference: o.preference,
    quick: Boolean(o.quick),
    out: resolve(o.out),
    baseModel: o.baseModel,
    maxEvents: o.maxEvents === undefined ? undefined : Number(o.maxEvents),
    seed: o.seed === undefined ? undefined : Number(o.seed),
    keepData: Boolean(o.keepData),
  };
}

export const stemOf = (preference: string, quick: boolean) => `loop${preference === 'vader' ? '' : `-${preference}`}${quick ? '-quick' : ''}`;

export function chartSeries(r: SimResult): ChartSeries {
  return {
    label: `${r.preference} (${r.events} events)`,
    baseHiddenScore: r.base.hidden_score,
    points: r.versions.map((v) => ({ version: v.version, kl: v.kl_to_base, winRate: v.win_rate, ciLow: v.win_rate_ci_low, ciHigh: v.win_rate_ci_high, hiddenScore: v.hidden_score })),
  };
}

/** Resolves the base model: explicit, else models/base (default run), else the cached tiny model. */
export async function resolveBaseModel(o: Pick<CliOptions, 'baseModel' | 'quick'>, log: (l: string) => void): Promise<string> {
  if (o.baseModel) return resolve(o.baseModel);
  const base = join(repoRoot, 'models', 'base');
  if (!o.quick && existsSync(join(base, 'policy.onnx'))) return base;
  if (!o.quick) log('[sim] models/base has no policy.onnx yet: using the tiny base model');
  return ensureTinyBase(undefined, log);
}

export async function main(argv: string[], defaults: { out: string }): Promise<SimResult[]> {
  const o = parseCli(argv, defaults);
  const log = (l: string) => console.log(l);
  const baseModelDir = await resolveBaseModel(o, log);
  const settings = o.quick ? QUICK_SETTINGS : DEFAULT_SETTINGS;
  const names = o.preference === 'all' ? Object.keys(PREFERENCES) : [o.preference];
  await mkdir(o.out, { recursive: true });
  const results: SimResult[] = [];
  for (const preference of names) {
    const r = await runSimulation({
      ...settings,
      ...(o.maxEvents !== undefined ? { maxEvents: o.maxEvents } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      preference,
      baseModelDir,
      keepData: o.keepData,
      log,
    });
    results.push(r);
    const stem = stemOf(preference, o.quick);
    await writeFile(join(o.out, `${stem}.json`), `${JSON.stringify({ ...r, base_model: baseModelDir.replace(`${repoRoot}/`, ''), quick: o.quick }, null, 2)}\n`);
    // One chart over every preference's latest result of this kind (default or quick) in the directory.
    const all = Object.keys(PREFERENCES)
      .map((p) => join(o.out, `${stemOf(p, o.quick)}.json`))
      .filter((f) => existsSync(f))
      .map((f) => JSON.parse(readFileSync(f, 'utf8')) as SimResult);
    const chartStem = stemOf('vader', o.quick);
    await writeFile(join(o.out, `${chartStem}.svg`), renderChart(all.map(chartSeries), `prefloop: labeler win rate and hidden score vs KL to base${o.quick ? ' (quick)' : ''}`));
    log(
      `[sim] ${preference}: ${r.events} events, ${r.wall_s.toFixed(0)} s, final v${r.final_version}: win rate ${r.win_rate.toFixed(3)} (95% low ${r.win_rate_ci_low.toFixed(3)}), ` +
        `KL ${r.kl_to_base?.toFixed(2) ?? '?'}, RM accuracy ${r.rm_accuracy?.toFixed(3) ?? '?'} → ${join(o.out, `${stem}.json`)}, ${join(o.out, `${chartStem}.svg`)}`,
    );
  }
  return results;
}

if (process.argv[1]?.endsWith('sim/cli.ts')) {
  main(process.argv.slice(2), { out: join(repoRoot, 'data', 'sim', 'results') }).then(
    () => process.exit(0),
    (e) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(1);
    },
  );
}
