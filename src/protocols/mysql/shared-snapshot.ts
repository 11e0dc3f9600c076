/**
 * One read shared by many sessions: the first caller starts it, callers within `maxAgeMs` of its
 * start get the same result (logins in a burst take one backend connection for the catalog, not
 * one each). A failed read is not kept: the next caller reads again.
 */
export class SharedSnapshot<T> {
  private current: { startedAt: number; value: Promise<T> } | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    const c = this.current;
    if (c && this.now() - c.startedAt < this.maxAgeMs) return c.value;
    const value = this.read();
    const entry = { startedAt: this.now(), value };
    this.current = entry;
    value.catch(() => {
      if (this.current === entry) this.current = undefined;
    });
    return value;
  }
}
