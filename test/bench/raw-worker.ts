/**
 * The bare worker the runtime suite compares against: no runtime, no comlink,
 * no actor — only node:worker_threads. What it does depends on workerData:
 *   { mode: 'up' }              post 'up' on parentPort as soon as it runs
 *                               (spawn-to-first-message baseline);
 *   { mode: 'echo', port }      answer each `{ id }` with `{ ref: id }` on port
 *                               (request/response baseline);
 *   { mode: 'count', port, n }  count messages on port, post the count after
 *                               every n-th (one-way throughput baseline).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';

export type RawWorkerData =
  | { mode: 'up' }
  | { mode: 'echo'; port: MessagePort }
  | { mode: 'count'; port: MessagePort; n: number };

const data = workerData as RawWorkerData;

switch (data.mode) {
  case 'up':
    parentPort!.postMessage('up');
    break;
  case 'echo': {
    const port = data.port;
    port.on('message', (m: { id: number }) => port.postMessage({ ref: m.id }));
    break;
  }
  case 'count': {
    const { port, n } = data;
    let count = 0;
    port.on('message', () => {
      if (++count % n === 0) port.postMessage(count);
    });
    break;
  }
}
