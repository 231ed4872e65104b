// The artifact store port: where model artifact directories (config.json, tokenizer.json, policy.onnx, ...)
// live. The API reads policies from it, the worker publishes new ones to it. Addresses are URIs:
//   file://<path>        a local directory (absolute path, or relative to the store's root, ./data/artifacts)
//   base://<file>        the bundled pretrained base model (models/base), read-only
//   s3://<bucket>/<key>  S3 or any S3-compatible store (R2, an emulator)
// Adapters (Node: api/adapters/) implement this interface; this file stays runtime-neutral.

export interface ArtifactStore {
  /** The object's bytes; throws ArtifactNotFoundError when there is none. */
  get(uri: string): Promise<Uint8Array>;
  /** Writes (or replaces) an object; throws ArtifactReadOnlyError for read-only schemes. */
  put(uri: string, bytes: Uint8Array): Promise<void>;
  exists(uri: string): Promise<boolean>;
  /** URIs of every object under a directory URI (recursive), sorted. */
  list(dirUri: string): Promise<string[]>;
}

export class ArtifactNotFoundError extends Error {
  readonly code = 'artifact_not_found';
  constructor(readonly uri: string) {
    super(`no artifact at ${uri}`);
    this.name = 'ArtifactNotFoundError';
  }
}

export class ArtifactReadOnlyError extends Error {
  readonly code = 'artifact_read_only';
  constructor(readonly uri: string) {
    super(`${uri} is read-only`);
    this.name = 'ArtifactReadOnlyError';
  }
}

/** `s3://b/dir` + `policy.onnx` → `s3://b/dir/policy.onnx` (one slash, whatever the directory ends with). */
export function artifactFileUri(dirUri: string, file: string): string {
  if (/^[a-z0-9+.-]+:\/\/$/i.test(dirUri)) return dirUri + file; // `base://` itself is the directory
  return `${dirUri.replace(/\/+$/, '')}/${file}`;
}

/** The scheme of an artifact URI (`file`, `base`, `s3`...), or throws for a string that is not one. */
export function artifactScheme(uri: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri);
  if (!m) throw new Error(`not an artifact URI: ${uri}`);
  return m[1].toLowerCase();
}

/** Sends each URI to the store registered for its scheme. */
export class RoutingArtifactStore implements ArtifactStore {
  constructor(private readonly routes: Record<string, ArtifactStore>) {}

  private route(uri: string): ArtifactStore {
    const scheme = artifactScheme(uri);
    const store = this.routes[scheme];
    if (!store) throw new Error(`no artifact store configured for ${scheme}:// (${uri})`);
    return store;
  }

  get(uri: string) {
    return this.route(uri).get(uri);
  }
  put(uri: string, bytes: Uint8Array) {
    return this.route(uri).put(uri, bytes);
  }
  exists(uri: string) {
    return this.route(uri).exists(uri);
  }
  list(dirUri: string) {
    return this.route(dirUri).list(dirUri);
  }
}
