// The data one run trains and judges on, read from the project's own rows only (one project's feedback never
// trains another's model), and only up to the run's feedback watermark, so a redelivered job sees exactly
// what its first attempt saw.
//
// - Pairs: shared/preference-pairs.ts over ALL the project's feedback up to the watermark (a majority needs
//   every vote), then "new feedback plus a replay sample of the old" (METHOD.md): pairs whose prompt got an
//   event since the last successful run come first, the remaining room up to `maxPairs` is a seeded random
//   sample of older pairs, so the RM keeps what it learned without being dominated by it.
// - Pointwise: every settled thumb (net up/down per prompt+response) of the train split trains the RM by the
//   logistic term; score events are not used (their scale is per metric and unknown to us).
// - Demonstrations: corrections of the train split (prompt, corrected text) new since the last successful run,
//   newest first, plus an optional replay sample of older ones (sft.replayDemonstrations).
// - Prompts: distinct prompts of stored generations and feedback created up to the run, split by the same
//   stable prompt hash: train prompts feed PPO rollouts, held-out prompts the gate. Held-out never trains.
import { and, desc, eq, lte, sql } from 'drizzle-orm';
import { type DemonstrationRecord, demonstrations, pairsForPrompt, type PairSourceEvent, type PreferencePair, splitOf } from '../../shared/preference-pairs';
import type { QueueDb } from '../../shared/queue/sql-queue';
import { feedback, generations, trainingRuns } from '../../shared/schema';
import type { TrainingConfig } from '../../shared/training-config';
import { mulberry32, shuffled } from '../rlhf/batch';

export interface RunData {
  trainPairs: PreferencePair[];
  heldOutPairs: PreferencePair[];
  pointwise: { prompt: string; response: string; label: 1 | -1 }[];
  demonstrations: DemonstrationRecord[];
  trainPrompts: string[];
  heldOutPrompts: string[];
  /** Counts for the run summary. */
  counts: Record<string, number>;
}

export interface Row extends PairSourceEvent {
  seq: number;
}

/** Watermark of the project's latest successful run before `runId` (0 if none): what counts as "new". */
async function previousWatermark(db: QueueDb, projectId: string, runId: string): Promise<number> {
  const [r] = await db
    .select({ w: sql<number | null>`max(${trainingRuns.feedbackWatermark})` })
    .from(trainingRuns)
    .where(and(eq(trainingRuns.projectId, projectId), eq(trainingRuns.status, 'succeeded'), sql`${trainingRuns.id} <> ${runId}`));
  return r?.w ?? 0;
}

/**
 * SFT's demonstrations from train-split rows (oldest first): the corrections new since watermark `prev`, newest first,
 * then a seeded sample of older ones (sft.replayDemonstrations), within sft.maxDemonstrations. Only new ones by
 * default: older ones are already in the warm-started policy, and fitting them again every run spent KL on memorising
 * them (bench:loop: a run's SFT added 0.4, 0.7, 2.2 and 3.2 nats as a newest-128 window filled with corrections that
 * earlier runs had trained on).
 */
export function selectDemonstrations(trainRows: readonly Row[], prev: number, cfg: TrainingConfig): { fresh: DemonstrationRecord[]; replay: DemonstrationRecord[] } {
  const newestFirst = [...trainRows].reverse();
  // demonstrations() keeps each one at its newest occurrence, so those corrected since `prev` come first.
  const all = demonstrations(newestFirst);
  const nFresh = demonstrations(newestFirst.filter((r) => r.seq > prev)).length;
  const fresh = all.slice(0, Math.min(nFresh, cfg.sft.maxDemonstrations));
  const older = all.slice(nFresh);
  const room = Math.max(0, Math.min(cfg.sft.replayDemonstrations, cfg.sft.maxDemonstrations - fresh.length));
  return { fresh, replay: shuffled(older, cfg.run.seed).slice(0, room) };
}

