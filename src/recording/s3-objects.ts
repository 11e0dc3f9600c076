/**
 * Recordings as objects in an S3-compatible store (AWS S3, MinIO, Ceph RGW, GCS interoperability),
 * through the AWS SDK's S3 client. A recording's object key is the configured prefix followed by its
 * location (`YYYY/MM/DD/<session>.jsonl.gz`), so the recordings index needs no change.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import type { S3StorageConfig } from '../config/recording.js';

// The SDK warns once per process that releases after January 2027 need Node 22. The lock file pins
// one that supports Node 20, and an operator cannot act on the warning in their logs.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface StoredObject {
  body: Buffer;
  metadata: Record<string, string>;
}

/** How long one request may take before it counts as failed (uploads retry with backoff). */
const CONNECT_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 60_000;

export class S3Objects {
  private readonly client: S3Client;

  constructor(
    private readonly config: S3StorageConfig,
    credentials: { accessKeyId: string; secretAccessKey: string } | null,
  ) {
    this.client = new S3Client({
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(credentials ? { credentials } : {}),
      // Content-MD5 already lets the server check what it received. The SDK's newer default (CRC32
      // trailers in aws-chunked bodies) is not understood by every S3-compatible store.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
      maxAttempts: 2,
    });
  }

  key(location: string): string {
    return `${this.config.prefix}${location}`;
  }

  /** Where a recording is, for people: `s3://bucket/key`. */
  url(location: string): string {
    return `s3://${this.config.bucket}/${this.key(location)}`;
  }

  /**
   * Stores a file whole, streamed (a recording can be large: memory stays bounded), after one pass
   * that computes its Content-MD5 and the SHA-256 it is labelled with. Throws ENOENT as is when the
   * file is gone.
   */
  async putFile(location: string, path: string, metadata: Record<string, string>): Promise<void> {
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(path)) {
      md5.update(chunk as Buffer);
      sha256.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.config.bucket,
          Key: this.key(location),
          Body: createReadStream(path),
          ContentLength: size,
          ContentMD5: md5.digest('base64'),
          ContentType: 'application/gzip',
          Metadata: { ...metadata, sha256: sha256.digest('hex') },
        }),
      );
    } catch (err) {
      throw describeError(err, `upload ${this.url(location)}`);
    }
  }

  /**
   * Asks for the bucket: resolves to null when it answers, or to why it cannot be reached now (a
   * network problem: uploads wait and retry). Throws when the store answers that the bucket does not
   * exist or the credentials are refused: a configuration error that retrying will not mend.
   */
  async probe(): Promise<string | null> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
      return null;
    } catch (err) {
      const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
      const described = describeError(
        err,
        `reach bucket ${this.config.bucket}${this.config.endpoint ? ` at ${this.config.endpoint}` : ''}`,
      );
      if (status === 404 || status === 403 || status === 400) throw described;
      return described.message;
    }
  }

  /** The object, or undefined when there is none. */
  async get(location: string): Promise<StoredObject | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: this.key(location) }));
      const body = Buffer.from(await r.Body!.transformToByteArray());
      return { body, metadata: r.Metadata ?? {} };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw describeError(err, `read ${this.url(location)}`);
    }
  }

  /** Size and metadata, or undefined when there is no such object. */
  async head(location: string): Promise<{ size: number; metadata: Record<string, string> } | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.key(location) }));
      return { size: r.ContentLength ?? 0, metadata: r.Metadata ?? {} };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw describeError(err, `look up ${this.url(location)}`);
    }
  }

  async delete(location: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: this.key(location) }));
    } catch (err) {
      throw describeError(err, `delete ${this.url(location)}`);
    }
  }

  close(): void {
    this.client.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404);
}

/** The SDK's errors name a code (NoSuchBucket, AccessDenied) or only a status; say which, and what was tried. */
export function describeError(err: unknown, what: string): Error {
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode;
    const message = err.message && err.message !== 'UnknownError' ? `: ${err.message}` : '';
    return new Error(`cannot ${what}: ${err.name}${status ? ` (HTTP ${status})` : ''}${message}`);
  }
  const e = err as NodeJS.ErrnoException;
  return new Error(`cannot ${what}: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}`.trim());
}
