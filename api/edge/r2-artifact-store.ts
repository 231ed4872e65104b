// The artifact store at the edge: one R2 bucket behind the artifact-store port. R2 speaks the S3 API, so the
// worker publishes with the S3 client to `s3://<bucket>/<key>` and the edge reads the same URI through the
// binding: s3://<bucket>/<key> ↔ R2 key <key>. `base://<file>` (the pretrained base model) maps to
// `<basePrefix><file>` in the same bucket (upload models/base there once: README "Edge").
import { ArtifactNotFoundError, ArtifactReadOnlyError, type ArtifactStore, artifactScheme } from '../../shared/artifact-store';
import type { R2BucketBinding } from './cloudflare';

export interface R2ArtifactStoreOptions {
  bucket: R2BucketBinding;
  /** The bucket's name as s3:// URIs spell it; URIs naming another bucket are refused. */
  bucketName: string;
  /** Key prefix holding the base model's files. Default `base/`. */
  basePrefix?: string;
}

export class R2ArtifactStore implements ArtifactStore {
  private readonly basePrefix: string;

  constructor(private readonly o: R2ArtifactStoreOptions) {
    this.basePrefix = o.basePrefix ?? 'base/';
  }

  /** The R2 key for a URI (a directory URI gives a prefix). */
  key(uri: string): { key: string; readOnly: boolean } {
    const scheme = artifactScheme(uri);
    const rest = uri.slice(scheme.length + 3);
    if (scheme === 'base') return { key: this.basePrefix + rest.replace(/^\/+/, ''), readOnly: true };
    if (scheme === 's3') {
      const slash = rest.indexOf('/');
      const bucket = slash < 0 ? rest : rest.slice(0, slash);
      if (bucket !== this.o.bucketName) throw new Error(`${uri}: this edge deployment's R2 bucket is ${this.o.bucketName}`);
      return { key: slash < 0 ? '' : rest.slice(slash + 1), readOnly: false };
    }
    throw new Error(`no artifact store configured for ${scheme}:// at the edge (${uri})`);
  }

  async get(uri: string): Promise<Uint8Array> {
    const obj = await this.o.bucket.get(this.key(uri).key);
    if (!obj) throw new ArtifactNotFoundError(uri);
    return new Uint8Array(await obj.arrayBuffer());
  }

  async put(uri: string, bytes: Uint8Array): Promise<void> {
    const { key, readOnly } = this.key(uri);
    if (readOnly) throw new ArtifactReadOnlyError(uri);
    await this.o.bucket.put(key, bytes);
  }

  async exists(uri: string): Promise<boolean> {
    return (await this.o.bucket.head(this.key(uri).key)) !== null;
  }

  async list(dirUri: string): Promise<string[]> {
    const { key } = this.key(dirUri);
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    const schemeOnly = /^[a-z0-9+.-]+:\/\/$/i.test(dirUri); // `base://` is itself the directory
    const dirBase = schemeOnly ? dirUri : dirUri.replace(/\/+$/, '');
    const sep = schemeOnly ? '' : '/';
    const out: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.o.bucket.list({ prefix, cursor });
      for (const o of page.objects) out.push(`${dirBase}${sep}${o.key.slice(prefix.length)}`);
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return out.sort();
  }
}
