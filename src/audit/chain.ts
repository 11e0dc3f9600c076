/**
 * The audit log's hash chain and its verification. Each entry carries `prev`, the hash of the entry
 * before it, and `hash`, the SHA-256 of `prev` and the entry's canonical JSON, so editing, removing,
 * inserting or reordering an entry breaks every link after it. Checkpoint entries additionally sign
 * the chain's head with the gateway's Ed25519 key (./signing.ts): rewriting the whole chain after a
 * checkpoint needs that key. Pure: works on rows from the store and on exported JSON lines alike.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import { checkpointMessage, verifySignature, type TrustedKey } from './signing.js';

export const AUDIT_GENESIS = '0'.repeat(64);
export const CHECKPOINT_TYPE = 'audit.checkpoint';

export interface AuditEntry {
  /** 1, 2, ... with no gaps. */
  seq: number;
  /** Epoch ms. */
  at: number;
  /** e.g. `session.ended`, `login.failed`, `recording.deleted` (see ./log.ts). */
  type: string;
  /** Who did it: a user, `gateway`, `local-admin:<os user>`. */
  actor: string;
  /** What it is about (a session id, a grant id, ...), when there is one thing. */
  subject: string | null;
  data: Record<string, unknown>;
  prev: string;
  hash: string;
}

export interface CheckpointData {
  /** The last entry the signature covers, and its hash. */
  upTo: number;
  head: string;
  keyId: string;
  /** The signing key's public half (base64 of the raw 32 bytes), for offline verification. */
  publicKey: string;
  signature: string;
}

export function entryHash(prev: string, e: Omit<AuditEntry, 'prev' | 'hash'>): string {
  const body = { seq: e.seq, at: e.at, type: e.type, actor: e.actor, subject: e.subject, data: e.data };
  return createHash('sha256').update(prev).update(canonicalJson(body)).digest('hex');
}

export interface VerifyOptions {
  /** Keys to trust for checkpoint signatures; without any, signatures are checked against the key each checkpoint names (self-consistency only). */
  trusted?: TrustedKey[];
}

export interface VerifyReport {
  ok: boolean;
  entries: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** The hash of the last entry (what a later export must chain from). */
  head: string | null;
  checkpoints: number;
  /** The highest entry covered by a valid signature. */
  lastSignedSeq: number | null;
  /** Signatures were checked against a trusted key (not only the key named in the log). */
  keyTrusted: boolean;
  /** The first entry that does not verify, and why. */
  broken?: { seq: number; why: string };
}

/**
 * Verifies entries in order. A log starts at seq 1 with the genesis link; an export that starts
 * later is verified from its first entry on (its `prev` is the anchor to compare with the source).
 */
export function verifyEntries(entries: Iterable<AuditEntry>, options: VerifyOptions = {}): VerifyReport {
  const trusted = options.trusted ?? [];
  const report: VerifyReport = {
    ok: true,
    entries: 0,
    firstSeq: null,
    lastSeq: null,
    head: null,
    checkpoints: 0,
    lastSignedSeq: null,
    keyTrusted: trusted.length > 0,
  };
  let previous: AuditEntry | undefined;
  const fail = (seq: number, why: string) => {
    report.ok = false;
    report.broken = { seq, why };
  };
  for (const e of entries) {
    report.entries++;
    if (previous === undefined) {
      report.firstSeq = e.seq;
      if (e.seq === 1 && e.prev !== AUDIT_GENESIS) {
        fail(e.seq, 'the first entry does not start the chain');
        break;
      }
    } else {
      if (e.seq !== previous.seq + 1) {
        fail(
          e.seq,
          e.seq <= previous.seq ? `out of order: follows entry ${previous.seq}` : `entries ${previous.seq + 1}..${e.seq - 1} are missing`,
        );
        break;
      }
      if (e.prev !== previous.hash) {
        fail(e.seq, `its link to entry ${previous.seq} does not match that entry's hash (entry ${previous.seq} was changed or replaced)`);
        break;
      }
    }
    if (entryHash(e.prev, e) !== e.hash) {
      fail(e.seq, 'its content does not match its hash (the entry was changed)');
      break;
    }
    if (e.type === CHECKPOINT_TYPE) {
      const why = checkCheckpoint(e, previous, trusted);
      if (why) {
        fail(e.seq, why);
        break;
      }
      report.checkpoints++;
      report.lastSignedSeq = (e.data as unknown as CheckpointData).upTo;
    }
    previous = e;
    report.lastSeq = e.seq;
    report.head = e.hash;
  }
  return report;
}

function checkCheckpoint(e: AuditEntry, previous: AuditEntry | undefined, trusted: TrustedKey[]): string | undefined {
  const d = e.data as Partial<CheckpointData>;
  if (typeof d.upTo !== 'number' || typeof d.head !== 'string' || typeof d.signature !== 'string' || typeof d.keyId !== 'string') {
    return 'malformed checkpoint';
  }
  if (previous && (d.upTo !== previous.seq || d.head !== previous.hash)) return 'the checkpoint does not sign the entry before it';
  let key: TrustedKey | undefined;
  if (trusted.length > 0) {
    key = trusted.find((k) => k.keyId === d.keyId);
    if (!key) return `signed with key ${d.keyId}, which is not the trusted key`;
  } else if (typeof d.publicKey === 'string') {
    key = { keyId: d.keyId, publicKey: d.publicKey };
  } else {
    return 'the checkpoint names no public key';
  }
  return verifySignature(key, checkpointMessage(d.upTo, d.head), d.signature) ? undefined : 'its signature does not verify';
}
