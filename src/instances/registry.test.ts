import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AuditEventInput } from '../audit/log.js';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../obs/log.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { HEARTBEAT_EVERY_MS, InstanceRegistry, LOST_AFTER_MS, type LostInstance } from './registry.js';

const dir = mkdtempSync(join(tmpdir(), 'jitgate-instances-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const log = createLogger({ level: 'silent' });

let n = 0;
const opened: SqliteStore[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) void s.close();
});

/** Several processes on one store file: each its own connection, as separate gateways have. */
function storeFile(): () => SqliteStore {
  const path = join(dir, `s${n++}.db`);
  return () => {
    const s = openSqliteStore(path);
    opened.push(s);
    return s;
  };
}

interface Instance {
  registry: InstanceRegistry;
  store: SqliteStore;
  audited: AuditEventInput[];
  recovered: LostInstance[];
  /** How often it was told it had been declared lost (and had to end its sessions). */
  declaredLost: { times: number };
}

async function instance(
  open: () => SqliteStore,
  clock: ManualClock,
  self: { hostname: string; pid: number; pidNamespace: string | null },
  pidAlive: (pid: number) => boolean = () => true,
): Promise<Instance> {
  const store = open();
  const audited: AuditEventInput[] = [];
  const recovered: LostInstance[] = [];
  const declaredLost = { times: 0 };
  const registry = new InstanceRegistry({
    repo: store.instances,
    clock,
    log,
    self,
    pidAlive,
    audit: { append: (e) => (audited.push(e), {}) as never },
    recover: (l) => void recovered.push(l),
    declaredLost: () => void declaredLost.times++,
  });
  await registry.start();
  return { registry, store, audited, recovered, declaredLost };
}

const session = (id: string, instanceId: string | null) => ({
  id,
  user: 'alice',
  connection: 'app',
  protocol: 'postgres',
  clientAddress: '127.0.0.1:1',
  applicationName: null,
  startedAt: 1,
  instanceId,
});

const open = async (s: SqliteStore) => (await s.listSessions({ active: true })).map((r) => r.id).sort();

