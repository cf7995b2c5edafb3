// A verify worker thread: scans the chunks verify-pool.ts sends it (verify-scan.ts) and hands the arrays back
// transferred, not copied. A failed read comes back as a value, so the pool can tell it from a dead thread.

import { parentPort } from 'node:worker_threads';
import { scanChunk, transferables, type ChunkTask } from './verify-scan';
import type { WorkerReply } from './verify-pool';

const port = parentPort!;
port.on('message', (task: ChunkTask) => {
  scanChunk(task).then(
    (scan) => port.postMessage({ scan } satisfies WorkerReply, transferables(scan)),
    (err: unknown) => port.postMessage({ error: (err as Error).message ?? String(err) } satisfies WorkerReply),
  );
});
