// Node adapter of the artifact store for local directories: `file://` (read-write, default root
// ./data/artifacts) and `base://` (the bundled base model in models/base, read-only).
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ArtifactNotFoundError, ArtifactReadOnlyError, type ArtifactStore } from '../../shared/artifact-store';

export interface DirectoryArtifactStoreOptions {
  /** URI scheme this store answers (`file` or `base`). */
  scheme: string;
  /** Directory that relative URIs resolve against. */
  root: string;
  /** Refuse writes (the base model is never overwritten through the API). */
  readOnly?: boolean;
  /** Allow absolute paths (`file:///abs/dir`); otherwise every URI must stay inside root. */
  allowAbsolute?: boolean;
}

export class DirectoryArtifactStore implements ArtifactStore {
  private readonly root: string;
  constructor(private readonly o: DirectoryArtifactStoreOptions) {
    this.root = resolve(o.root);
  }

  /** The file path for a URI; relative paths may not climb out of the root. */
  pathOf(uri: string): string {
    const prefix = `${this.o.scheme}://`;
    if (!uri.startsWith(prefix)) throw new Error(`${uri} is not a ${prefix} URI`);
    const rest = decodeURIComponent(uri.slice(prefix.length));
    if (isAbsolute(rest)) {
      if (!this.o.allowAbsolute) throw new Error(`absolute paths are not allowed in ${prefix} URIs: ${uri}`);
      return resolve(rest);
    }
    const p = resolve(this.root, rest);
    const rel = relative(this.root, p);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${uri} escapes the artifact root`);
    return p;
  }

  uriOf(path: string): string {
    const rel = relative(this.root, path);
    if (rel.startsWith('..') || isAbsolute(rel)) return `${this.o.scheme}://${path}`;
    return `${this.o.scheme}://${rel.split(sep).join('/')}`;
  }

  async get(uri: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.pathOf(uri)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') throw new ArtifactNotFoundError(uri);
      throw e;
    }
  }

  async put(uri: string, bytes: Uint8Array): Promise<void> {
    if (this.o.readOnly) throw new ArtifactReadOnlyError(uri);
    const p = this.pathOf(uri);
    await mkdir(dirname(p), { recursive: true });
    // Write then rename: a reader never sees a half-written policy.onnx.
    const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, p);
  }

  async exists(uri: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(uri))).isFile();
    } catch {
      return false;
    }
  }

  async list(dirUri: string): Promise<string[]> {
    const base = this.pathOf(dirUri);
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && !e.name.endsWith('.tmp')) out.push(this.uriOf(p));
      }
    };
    await walk(base);
    return out.sort();
  }
}
