import { PassThrough, Writable } from 'node:stream';

/** The fan-out stopped because no destination is left; each destination's own error says why. */
export class AllDestinationsFailed extends Error {
  constructor() {
    super('every destination of the snapshot failed');
    this.name = 'AllDestinationsFailed';
  }
}

/**
 * Feeds one byte stream to several consumers (e.g. a local file and an S3 upload) so the
 * snapshot is read from etcd once. Backpressure: the slowest live branch sets the pace.
 * A branch whose consumer fails is dropped and the others go on; if every branch is gone,
 * the fan-out fails so the source stops being read.
 */
export class FanOut extends Writable {
  readonly branches: PassThrough[];
  private readonly dead = new Set<number>();

  constructor(count: number, highWaterMark = 1 << 20) {
    super({ highWaterMark });
    this.branches = Array.from({ length: count }, () => {
      const b = new PassThrough({ highWaterMark });
      // A branch's error reaches its consumer (the target's put); without a listener here, one
      // destroyed before its consumer attached (e.g. Ctrl-C) would crash the process.
      b.on('error', () => undefined);
      return b;
    });
  }

  /** Stops feeding branch `i` (its consumer failed). */
  drop(i: number, err?: Error): void {
    if (this.dead.has(i)) return;
    this.dead.add(i);
    const b = this.branches[i];
    if (b && !b.destroyed) b.destroy(err);
  }

  private live(): PassThrough[] {
    return this.branches.filter((b, i) => !this.dead.has(i) && !b.destroyed);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const live = this.live();
    if (live.length === 0) {
      done(new AllDestinationsFailed());
      return;
    }
    const waits: Promise<void>[] = [];
    for (const b of live) {
      if (!b.write(chunk)) waits.push(drained(b));
    }
    if (waits.length === 0) done();
    else Promise.all(waits).then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    for (const b of this.live()) b.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // A normal end also destroys (autoDestroy) with no error: the branches keep their data.
    if (err) for (const b of this.branches) if (!b.destroyed) b.destroy(err);
    done(err);
  }
}

function drained(b: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      b.off('drain', finish);
      b.off('close', finish);
      resolve();
    };
    b.on('drain', finish);
    b.on('close', finish);
  });
}
