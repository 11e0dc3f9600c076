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
 * Verifies entries in order, one at a time (so a log read page by page is never held whole). A log
 * starts at seq 1 with the genesis link; an export that starts later is verified from its first
 * entry on (its `prev` is the anchor to compare with the source).
 */
export class ChainVerifier {
  readonly report: VerifyReport;
  private readonly trusted: TrustedKey[];
  private previous: AuditEntry | undefined;

  constructor(options: VerifyOptions = {}) {
    this.trusted = options.trusted ?? [];
    this.report = {
      ok: true,
      entries: 0,
      firstSeq: null,
      lastSeq: null,
      head: null,
      checkpoints: 0,
      lastSignedSeq: null,
      keyTrusted: this.trusted.length > 0,
    };
  }

  /** Takes the next entry; false once the chain is broken (the report says where and why). */
  add(e: AuditEntry): boolean {
    const report = this.report;
    if (!report.ok) return false;
    const previous = this.previous;
    report.entries++;
    if (previous === undefined) {
      report.firstSeq = e.seq;
      if (e.seq === 1 && e.prev !== AUDIT_GENESIS) return this.fail(e.seq, 'the first entry does not start the chain');
    } else {
      if (e.seq !== previous.seq + 1) {
        return this.fail(
          e.seq,
          e.seq <= previous.seq ? `out of order: follows entry ${previous.seq}` : `entries ${previous.seq + 1}..${e.seq - 1} are missing`,
        );
      }
      if (e.prev !== previous.hash) {
        return this.fail(
          e.seq,
          `its link to entry ${previous.seq} does not match that entry's hash (entry ${previous.seq} was changed or replaced)`,
        );
      }
    }
    if (entryHash(e.prev, e) !== e.hash) return this.fail(e.seq, 'its content does not match its hash (the entry was changed)');
    if (e.type === CHECKPOINT_TYPE) {
      const why = checkCheckpoint(e, previous, this.trusted);
      if (why) return this.fail(e.seq, why);
      report.checkpoints++;
      report.lastSignedSeq = (e.data as unknown as CheckpointData).upTo;
    }
    this.previous = e;
    report.lastSeq = e.seq;
    report.head = e.hash;
    return true;
  }

  private fail(seq: number, why: string): false {
    this.report.ok = false;
    this.report.broken = { seq, why };
    return false;
  }
}

/** Verifies entries in order (an export's lines, a page already read). */
export function verifyEntries(entries: Iterable<AuditEntry>, options: VerifyOptions = {}): VerifyReport {
  const verifier = new ChainVerifier(options);
  for (const e of entries) if (!verifier.add(e)) break;
  return verifier.report;
}

/** Verifies entries as they are read (the audit log's own, page by page). */
export async function verifyEntriesAsync(entries: AsyncIterable<AuditEntry>, options: VerifyOptions = {}): Promise<VerifyReport> {
  const verifier = new ChainVerifier(options);
  for await (const e of entries) if (!verifier.add(e)) break;
  return verifier.report;
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
