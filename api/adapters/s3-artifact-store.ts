// Node adapter of the artifact store for `s3://bucket/key` URIs through @aws-sdk/client-s3: AWS S3, R2 or any
// S3-compatible endpoint (tests use an emulator on 127.0.0.1).
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { ArtifactNotFoundError, type ArtifactStore } from '../../shared/artifact-store';

export interface S3ArtifactStoreOptions {
  /** A ready client, or the config to build one (endpoint, region, credentials, forcePathStyle). */
  client?: S3Client;
  clientConfig?: S3ClientConfig;
}

/**
 * Client settings for S3-compatible endpoints from the environment: PREFLOOP_S3_ENDPOINT (emulator, R2, MinIO)
 * switches on path-style addressing; checksums only when required, since some emulators store the chunked
 * checksum framing of streamed uploads as part of the object.
 */
export function s3ClientConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const endpoint = env.PREFLOOP_S3_ENDPOINT;
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1], key: m[2] };
}

export class S3ArtifactStore implements ArtifactStore {
  readonly client: S3Client;
  constructor(o: S3ArtifactStoreOptions = {}) {
    this.client = o.client ?? new S3Client(o.clientConfig ?? s3ClientConfigFromEnv());
  }

  async get(uri: string): Promise<Uint8Array> {
    const { bucket, key } = parseS3Uri(uri);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!res.Body) throw new ArtifactNotFoundError(uri);
      return await res.Body.transformToByteArray();
    } catch (e) {
      if (isNotFound(e)) throw new ArtifactNotFoundError(uri);
      throw e;
    }
  }

  async put(uri: string, bytes: Uint8Array): Promise<void> {
    const { bucket, key } = parseS3Uri(uri);
    await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength }));
  }

  async exists(uri: string): Promise<boolean> {
    const { bucket, key } = parseS3Uri(uri);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  async list(dirUri: string): Promise<string[]> {
    const { bucket, key } = parseS3Uri(dirUri);
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    const out: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of res.Contents ?? []) if (o.Key) out.push(`s3://${bucket}/${o.Key}`);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }
}

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.name === 'NoSuchBucket' || err?.$metadata?.httpStatusCode === 404;
}