export async function loadRunData(
  db: QueueDb,
  run: { id: string; projectId: string; feedbackWatermark: number | null; createdAt: number },
  cfg: TrainingConfig,
): Promise<RunData> {
  const watermark = run.feedbackWatermark ?? 0;
  const prev = await previousWatermark(db, run.projectId, run.id);
  const frac = cfg.run.heldOutFraction;
  const rows: Row[] = await db
    .select({
      seq: feedback.seq,
      type: feedback.type,
      prompt: feedback.prompt,
      response: feedback.response,
      rejected: feedback.rejected,
      correction: feedback.correction,
      value: feedback.value,
    })
    .from(feedback)
    .where(and(eq(feedback.projectId, run.projectId), lte(feedback.seq, watermark)))
    .orderBy(feedback.seq);

  // Group by prompt (insertion order of first event) and note whether a group has new events.
  const groups = new Map<string, { events: Row[]; newest: number }>();
  for (const r of rows) {
    let g = groups.get(r.prompt);
    if (!g) groups.set(r.prompt, (g = { events: [], newest: 0 }));
    g.events.push(r);
    g.newest = Math.max(g.newest, r.seq);
  }

  const freshTrain: PreferencePair[] = [];
  const oldTrain: PreferencePair[] = [];
  const heldOutPairs: PreferencePair[] = [];
  const pointwise: RunData['pointwise'] = [];
  for (const [prompt, g] of groups) {
    const pairs = pairsForPrompt(prompt, g.events);
    if (splitOf(prompt, frac) === 'heldout') {
      heldOutPairs.push(...pairs);
      continue;
    }
    (g.newest > prev ? freshTrain : oldTrain).push(...pairs);
    const net = new Map<string, number>();
    for (const e of g.events) if (e.type === 'thumbs' && e.value) net.set(e.response, (net.get(e.response) ?? 0) + Math.sign(e.value));
    for (const [response, n] of net) if (n !== 0) pointwise.push({ prompt, response, label: n > 0 ? 1 : -1 });
  }
  const maxPairs = cfg.rewardModel.maxPairs;
  // Newest groups first when even the new pairs overflow the budget.
  const fresh = freshTrain.slice(-maxPairs);
  const replay = shuffled(oldTrain, cfg.run.seed).slice(0, Math.max(0, maxPairs - fresh.length));
  const trainPairs = [...fresh, ...replay];

  const { fresh: freshDemos, replay: replayDemos } = selectDemonstrations(
    rows.filter((r) => splitOf(r.prompt, frac) === 'train'),
    prev,
    cfg,
  );
  const demos = [...freshDemos, ...replayDemos];

  // Prompts users actually sent (generations), then feedback prompts; newest first, deduplicated.
  const gen = await db
    .select({ prompt: generations.prompt })
    .from(generations)
    .where(and(eq(generations.projectId, run.projectId), lte(generations.createdAt, run.createdAt)))
    .orderBy(desc(generations.createdAt))
    .limit(cfg.run.maxRolloutPrompts * 4);
  const seen = new Set<string>();
  const trainPrompts: string[] = [];
  const heldOut: string[] = [];
  for (const p of [...gen.map((g) => g.prompt), ...[...groups.keys()].reverse()]) {
    if (seen.has(p) || !p) continue;
    seen.add(p);
    if (splitOf(p, frac) === 'heldout') heldOut.push(p);
    else if (trainPrompts.length < cfg.run.maxRolloutPrompts) trainPrompts.push(p);
  }
  const rnd = mulberry32(cfg.run.seed);
  const heldOutPrompts = heldOut.length <= cfg.run.evalPrompts ? heldOut : shuffled(heldOut, Math.floor(rnd() * 2 ** 31)).slice(0, cfg.run.evalPrompts);

  return {
    trainPairs,
    heldOutPairs,
    pointwise,
    demonstrations: demos,
    trainPrompts,
    heldOutPrompts,
    counts: {
      'data/feedback_events': rows.length,
      'data/new_pairs': fresh.length,
      'data/replay_pairs': replay.length,
      'data/heldout_pairs': heldOutPairs.length,
      'data/pointwise': pointwise.length,
      'data/demonstrations': demos.length,
      'data/replay_demonstrations': replayDemos.length,
      'data/train_prompts': trainPrompts.length,
      'data/heldout_prompts': heldOutPrompts.length,
    },
  };
}
