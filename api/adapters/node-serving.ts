// The serving ports the Node entry plugs into the app: the artifact store (file://, base://, s3://) and the
// policy registry on onnxruntime-node, polling the database for live-version changes.
import type { ArtifactStore } from '../../shared/artifact-store';
import type { OrtSessionDefaults } from '../../shared/onnx-session';
import type { Database } from '../deps';
import { PolicyRegistry, type PolicyRegistryOptions } from '../policy/registry';
import { createNodeArtifactStore, type NodeArtifactStoreOptions } from './artifact-stores';
import { nodeOnnxRuntime } from './onnxruntime-node';

export interface NodeServingOptions extends NodeArtifactStoreOptions {
  /** Live-version poll interval (ms). Default PREFLOOP_POLICY_POLL_MS or 2000. */
  pollMs?: number;
  /** Most sequences one policy decodes together. Default 64. */
  maxBatchRows?: number;
  /** onnxruntime session overrides (threads...). Default shared/onnx-session.ts. */
  ort?: Partial<OrtSessionDefaults>;
  /** A ready artifact store (tests); otherwise built from the options above. */
  artifacts?: ArtifactStore;
  log?: PolicyRegistryOptions['log'];
  /** Start polling at once (default true). */
  poll?: boolean;
}

/** A `ports` factory for startServer: builds the store and the registry once the database is open. */
export function nodeServingPorts(o: NodeServingOptions = {}) {
  return (db: Database, clock: () => number) => {
    const artifacts = o.artifacts ?? createNodeArtifactStore(o);
    const policies = new PolicyRegistry({
      db,
      artifacts,
      runtime: nodeOnnxRuntime(o.ort),
      clock,
      pollMs: o.pollMs ?? (Number(process.env.PREFLOOP_POLICY_POLL_MS) || 2000),
      maxBatchRows: o.maxBatchRows,
      log: o.log,
    });
    if (o.poll !== false) policies.start();
    return { artifacts, policies };
  };
}
