/**
 * Graceful shutdown as a fixed order of named steps. The composition root states the order once,
 * with why each step comes where it does; every part adds its own stop to a step right where it is
 * built. A start that fails halfway therefore stops exactly what exists, in the same order as a
 * normal shutdown, and nothing has to be declared before it is built just so shutdown can reach it.
 */
export class ShutdownSequence<Step extends string> {
  private readonly stops = new Map<Step, Array<() => unknown>>();
  private begun = false;

  constructor(private readonly order: readonly Step[]) {}

  /** Runs `stop` (awaited when it returns a promise) during `step`, after the stops added to it before. */
  add(step: Step, stop: () => unknown): void {
    const list = this.stops.get(step);
    if (list) list.push(stop);
    else this.stops.set(step, [stop]);
  }

  /** True once `run` has been called (e.g. for readiness: draining). */
  get started(): boolean {
    return this.begun;
  }

  /** Runs every step's stops in order, one at a time. */
  async run(): Promise<void> {
    this.begun = true;
    for (const step of this.order) for (const stop of this.stops.get(step) ?? []) await stop();
  }
}
