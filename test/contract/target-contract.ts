import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isEtcdsnapError, type ErrorCode } from '../../src/core/errors.js';
import type { BackupTarget } from '../../src/storage/target.js';
import { chunked, failingAfter, metadataFor, readAll } from './fixtures.js';

export interface ContractFixture {
  target: BackupTarget;
  /** Every raw entry the backend holds (files, objects, unfinished uploads), visible or not. */
  leftovers(): Promise<string[]>;
  cleanup(): Promise<void>;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isEtcdsnapError(err), `expected an EtcdsnapError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/**
 * The behaviour every BackupTarget must have. Each implementation's test file calls this
 * with a fixture factory; nothing here knows which backend it runs against.
 */
export function runTargetContract(label: string, setup: () => Promise<ContractFixture>): void {
  describe(`BackupTarget contract: ${label}`, () => {
    let fx: ContractFixture;
    before(async () => {
      fx = await setup();
    });
    after(async () => {
      await fx?.cleanup();
    });

    it('stores a streamed body with its metadata and reads both back', async () => {
      const name = 'etcd-snapshot-node-a-1700000001';
      const body = randomBytes(3 * 1024 * 1024 + 17);
      const stored = await fx.target.put(name, chunked(body), { metadata: () => metadataFor(name, body) });
      assert.equal(stored.name, name);
      assert.equal(stored.size, body.length);
      assert.equal(stored.location, fx.target.location(name));
      assert.deepEqual(stored.metadata, metadataFor(name, body));

      const stat = await fx.target.stat(name);
      assert.equal(stat.size, body.length);
      assert.deepEqual(stat.metadata, metadataFor(name, body));

      const opened = await fx.target.open(name);
      assert.equal(opened.size, body.length);
      assert.ok((await readAll(opened.stream)).equals(body), 'bytes read back differ');
    });

    it('stores a body larger than one multipart part', async () => {
      const name = 'on-demand-node-a-1700000002.zst';
      const body = randomBytes(11 * 1024 * 1024 + 5);
      await fx.target.put(name, chunked(body, 256 * 1024), { metadata: () => metadataFor(name, body) });
      const opened = await fx.target.open(name);
      assert.ok((await readAll(opened.stream)).equals(body));
    });

    it('lists snapshots newest first with their metadata', async () => {
      const names = ['etcd-snapshot-node-b-1700000100', 'etcd-snapshot-node-b-1700000300', 'etcd-snapshot-node-b-1700000200'];
      for (const name of names) {
        const body = randomBytes(1000);
        await fx.target.put(name, chunked(body), { metadata: () => metadataFor(name, body) });
      }
      const listed = (await fx.target.list()).filter((s) => s.name.startsWith('etcd-snapshot-node-b-'));
      assert.deepEqual(
        listed.map((s) => s.name),
        ['etcd-snapshot-node-b-1700000300', 'etcd-snapshot-node-b-1700000200', 'etcd-snapshot-node-b-1700000100'],
      );
      for (const s of listed) {
        assert.equal(s.metadata?.name, s.name);
        assert.equal(s.size, 1000);
      }
    });

    it('refuses to overwrite an existing snapshot and keeps the original', async () => {
      const name = 'on-demand-node-c-1700000400';
      const body = randomBytes(2048);
      await fx.target.put(name, chunked(body), { metadata: () => metadataFor(name, body) });
      const other = randomBytes(4096);
      await rejectsWith(fx.target.put(name, chunked(other), { metadata: () => metadataFor(name, other) }), 'SNAPSHOT_EXISTS');
      const opened = await fx.target.open(name);
      assert.ok((await readAll(opened.stream)).equals(body), 'the original was changed');
    });

    it('leaves nothing behind when the body fails mid-stream', async () => {
      const before = await fx.leftovers();
      const name = 'on-demand-node-d-1700000500';
      await assert.rejects(fx.target.put(name, failingAfter(6 * 1024 * 1024), { metadata: () => metadataFor(name, Buffer.alloc(0)) }));
      await rejectsWith(fx.target.stat(name), 'SNAPSHOT_NOT_FOUND');
      assert.deepEqual(await fx.leftovers(), before);
    });

    it('leaves nothing behind when the metadata cannot be produced', async () => {
      const before = await fx.leftovers();
      const name = 'on-demand-node-d-1700000600';
      await assert.rejects(
        fx.target.put(name, chunked(randomBytes(6 * 1024 * 1024 + 1)), {
          metadata: () => {
            throw new Error('trailer check failed');
          },
        }),
        /trailer check failed/,
      );
      await rejectsWith(fx.target.stat(name), 'SNAPSHOT_NOT_FOUND');
      assert.deepEqual(await fx.leftovers(), before);
    });

    it('leaves nothing behind when aborted', async () => {
      const before = await fx.leftovers();
      const name = 'on-demand-node-d-1700000700';
      const ac = new AbortController();
      let reads = 0;
      // An endless body that cancels the put once it is well under way.
      const body = new Readable({
        read() {
          reads += 1;
          if (reads === 100) ac.abort(); // past 6 MiB: a multipart target has sent a part

          this.push(randomBytes(64 * 1024));
        },
      });
      await assert.rejects(fx.target.put(name, body, { metadata: () => metadataFor(name, Buffer.alloc(0)), signal: ac.signal }));
      body.destroy();
      await rejectsWith(fx.target.stat(name), 'SNAPSHOT_NOT_FOUND');
      assert.deepEqual(await fx.leftovers(), before);
    });

    it('deletes a snapshot and its metadata', async () => {
      const name = 'on-demand-node-e-1700000800';
      const before = await fx.leftovers();
      const body = randomBytes(500);
      await fx.target.put(name, chunked(body), { metadata: () => metadataFor(name, body) });
      await fx.target.delete(name);
      await rejectsWith(fx.target.stat(name), 'SNAPSHOT_NOT_FOUND');
      await rejectsWith(fx.target.open(name), 'SNAPSHOT_NOT_FOUND');
      assert.ok(!(await fx.target.list()).some((s) => s.name === name));
      assert.deepEqual(await fx.leftovers(), before);
      await rejectsWith(fx.target.delete(name), 'SNAPSHOT_NOT_FOUND');
    });

    it('rejects unsafe names before touching storage', async () => {
      const before = await fx.leftovers();
      for (const bad of ['../escape', 'a/b', '.metadata', 'UPPER', '', 'x..y', 'name.part']) {
        await rejectsWith(fx.target.put(bad, chunked(Buffer.from('x')), { metadata: () => metadataFor('x', Buffer.from('x')) }), 'INVALID_NAME');
        await rejectsWith(fx.target.stat(bad), 'INVALID_NAME');
        await rejectsWith(fx.target.open(bad), 'INVALID_NAME');
        await rejectsWith(fx.target.delete(bad), 'INVALID_NAME');
      }
      assert.deepEqual(await fx.leftovers(), before);
    });

    it('reports a missing snapshot as SNAPSHOT_NOT_FOUND', async () => {
      await rejectsWith(fx.target.stat('etcd-snapshot-nobody-1'), 'SNAPSHOT_NOT_FOUND');
      await rejectsWith(fx.target.open('etcd-snapshot-nobody-1'), 'SNAPSHOT_NOT_FOUND');
    });
  });
}
