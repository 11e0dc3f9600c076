/**
 * The audit log's head, anchored outside the data directory. The hash chain and the signed
 * checkpoints catch any change inside the log, but not a log cut short: whoever can write the data
 * directory can delete the last entries, checkpoints included, and what is left still verifies.
 * After every checkpoint the gateway writes that checkpoint (its seq, hash and signature) to an
 * anchor file that should live elsewhere (another volume, a path only the gateway may write, a
 * directory shipped off-host); `jitgate audit verify` then fails when the log no longer reaches
 * the anchored checkpoint, or holds a different entry there.
 *
 * The file is replaced atomically (temporary name, fsync, rename), so a crash leaves the old
 * anchor or the new one, never half of either.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { CHECKPOINT_TYPE, type AuditEntry, type CheckpointData } from './chain.js';
import { checkpointMessage, verifySignature, type TrustedKey } from './signing.js';

export interface AuditAnchor {
  version: 1;
  /** The checkpoint entry anchored: its seq and hash. */
  seq: number;
  hash: string;
  /** What it signs: the entry before it, and that entry's hash. */
  upTo: number;
  head: string;
  keyId: string;
  signature: string;
  /** When the checkpoint was written (epoch ms). */
  at: number;
}

export function anchorOf(checkpoint: AuditEntry): AuditAnchor {
  const d = checkpoint.data as unknown as CheckpointData;
  return {
    version: 1,
    seq: checkpoint.seq,
    hash: checkpoint.hash,
    upTo: d.upTo,
    head: d.head,
    keyId: d.keyId,
    signature: d.signature,
    at: checkpoint.at,
  };
}

/** Replaces the anchor file atomically with the given checkpoint. */
export function writeAnchor(path: string, checkpoint: AuditEntry): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(anchorOf(checkpoint))}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename itself is durable once the directory is synced.
  try {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // not every filesystem lets a directory be fsynced; the rename is still atomic
  }
}

/** The anchor, or undefined when there is none yet; throws when the file is not an anchor. */
export function readAnchor(path: string): AuditAnchor | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const a = JSON.parse(text) as Partial<AuditAnchor>;
  if (
    a.version !== 1 ||
    typeof a.seq !== 'number' ||
    typeof a.hash !== 'string' ||
    typeof a.upTo !== 'number' ||
    typeof a.head !== 'string' ||
    typeof a.signature !== 'string' ||
    typeof a.keyId !== 'string'
  ) {
    throw new Error(`${path} is not an audit anchor`);
  }
  return a as AuditAnchor;
}

/**
 * Whether the log still holds the anchored checkpoint. `entryAt` looks an entry up by seq;
 * `lastSeq` is the log's last entry. Returns what is wrong, in words, or undefined.
 */
export async function checkAnchor(
  anchor: AuditAnchor,
  entryAt: (seq: number) => Promise<AuditEntry | undefined>,
  lastSeq: number | null,
  trusted: TrustedKey[],
): Promise<string | undefined> {
  const key = trusted.find((k) => k.keyId === anchor.keyId);
  if (trusted.length > 0 && !key) return `the anchor is signed with key ${anchor.keyId}, which is not the trusted key`;
  if (key && !verifySignature(key, checkpointMessage(anchor.upTo, anchor.head), anchor.signature))
    return "the anchor's signature does not verify";
  if (lastSeq === null || lastSeq < anchor.seq) {
    return `the log ends at #${lastSeq ?? 0}, but the anchor kept outside the data directory holds checkpoint #${anchor.seq} (signed ${new Date(anchor.at).toISOString()}): entries were removed from the end`;
  }
  const e = await entryAt(anchor.seq);
  if (!e || e.type !== CHECKPOINT_TYPE || e.hash !== anchor.hash)
    return `entry #${anchor.seq} is not the checkpoint the anchor holds: the log was replaced`;
  return undefined;
}
