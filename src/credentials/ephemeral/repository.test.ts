import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../store/sqlite.js';
import { EphemeralRoleRepository } from './repository.js';

const dir = mkdtempSync(join(tmpdir(), 'jitgate-ephemeral-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (name: string, createdAt: number) => ({
  connection: 'prod',
  name,
  sessionId: `session-${name}`,
  user: 'alice',
  validUntil: createdAt + 3_600_000,
  createdAt,
});

describe('EphemeralRoleRepository', () => {
  it('keeps the records and the deployment id across a restart', async () => {
    const path = join(dir, 'restart.db');
    const first = openSqliteStore(path);
    const repo = new EphemeralRoleRepository(first.database);
    const id = repo.gatewayId();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(repo.gatewayId()).toBe(id);
    repo.recordCreating(row('jitgate_a', 1));
    void first.close();

    const second = openSqliteStore(path);
    const again = new EphemeralRoleRepository(second.database);
    expect(again.gatewayId()).toBe(id);
    expect(again.pending('prod')).toEqual([{ ...row('jitgate_a', 1), droppedAt: null, lastError: null }]);
    void second.close();
  });

  it('tracks failures until the role is dropped, and a drop only once', async () => {
    const store = openSqliteStore(':memory:');
    const repo = new EphemeralRoleRepository(store.database);
    repo.recordCreating(row('jitgate_b', 2));
    repo.recordCreating(row('jitgate_a', 1));
    expect(repo.pending('prod').map((r) => r.name)).toEqual(['jitgate_a', 'jitgate_b']);
    expect(repo.pending('other')).toEqual([]);
    repo.recordDropFailure('prod', 'jitgate_a', 'permission denied');
    expect(repo.get('prod', 'jitgate_a')?.lastError).toBe('permission denied');
    repo.markDropped('prod', 'jitgate_a', 10);
    repo.markDropped('prod', 'jitgate_a', 20, 'later');
    expect(repo.get('prod', 'jitgate_a')).toMatchObject({ droppedAt: 10, lastError: null });
    expect(repo.pending('prod').map((r) => r.name)).toEqual(['jitgate_b']);
    expect(() => repo.recordCreating(row('jitgate_b', 3))).toThrow(/UNIQUE/);
    void store.close();
  });
});