describe('gateway instances on one store', () => {
  it('a starting instance closes only what no live instance owns', async () => {
    const file = storeFile();
    const clock = new ManualClock();
    const a = await instance(file, clock, { hostname: 'host-a', pid: 10, pidNamespace: null });
    await a.store.startSession(session('a1', a.registry.id));
    await a.store.startSession(session('legacy', null));
    await a.store.startSession(session('stopped', 'an-instance-that-stopped-cleanly'));
    await clock.advanceSettled(1_000);
    const b = await instance(file, clock, { hostname: 'host-b', pid: 20, pidNamespace: null });
    expect(await open(b.store)).toEqual(['a1']);
    expect((await b.store.listSessions({ active: false })).map((s) => [s.id, s.endReason])).toEqual([
      ['stopped', 'gateway_crashed'],
      ['legacy', 'gateway_crashed'],
    ]);
    // Nothing was lost: nothing audited.
    expect([...a.audited, ...b.audited]).toEqual([]);
    expect((await b.store.instances.list()).map((i) => i.id)).toEqual([a.registry.id, b.registry.id]);
  });

  it('a survivor closes a silent instance as instance_lost once, audited once, when its heartbeat is too old', async () => {
    const file = storeFile();
    const clock = new ManualClock();
    const a = await instance(file, clock, { hostname: 'host-a', pid: 10, pidNamespace: null });
    const b = await instance(file, clock, { hostname: 'host-b', pid: 20, pidNamespace: null });
    const c = await instance(file, clock, { hostname: 'host-c', pid: 30, pidNamespace: null });
    await a.store.startSession(session('a1', a.registry.id));
    await a.store.startSession(session('a2', a.registry.id));
    await b.store.startSession(session('b1', b.registry.id));
    // Heartbeats keep everyone alive however long it runs.
    await clock.advanceSettled(LOST_AFTER_MS * 3);
    expect(await open(a.store)).toEqual(['a1', 'a2', 'b1']);

    a.registry.halt(); // kill -9: no more heartbeats, no cleanup
    const killedAt = clock.now();
    await clock.advanceSettled(LOST_AFTER_MS + HEARTBEAT_EVERY_MS);
    expect(await open(b.store)).toEqual(['b1']);
    const ended = await b.store.listSessions({ active: false });
    expect(ended.map((s) => s.endReason)).toEqual(['instance_lost', 'instance_lost']);
    expect(ended.every((s) => s.endedAt! > killedAt + LOST_AFTER_MS - HEARTBEAT_EVERY_MS && s.endedAt! <= clock.now())).toBe(true);
    // Two survivors looked; exactly one claimed it, audited it and recovered its recordings.
    const audits = [...b.audited, ...c.audited];
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({
      type: 'instance.lost',
      subject: a.registry.id,
      data: { instance: a.registry.id, hostname: 'host-a', pid: 10, reason: 'instance_lost' },
    });
    expect((audits[0]!.data!.sessions as string[]).sort()).toEqual(['a1', 'a2']);
    const recovered = [...b.recovered, ...c.recovered];
    expect(recovered.map((l) => [l.instance.id, l.reason, [...l.sessions].sort()])).toEqual([
      [a.registry.id, 'instance_lost', ['a1', 'a2']],
    ]);
    // Its row is gone once settled; later sweeps find nothing more.
    expect((await b.store.instances.list()).map((i) => i.id).sort()).toEqual([b.registry.id, c.registry.id].sort());
    await clock.advanceSettled(LOST_AFTER_MS * 2);
    expect([...b.audited, ...c.audited]).toHaveLength(1);
  });

  it('on the same host a dead pid is lost at once; a restart closes its leftovers as gateway_crashed, not a live peer', async () => {
    const file = storeFile();
    const clock = new ManualClock();
    const dead = new Set<number>();
    const alive = (pid: number) => !dead.has(pid);
    const self = (pid: number) => ({ hostname: 'host', pid, pidNamespace: 'pid:[1]' });
    const a = await instance(file, clock, self(10), alive);
    const b = await instance(file, clock, self(20), alive);
    await a.store.startSession(session('a1', a.registry.id));
    await b.store.startSession(session('b1', b.registry.id));
    a.registry.halt();
    dead.add(10);
    // A restart right away (heartbeat still fresh): the pid says it is gone.
    const a2 = await instance(file, clock, self(11), alive);
    expect(await open(a2.store)).toEqual(['b1']);
    expect((await a2.store.listSessions({ active: false })).map((s) => [s.id, s.endReason])).toEqual([['a1', 'gateway_crashed']]);
    expect(a2.audited).toMatchObject([
      { type: 'instance.lost', data: { instance: a.registry.id, reason: 'gateway_crashed', sessions: ['a1'] } },
    ]);
    expect(a2.recovered.map((l) => l.instance.id)).toEqual([a.registry.id]);
    await clock.advanceSettled(HEARTBEAT_EVERY_MS);
    expect(b.audited).toEqual([]);

    // The same pid on another host (or in another container) proves nothing: only the heartbeat counts.
    const far = await instance(file, clock, { hostname: 'host', pid: 99, pidNamespace: 'pid:[2]' }, () => false);
    expect(await open(far.store)).toEqual(['b1']);
    await clock.advanceSettled(HEARTBEAT_EVERY_MS);
    expect(far.audited).toEqual([]);
  });

  it('a clean shutdown removes the row; an instance taken for lost while alive comes back', async () => {
    const file = storeFile();
    const clock = new ManualClock();
    const a = await instance(file, clock, { hostname: 'host-a', pid: 10, pidNamespace: null });
    const b = await instance(file, clock, { hostname: 'host-b', pid: 20, pidNamespace: null });
    await b.registry.close();
    expect((await a.store.instances.list()).map((i) => i.id)).toEqual([a.registry.id]);

    // Another instance pauses longer than LOST_AFTER_MS (its own clock stands still) while A looks.
    const pausedClock = new ManualClock(clock.now());
    const paused = await instance(file, pausedClock, { hostname: 'host-p', pid: 40, pidNamespace: null });
    await paused.store.startSession(session('p1', paused.registry.id));
    await clock.advanceSettled(LOST_AFTER_MS + HEARTBEAT_EVERY_MS);
    expect(a.audited).toMatchObject([{ type: 'instance.lost', data: { instance: paused.registry.id, sessions: ['p1'] } }]);
    expect(await a.store.instances.heartbeat(paused.registry.id, clock.now())).toBe(false);
    // Back from the pause: its next beat ends the sessions it still serves (closed in the store),
    // registers it again, and nobody takes it for lost again.
    expect(paused.declaredLost.times).toBe(0);
    await pausedClock.setSettled(clock.now());
    expect(paused.declaredLost.times).toBe(1);
    expect((await a.store.instances.list()).map((i) => i.id).sort()).toEqual([a.registry.id, paused.registry.id].sort());
    await clock.advanceSettled(HEARTBEAT_EVERY_MS);
    await pausedClock.setSettled(clock.now());
    expect(a.audited).toHaveLength(1);
    expect(paused.declaredLost.times).toBe(1);
  });
});
