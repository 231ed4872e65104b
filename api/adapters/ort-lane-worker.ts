// Worker-thread side of an off-thread decode lane (worker-lane.ts is the other side): an onnxruntime-node
// session over the bytes in workerData and one SessionLane (shared/sampling/lane.ts) holding its KV cache,
// made when the first call brings the model's sizes.
// Messages are handled one at a time, in order, so the cache operations queued with a call (row moves, clear)
// apply before that call's run, exactly as they would in-thread.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { SessionLane } from '../../shared/sampling/lane';
import { unpackStep, type LaneCall, type LaneInit, type LaneReply } from './worker-lane';

const init = workerData as LaneInit;
const session = await ort.InferenceSession.create(init.onnx, init.options);
const port = parentPort!;
let lane: SessionLane | null = null;

let chain = Promise.resolve();
port.on('message', (call: LaneCall) => {
  chain = chain.then(() => handle(call));
});

async function handle(call: LaneCall): Promise<void> {
  try {
    for (const op of call.ops) {
      if (op.kind === 'shape') lane = new SessionLane(session, op.shape);
      else if (op.kind === 'move') lane!.moveRow(op.from, op.to, op.n);
      else lane!.clear();
    }
    if (!lane) throw new Error('decode lane: no model shape');
    // The outputs are fresh buffers the lane does not keep: hand them over instead of copying.
    let reply: LaneReply;
    let transfer: ArrayBuffer[];
    if (call.run.kind === 'prefill') {
      const out = await lane.prefill(call.run.ids, call.run.g, call.run.len, call.run.sources, call.run.used);
      const logits = owned(out.logits);
      const values = out.values && owned(out.values);
      reply = { id: call.id, out: { logits, values } };
      transfer = [logits.buffer, ...(values ? [values.buffer] : [])] as ArrayBuffer[];
    } else {
      const { next, lens, draws } = unpackStep(call.run.packed, call.run.rows);
      const out = await lane.step(next, lens, draws);
      const values = out.values && owned(out.values);
      reply = { id: call.id, out: { ...out, values } };
      transfer = [out.tokens.buffer, out.logprobs.buffer, ...(values ? [values.buffer] : [])] as ArrayBuffer[];
    }
    port.postMessage(reply, transfer);
  } catch (e) {
    const reply: LaneReply = { id: call.id, error: (e as Error)?.message ?? String(e) };
    port.postMessage(reply);
  }
}

/** The array alone in its own buffer (transferable without taking neighbours along). */
function owned<T extends Float32Array>(a: T): T {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T);
}

port.postMessage({ ready: true });
