// The artifact store the Node entry hands the app: file:// under ./data/artifacts, base:// (read-only) for the
// bundled base model, s3:// through the AWS SDK (client built on first use from the environment).
import { RoutingArtifactStore, type ArtifactStore } from '../../shared/artifact-store';
import { DirectoryArtifactStore } from './directory-artifact-store';
import { S3ArtifactStore, s3ClientConfigFromEnv } from './s3-artifact-store';

export interface NodeArtifactStoreOptions {
  /** Root for relative file:// URIs. Default PREFLOOP_ARTIFACTS or ./data/artifacts. */
  artifactsDir?: string;
  /** Directory behind base://. Default PREFLOOP_BASE_MODEL_DIR or ./models/base. */
  baseModelDir?: string;
  /** S3 store (defaults to one configured from the environment, built lazily). */
  s3?: ArtifactStore;
}

export function createNodeArtifactStore(o: NodeArtifactStoreOptions = {}): RoutingArtifactStore {
  let s3 = o.s3;
  const lazyS3: ArtifactStore = {
    get: (u) => (s3 ??= new S3ArtifactStore({ clientConfig: s3ClientConfigFromEnv() })).get(u),
    put: (u, b) => (s3 ??= new S3ArtifactStore({ clientConfig: s3ClientConfigFromEnv() })).put(u, b),
    exists: (u) => (s3 ??= new S3ArtifactStore({ clientConfig: s3ClientConfigFromEnv() })).exists(u),
    list: (u) => (s3 ??= new S3ArtifactStore({ clientConfig: s3ClientConfigFromEnv() })).list(u),
  };
  return new RoutingArtifactStore({
    file: new DirectoryArtifactStore({ scheme: 'file', root: o.artifactsDir ?? process.env.PREFLOOP_ARTIFACTS ?? './data/artifacts', allowAbsolute: true }),
    base: new DirectoryArtifactStore({ scheme: 'base', root: o.baseModelDir ?? process.env.PREFLOOP_BASE_MODEL_DIR ?? './models/base', readOnly: true }),
    s3: lazyS3,
  });
}
