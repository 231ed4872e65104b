// Worker-thread entry of the data-parallel trainer: one TF.js wasm backend per thread (TF.js has no wasm
// threads under Node, so this is how a second core helps). Parameters and the token stream are shared
// memory; the gradient goes into this worker's slice of a shared gradient buffer; messages carry only
// window offsets and scalars.
import { parentPort, workerData } from 'node:worker_threads';
import { ensureBackend } from '../backend';
import { Replica } from './replica';
import type { WorkerInit, WorkerReply, WorkerRequest } from './parallel';

const init = workerData as WorkerInit;
const port = parentPort!;

async function main() {
  await ensureBackend({ prefer: init.backend, log: () => {} });
  const params = new Float32Array(init.paramsSab);
  const grad = new Float32Array(init.gradSab, init.gradOffset * 4, params.length);
  const replica = new Replica(init.config, init.heads, params, new Uint16Array(init.tokensSab));
  const evalReplicas = new Map<SharedArrayBuffer, Replica>();
  port.on('message', (req: WorkerRequest) => {
    try {
      let reply: WorkerReply;
      if (req.type === 'grad') {
        replica.sync(req.version);
        reply = { id: req.id, loss: replica.gradient(req.starts, req.T, grad) };
      } else {
        // Held-out streams arrive once as shared memory; a second replica reads them with the same weights.
        let r = evalReplicas.get(req.tokensSab);
        if (!r) evalReplicas.set(req.tokensSab, (r = new Replica(init.config, init.heads, params, new Uint16Array(req.tokensSab))));
        r.sync(req.version);
        reply = { id: req.id, ...r.evalNats(req.starts, req.countFrom, req.T) };
      }
      port.postMessage(reply);
    } catch (err) {
      port.postMessage({ id: req.id, error: err instanceof Error ? err.stack ?? err.message : String(err) });
    }
  });
  port.postMessage({ id: -1, ready: true });
}

main().catch((err) => port.postMessage({ id: -1, error: String(err?.stack ?? err) }));
