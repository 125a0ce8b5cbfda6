// Worker-thread entry: renders samples (crop + augmentation) from shared decoded pixels.
import { parentPort } from 'node:worker_threads';
import { renderSample, SampleRequest, SampleSource } from './sample';

export interface WorkerTask {
  id: number;
  src: SampleSource;
  req: SampleRequest;
}
export type WorkerReply =
  { id: number; image: Uint8Array; mask: Uint8Array; x: number; y: number } | { id: number; error: { message: string; stack?: string } };

parentPort?.on('message', (task: WorkerTask) => {
  try {
    const r = renderSample(task.src, task.req);
    const reply: WorkerReply = { id: task.id, ...r };
    parentPort!.postMessage(reply, [r.image.buffer as ArrayBuffer, r.mask.buffer as ArrayBuffer]);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    parentPort!.postMessage({ id: task.id, error: { message: e.message, stack: e.stack } } satisfies WorkerReply);
  }
});
