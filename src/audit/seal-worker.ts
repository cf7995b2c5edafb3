// The audit seal worker thread: seals each batch the log hands over (heads, leaf hashes, Merkle root) and
// answers with the root and the last leaf. See Sealer in ./seal.

import { parentPort } from 'node:worker_threads';
import { sealLines, type SealJob } from './seal';

parentPort!.on('message', (job: SealJob) => parentPort!.postMessage(sealLines(job)));
