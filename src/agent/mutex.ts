/**
 * One lock for all snapshot work of an agent (recurring snapshots, tasks): they never
 * overlap. Waiters run in the order they asked.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;

  /** Runs `fn` once every earlier caller has finished. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    this.holders += 1;
    try {
      await previous;
      return await fn();
    } finally {
      this.holders -= 1;
      release();
    }
  }

  /** Something runs or waits. */
  get busy(): boolean {
    return this.holders > 0;
  }
}
