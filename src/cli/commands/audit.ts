/**
 * `jitgate audit verify [--file EXPORT] [--public-key KEY] [--recordings] [--json]`: recomputes the
 * audit log's hash chain and checks every signed checkpoint; names the first entry that does not
 * verify. Without --file it reads the gateway's store (on the gateway host) and trusts the
 * gateway's own signing key; with --file it verifies an export offline (pin the key with
 * --public-key, as printed by `jitgate audit public-key`). --recordings also checks every kept
 * session recording against the final digest its session.ended entry holds.
 *
 * `jitgate audit export [--since T] [--format jsonl]`: entries as JSON lines, chain fields included,
 * for a SIEM or an auditor's offline verification.
 *
 * `jitgate audit public-key`: the signing key's public half (base64) and id, to pin.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { checkAnchor, readAnchor } from '../../audit/anchor.js';
import { verifyEntries, verifyEntriesAsync, type AuditEntry, type VerifyReport } from '../../audit/chain.js';
import { signerFromPem, trustedKeyFrom, type TrustedKey } from '../../audit/signing.js';
import { parseTimeFilter, TIME_HINT } from '../../recording/time-filter.js';
import { checkRecording } from '../../recording/verify.js';
import { CliError, type CliIo } from '../io.js';
import { withRecordings } from '../recording-context.js';

interface Common {
  config?: string;
  dataDir?: string;
}

export async function auditVerifyCommand(
  io: CliIo,
  opts: Common & { file?: string; publicKey?: string; recordings?: boolean; json?: boolean },
): Promise<void> {
  let trusted: TrustedKey[] = [];
  if (opts.publicKey !== undefined) {
    try {
      trusted = [trustedKeyFrom(readFileSync(resolve(io.cwd, opts.publicKey), 'utf8'))];
    } catch (err) {
      throw new CliError(`--public-key ${opts.publicKey}: ${(err as Error).message}`);
    }
  }
  if (opts.file !== undefined) {
    if (opts.recordings) throw new CliError("--recordings checks the gateway host's recordings; it cannot be combined with --file");
    const report = verifyEntries(await readExport(resolve(io.cwd, opts.file)), { trusted });
    return printReport(io, report, opts.json ?? false, `export ${opts.file}`);
  }
  await withRecordings(io, opts, async ({ audit, auditConfig, repo, sink, signingKey }) => {
    const ownKey = trusted.length === 0 ? await signingKey() : undefined;
    if (ownKey !== undefined) trusted = [signerFromPem(ownKey, 'the audit signing key')];
    const report = await verifyEntriesAsync(audit.entries(), { trusted });
    // A log cut short (checkpoints and all) still chains: the anchor kept outside the data directory says how far it reached.
    let anchorProblem: string | undefined;
    if (report.ok && auditConfig.anchorFile) {
      try {
        const anchor = readAnchor(auditConfig.anchorFile);
        anchorProblem = anchor
          ? await checkAnchor(anchor, (seq) => audit.entryAt(seq), report.lastSeq, trusted)
          : report.checkpoints > 0
            ? `the anchor ${auditConfig.anchorFile} is missing, though the log holds signed checkpoints`
            : undefined;
      } catch (err) {
        anchorProblem = `cannot read the anchor: ${(err as Error).message}`;
      }
    }
    const recordingProblems: Array<{ session: string; problems: string[] }> = [];
    const recordingNotes: Array<{ session: string; notes: string[] }> = [];
    let recordingsChecked = 0;
    if (opts.recordings) {
      for (const s of repo.search({})) {
        const row = s.recording;
        if (!row?.location || row.deletedAt !== null) continue;
        recordingsChecked++;
        let problems: string[];
        let notes: string[] = [];
        try {
          ({ problems, notes } = checkRecording(row, await sink.read(row.location), await audit.about(s.id)));
        } catch (err) {
          problems = [`cannot read it: ${(err as Error).message}`];
        }
        if (problems.length) recordingProblems.push({ session: s.id, problems });
        else if (notes.length) recordingNotes.push({ session: s.id, notes });
      }
    }
    if (opts.json) {
      io.out(
        JSON.stringify(
          {
            ...report,
            ...(auditConfig.anchorFile
              ? {
                  anchor: {
                    file: auditConfig.anchorFile,
                    ok: anchorProblem === undefined,
                    ...(anchorProblem ? { problem: anchorProblem } : {}),
                  },
                }
              : {}),
            ...(opts.recordings ? { recordingsChecked, recordingProblems, recordingNotes } : {}),
          },
          null,
          2,
        ) + '\n',
      );
    } else {
      printReport(io, report, false, 'audit log', true);
      if (anchorProblem) io.out(`audit log does NOT verify against its anchor (${auditConfig.anchorFile}): ${anchorProblem}\n`);
      if (opts.recordings) {
        if (recordingProblems.length === 0)
          io.out(`recordings verified: ${recordingsChecked}, each chain intact and ending at its recorded digest\n`);
        for (const n of recordingNotes) io.out(`recording of session ${n.session} verifies as a prefix: ${n.notes.join('; ')}\n`);
        for (const p of recordingProblems) io.out(`recording of session ${p.session} does NOT verify:\n  - ${p.problems.join('\n  - ')}\n`);
      }
    }
    if (!report.ok) throw new CliError(`the audit log does not verify at entry ${report.broken!.seq}`);
    if (anchorProblem) throw new CliError('the audit log does not reach the checkpoint anchored outside the data directory');
    if (recordingProblems.length) throw new CliError(`${recordingProblems.length} recording(s) do not verify`);
  });
}

function printReport(io: CliIo, r: VerifyReport, json: boolean, what: string, deferError = false): void {
  if (json) {
    io.out(JSON.stringify(r, null, 2) + '\n');
  } else if (r.ok) {
    io.out(
      r.entries === 0
        ? `${what}: empty\n`
        : `${what} verified: ${r.entries} entries (#${r.firstSeq}..#${r.lastSeq}), ${r.checkpoints} signed checkpoint${r.checkpoints === 1 ? '' : 's'}` +
            (r.lastSignedSeq !== null
              ? `, signed up to #${r.lastSignedSeq}${r.keyTrusted ? ' by the trusted key' : ' (by the key the log names: pass --public-key to pin it)'}`
              : '') +
            '\n',
    );
    // Entries after the last checkpoint: the chain holds them together, but nothing signed or anchored vouches for them yet.
    const firstUnsigned = r.lastSignedSeq === null ? r.firstSeq! : r.lastSignedSeq + 2;
    if (r.entries > 0 && r.lastSeq! >= firstUnsigned) {
      io.out(
        `warning: #${firstUnsigned}..#${r.lastSeq} are not signed yet: whoever can write the data directory could remove them without a trace until the next checkpoint\n`,
      );
    }
  } else {
    io.out(`${what} does NOT verify: entry #${r.broken!.seq}: ${r.broken!.why}\n`);
  }
  if (!r.ok && !deferError) throw new CliError(`the ${what} does not verify at entry ${r.broken!.seq}`);
}

async function readExport(path: string): Promise<AuditEntry[]> {
  if (!existsSync(path)) throw new CliError(`no such file: ${path}`);
  const entries: AuditEntry[] = [];
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    n++;
    if (!line.trim()) continue;
    try {
      entries.push(JSON.parse(line) as AuditEntry);
    } catch {
      throw new CliError(`${path}:${n}: not a JSON line`);
    }
  }
  return entries;
}

export async function auditExportCommand(io: CliIo, opts: Common & { since?: string; format?: string }): Promise<void> {
  const format = opts.format ?? 'jsonl';
  if (format !== 'jsonl') throw new CliError(`--format: only jsonl is supported, got ${JSON.stringify(format)}`);
  let since: number | undefined;
  if (opts.since !== undefined) {
    since = parseTimeFilter(opts.since, io.now());
    if (since === undefined) throw new CliError(`--since: expected ${TIME_HINT}, got ${JSON.stringify(opts.since)}`);
  }
  await withRecordings(io, opts, async ({ audit }) => {
    for await (const e of audit.entries(since !== undefined ? { at: since } : {})) io.out(JSON.stringify(e) + '\n');
  });
}

export async function auditPublicKeyCommand(io: CliIo, opts: Common): Promise<void> {
  await withRecordings(io, opts, async ({ auditConfig, signingKey }) => {
    const pem = await signingKey();
    if (pem === undefined)
      throw new CliError(`no audit signing key at ${auditConfig.signingKey} yet (the gateway creates it on its first start)`);
    const key = signerFromPem(pem, 'the audit signing key');
    io.out(`${key.publicKey}\n`);
    io.err(`key id ${key.keyId} (Ed25519; verify exports with: jitgate audit verify --file EXPORT --public-key FILE)\n`);
  });
}
