/**
 * Maintenance/Snapshot of one member as a Node Readable of Buffers.
 *
 * The bytes are exactly what etcd sends: the DB in 32 KiB chunks, then the message that
 * holds the 32-byte sha256 of the DB (FACTS.md). Nothing is checked here; the save pipeline
 * checks the trailer while it hashes.
 *
 * Backpressure: grpc-js only asks HTTP/2 for the next message when its own Readable is read,
 * so pausing it when our buffer is full lets flow control stop etcd. Memory stays bounded by
 * the HTTP/2 window (8 MiB) plus two small stream buffers, whatever the DB size.
 */
import { Readable } from 'node:stream';
import type { Etcd3, ISnapshotResponse } from 'etcd3';
import { EtcdsnapError } from '../core/errors.js';
import { toEtcdError } from './errors.js';

/** What grpc-js's ClientReadableStream offers beyond etcd3's narrow IResponseStream type. */
interface GrpcResponseStream {
  on(event: 'data', fn: (msg: ISnapshotResponse) => void): this;
  on(event: 'end', fn: () => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  pause(): this;
  resume(): this;
  cancel(): void;
}

const HIGH_WATER_MARK = 1 << 20;

class SnapshotReadable extends Readable {
  private call: GrpcResponseStream | undefined;
  private finished = false;
  private readonly onAbort = (): void => {
    this.destroy(new EtcdsnapError('OPERATION_ABORTED', `The snapshot stream from ${this.endpoint} was cancelled.`, { details: { endpoint: this.endpoint } }));
  };

  constructor(
    private readonly endpoint: string,
    private readonly client: Etcd3,
    private readonly signal: AbortSignal | undefined,
  ) {
    super({ highWaterMark: HIGH_WATER_MARK });
    if (signal?.aborted) queueMicrotask(this.onAbort);
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // etcd3 resolves the call once the connection is picked; connection errors surface on
    // the stream itself, as 'error'.
    this.client.maintenance.snapshot().then(
      (stream) => {
        // etcd3 types the stream narrowly; at runtime it is grpc-js's ClientReadableStream.
        const call = stream as unknown as GrpcResponseStream;
        if (this.destroyed) {
          call.on('error', () => undefined);
          call.cancel();
          callback();
          return;
        }
        this.call = call;
        call.on('data', (msg) => {
          if (!this.push(msg.blob)) call.pause();
        });
        call.on('end', () => {
          this.finished = true;
          this.push(null);
        });
        call.on('error', (err) => {
          if (this.destroyed) return; // the 'Cancelled on client' that follows our own cancel
          this.finished = true;
          this.destroy(toEtcdError(err, { operation: 'snapshot', endpoints: this.endpoint }));
        });
        call.pause();
        callback();
      },
      (err: unknown) => callback(toEtcdError(err, { operation: 'snapshot', endpoints: this.endpoint })),
    );
  }

  override _read(): void {
    this.call?.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    if (this.call && !this.finished) this.call.cancel();
    this.client.close();
    callback(error);
  }
}

/**
 * The raw snapshot stream of the member at `endpoint`, read through `client` (a client bound
 * to that endpoint alone, which the stream owns and closes). Aborting `signal` or destroying
 * the stream cancels the gRPC call; the stream then errors with OPERATION_ABORTED (signal)
 * or with the destroy error. gRPC failures become ETCD_UNREACHABLE / ETCD_REQUEST_FAILED.
 */
export function openSnapshotStream(endpoint: string, client: Etcd3, signal?: AbortSignal): Readable {
  return new SnapshotReadable(endpoint, client, signal);
}
