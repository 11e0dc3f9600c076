/**
 * In-memory storage for the development identity provider (oidc-provider's Adapter interface).
 * Deliberately memory only: the dev IdP's sign-ins, codes and refresh tokens vanish when the gateway
 * stops (gateway sessions do not: they live in the gateway's store). One DevIdpStore can back
 * several provider instances, which is how a test rotates the signing keys of a running IdP without
 * losing its state. Expiry uses the real clock: the IdP is a separate party with its own time.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  payload: AdapterPayload;
  expiresAt: number;
}

export class DevIdpStore {
  private readonly entries = new Map<string, Entry>();

  get(key: string): AdapterPayload | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.payload;
  }

  set(key: string, payload: AdapterPayload, expiresInSeconds: number | undefined): void {
    this.entries.set(key, { payload, expiresAt: expiresInSeconds === undefined ? Infinity : Date.now() + expiresInSeconds * 1000 });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Keys whose payload belongs to `grantId` (to revoke everything a grant produced). */
  keysOfGrant(grantId: string): string[] {
    return [...this.entries].filter(([, e]) => e.payload.grantId === grantId).map(([k]) => k);
  }

  /** The adapter class oidc-provider instantiates once per model name. */
  adapter(): new (model: string) => Adapter {
    return devIdpAdapter(this);
  }
}

function devIdpAdapter(store: DevIdpStore): new (model: string) => Adapter {
  return class DevIdpAdapter implements Adapter {
    constructor(private readonly model: string) {}

    private key(id: string): string {
      return `${this.model}:${id}`;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      store.set(this.key(id), payload, expiresIn);
      if (payload.uid) store.set(`uid:${payload.uid}`, { id } as AdapterPayload, expiresIn);
      if (payload.userCode) store.set(`userCode:${payload.userCode}`, { id } as AdapterPayload, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      return store.get(this.key(id));
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const ref = store.get(`uid:${uid}`) as { id?: string } | undefined;
      return ref?.id === undefined ? undefined : store.get(this.key(ref.id));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const ref = store.get(`userCode:${userCode}`) as { id?: string } | undefined;
      return ref?.id === undefined ? undefined : store.get(this.key(ref.id));
    }

    async consume(id: string): Promise<void> {
      const p = store.get(this.key(id));
      if (p) p.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id: string): Promise<void> {
      store.delete(this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      for (const key of store.keysOfGrant(grantId)) store.delete(key);
    }
  };
}
