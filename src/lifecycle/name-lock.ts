/**
 * Serializes lifecycle operations on one shed name: a create racing a delete,
 * or two creates of one name, run one after the other, so each sees the state
 * the previous one left.
 */
export class NameLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    this.tails.set(name, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }

  isBusy(name: string): boolean {
    return this.tails.has(name);
  }
}
