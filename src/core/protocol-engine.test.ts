import { describe, expect, it } from 'vitest';
import type { SessionEndReason } from './types.js';
import { ProtocolRegistry, type ListenerContext, type ProtocolEngine, type ProtocolListener } from './protocol-engine.js';

/** A listener that records what the registry asks of it (the real ones are driven end to end in test/). */
class RecordingListener implements ProtocolListener {
  readonly calls: string[] = [];
  listening = false;
  constructor(
    readonly port: number,
    private readonly holds: string[],
  ) {}
  listen(): Promise<string> {
    this.listening = true;
    return Promise.resolve(`127.0.0.1:${this.port}`);
  }
  kill(sessionId: string, reason: SessionEndReason): boolean {
    this.calls.push(`kill ${sessionId} ${reason}`);
    return this.holds.includes(sessionId);
  }
  killAll(reason: SessionEndReason): number {
    this.calls.push(`killAll ${reason}`);
    return this.holds.length;
  }
  close(drainTimeoutMs: number): Promise<void> {
    this.calls.push(`close ${drainTimeoutMs}`);
    this.listening = false;
    return Promise.resolve();
  }
}

function engine(protocol: 'postgres' | 'redis', listener: RecordingListener): ProtocolEngine {
  return {
    protocol,
    createListener: () => listener,
    connectInstructions: (at, s) => ({ [protocol]: { host: at.host, port: at.port, name: `${s.user}@${s.connection}` } }),
  };
}

const context = (): ListenerContext => ({}) as ListenerContext;

describe('ProtocolRegistry', () => {
  it('starts only configured protocols and routes kill, readiness, close and connect blocks to them', async () => {
    const pg = new RecordingListener(5433, ['s1']);
    const redis = new RecordingListener(6380, ['s2']);
    const registry = new ProtocolRegistry([engine('postgres', pg), engine('redis', redis)]);
    const up: string[] = [];
    await registry.start({ redis: { host: '0.0.0.0', port: 0 } }, context, (p, a) => up.push(`${p} ${a}`));

    expect(up).toEqual(['redis 127.0.0.1:6380']);
    expect(registry.addresses()).toEqual({ redis: '127.0.0.1:6380' });
    expect(registry.connectInstructions('redis', { connection: 'cache', user: 'alice' })).toEqual({
      redis: { host: '0.0.0.0', port: 6380, name: 'alice@cache' },
    });
    // A protocol whose listener is off has no connect block.
    expect(registry.connectInstructions('postgres', { connection: 'app', user: 'alice' })).toEqual({});

    expect(registry.kill('s2', 'killed', 'bye')).toBe(true);
    expect(registry.kill('s1', 'killed', 'bye')).toBe(false);
    expect(registry.notReady()).toEqual([]);
    expect(registry.killAll('instance_lost', 'gone')).toBe(1);
    await registry.close(1000);
    expect(registry.notReady()).toEqual(['redis_listener_down']);
    expect(redis.calls).toEqual(['kill s2 killed', 'kill s1 killed', 'killAll instance_lost', 'close 1000']);
    expect(pg.calls).toEqual([]);
  });

  it('refuses a protocol registered twice', () => {
    const l = new RecordingListener(1, []);
    expect(() => new ProtocolRegistry([engine('postgres', l), engine('postgres', l)])).toThrow('registered twice');
  });
});
