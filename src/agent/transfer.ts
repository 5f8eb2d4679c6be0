/**
 * What the restore tasks use to serve a staged snapshot: the transfer endpoint plus its
 * entries in the agent state, so an agent restarted while serving listens again (on the same
 * port when `--transfer-listen` asked for any port).
 */
import type { Logger } from '../core/log.js';
import type { AgentConfig } from './config.js';
import type { StateStore } from './state.js';
import { TransferServer, tokenDigest } from './transfer-server.js';
import { ensureTransferTls, type TransferTls } from './transfer-tls.js';

export interface Served {
  /** Advertised base URL (`--transfer-url`, else `https://<peer host>:<bound port>`). */
  url: string;
  certSha256: string;
}

export class TransferService {
  readonly server: TransferServer;
  private tls: Promise<TransferTls> | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly state: StateStore,
    logger: Logger,
  ) {
    this.server = new TransferServer({
      host: config.transferHost,
      port: config.transferPort,
      preferredPort: () => state.state.transferPort,
      tls: () => this.certificate(),
      logger,
      onBound: (port) =>
        state.update((s) => {
          s.transferPort = port;
        }),
    });
  }

  /** The endpoint's certificate (made once per data dir). */
  certificate(): Promise<TransferTls> {
    this.tls ??= ensureTransferTls(this.config.dataDir, this.config.nodeName).catch((err: unknown) => {
      this.tls = undefined;
      throw err;
    });
    return this.tls;
  }

  /** Serves `file` to holders of `token` for the operation (recorded first, then listened). */
  async serve(operationId: string, file: string, size: number, token: string, storedFile?: string): Promise<Served> {
    const entry = { operationId, file, size, tokenSha256: tokenDigest(token), ...(storedFile ? { storedFile } : {}) };
    await this.state.update((s) => {
      s.serving[operationId] = entry;
    });
    const port = await this.server.serve(entry);
    return { url: this.config.transferUrl ?? `https://${new URL(this.config.etcdPeerUrl).hostname}:${port}`, certSha256: (await this.certificate()).certSha256 };
  }

  async unserve(operationId: string): Promise<void> {
    await this.server.unserve(operationId);
    if (this.state.state.serving[operationId]) {
      await this.state.update((s) => {
        delete s.serving[operationId];
      });
    }
  }

  /** After an agent restart: serve again what the state says was served. */
  async resume(): Promise<void> {
    for (const entry of Object.values(this.state.state.serving)) await this.server.serve(entry);
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
