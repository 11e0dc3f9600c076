import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { AUDIT_GENESIS, entryHash, verifyEntries, verifyEntriesAsync, type AuditEntry } from './chain.js';
import { AuditLog } from './log.js';
import { generateSigningKey, signerFromPem, trustedKeyFrom } from './signing.js';
import { collect } from '../../test/support/collect.js';
import { SqliteSql } from '../store/sqlite-sql.js';

const dir = () => mkdtempSync(join(tmpdir(), 'jitgate-audit-'));

async function fresh() {
  const db = new Database(':memory:');
  let t = 1_000;
  const log = await AuditLog.open(SqliteSql.of(db), () => t++);
  const signer = signerFromPem(generateSigningKey(), 'test');
  return { db, log, signer };
}

async function fill(log: AuditLog, n: number) {
  for (let i = 1; i <= n; i++)
    await log.append({ type: 'session.ended', actor: `user${i}`, subject: `s${i}`, data: { digest: `d${i}`, n: i } });
}

describe('AuditLog', () => {
  it('chains every entry to the one before, starting from the genesis link', async () => {
    const { log } = await fresh();
    await fill(log, 3);
    const entries = await collect(log.entries());
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(entries[0]!.prev).toBe(AUDIT_GENESIS);
    expect(entries[1]!.prev).toBe(entries[0]!.hash);
    expect(entries[2]!.hash).toBe(entryHash(entries[1]!.hash, entries[2]!));
    expect(verifyEntries(entries)).toMatchObject({ ok: true, entries: 3, firstSeq: 1, lastSeq: 3 });
  });

  it('refuses updates and deletes through SQL (append-only triggers)', async () => {
    const { db, log } = await fresh();
    await fill(log, 2);
    expect(() => db.prepare(`UPDATE audit_log SET actor = 'x' WHERE seq = 1`).run()).toThrow(/append-only/);
    expect(() => db.prepare(`DELETE FROM audit_log WHERE seq = 2`).run()).toThrow(/append-only/);
  });

  it('names the first entry that does not verify after an edit, a removal or a reordering', async () => {
    const { db, log } = await fresh();
    await fill(log, 5);
    // Whoever tampers has to drop the triggers first.
    db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete');
    db.prepare(`UPDATE audit_log SET data = json_set(data, '$.digest', 'forged') WHERE seq = 3`).run();
    expect((await verifyEntriesAsync(log.entries())).broken).toEqual({
      seq: 3,
      why: 'its content does not match its hash (the entry was changed)',
    });

    const { db: db2, log: log2 } = await fresh();
    await fill(log2, 5);
    db2.exec('DROP TRIGGER audit_log_no_delete');
    db2.prepare(`DELETE FROM audit_log WHERE seq = 2`).run();
    expect((await verifyEntriesAsync(log2.entries())).broken).toEqual({ seq: 3, why: 'entries 2..2 are missing' });

    // Recomputing the edited entry's own hash still breaks the next link.
    const { db: db3, log: log3 } = await fresh();
    await fill(log3, 4);
    db3.exec('DROP TRIGGER audit_log_no_update');
    const e2 = (await collect(log3.entries({ seq: 2 })))[0]!;
    const forged = { ...e2, actor: 'mallory' };
    db3.prepare(`UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 2`).run('mallory', entryHash(e2.prev, forged));
    expect((await verifyEntriesAsync(log3.entries())).broken?.seq).toBe(3);
  });

  it('signs checkpoints; a chain rewritten from an edit onwards fails at the signature', async () => {
    const { db, log, signer } = await fresh();
    await fill(log, 3);
    const cp = (await log.checkpoint(signer))!;
    expect(cp).toMatchObject({ seq: 4, type: 'audit.checkpoint', data: { upTo: 3, keyId: signer.keyId } });
    expect(await log.checkpoint(signer)).toBeUndefined(); // nothing new to sign
    await fill(log, 2);
    const trusted = [trustedKeyFrom(signer.publicKey)];
    expect(await verifyEntriesAsync(log.entries(), { trusted })).toMatchObject({
      ok: true,
      checkpoints: 1,
      lastSignedSeq: 3,
      keyTrusted: true,
    });

    // An attacker with write access edits entry 2 and recomputes every hash after it.
    db.exec('DROP TRIGGER audit_log_no_update');
    const entries = await collect(log.entries());
    entries[1] = { ...entries[1]!, data: { ...entries[1]!.data, digest: 'forged' } };
    for (let i = 1; i < entries.length; i++) {
      const prev = entries[i - 1]!.hash;
      const e = entries[i]!;
      const data = e.type === 'audit.checkpoint' ? { ...e.data, head: prev } : e.data;
      entries[i] = { ...e, prev, data, hash: entryHash(prev, { ...e, data }) };
    }
    for (const e of entries)
      db.prepare(`UPDATE audit_log SET data = ?, prev = ?, hash = ? WHERE seq = ?`).run(JSON.stringify(e.data), e.prev, e.hash, e.seq);
    expect((await verifyEntriesAsync(log.entries(), { trusted })).broken).toEqual({ seq: 4, why: 'its signature does not verify' });

    // ... and re-signing with their own key fails against the pinned key.
    const mallory = signerFromPem(generateSigningKey(), 'mallory');
    const cpEntry = entries[3]!;
    const resigned = {
      ...cpEntry.data,
      keyId: mallory.keyId,
      publicKey: mallory.publicKey,
      signature: mallory.sign(`jitgate-audit-checkpoint:v1:3:${entries[2]!.hash}`),
    };
    const cpHash = entryHash(cpEntry.prev, { ...cpEntry, data: resigned });
    db.prepare(`UPDATE audit_log SET data = ?, hash = ? WHERE seq = 4`).run(JSON.stringify(resigned), cpHash);
    expect((await verifyEntriesAsync(log.entries(), { trusted })).broken?.why).toMatch(/not the trusted key/);
  });

  it('verifies an export that starts mid-chain, as JSON lines round-trip', async () => {
    const { log, signer } = await fresh();
    await fill(log, 6);
    await log.checkpoint(signer);
    const lines = (await collect(log.entries({ at: 1_003 }))).map((e) => JSON.stringify(e));
    const parsed = lines.map((l) => JSON.parse(l) as AuditEntry);
    expect(parsed[0]!.seq).toBe(4);
    expect(verifyEntries(parsed, { trusted: [signer] })).toMatchObject({ ok: true, firstSeq: 4, lastSeq: 7, checkpoints: 1 });
  });

  it('keeps one chain when two connections (processes) append alternately', async () => {
    const path = join(dir(), 'shared.db');
    const a = await AuditLog.open(SqliteSql.of(new Database(path)));
    const b = await AuditLog.open(SqliteSql.of(new Database(path)));
    for (let i = 0; i < 10; i++) await (i % 2 ? a : b).append({ type: 'x', actor: 'p', data: { i } });
    expect(await verifyEntriesAsync(a.entries())).toMatchObject({ ok: true, entries: 10 });
  });
});
