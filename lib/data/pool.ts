// A small pool of worker threads that render samples; results resolve per task, so callers
// assemble batches in their own order whatever the completion order.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DataError } from '../errors';
import type { SampleRequest, SampleResult, SampleSource } from './sample';
import type { WorkerReply, WorkerTask } from './worker';

interface Pending {
  task: WorkerTask;
  resolve: (r: SampleResult) => void;
  reject: (e: Error) => void;
}

// Under ts-node/tap the sources are .ts and workers inherit the loader through execArgv.
const WORKER_FILE = path.join(__dirname, `worker${path.extname(__filename)}`);

export class WorkerPool {
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: Pending[] = [];
  private running = new Map<Worker, Pending>();
  private nextId = 0;
  private closed = false;
  private broken: Error | null = null;
  private served = new WeakSet<Worker>();
  private dead = new WeakSet<Worker>();

  constructor(
    readonly size: number,
    private file = WORKER_FILE,
  ) {
    for (let i = 0; i < size; i++) this.spawn();
  }

  private spawn(): void {
    // A .ts entry needs the parent's loader flags (ts-node/tsx/tap); compiled .js needs none, and
    // skipping inherited --import hooks makes workers start faster.
    const w = new Worker(this.file, this.file.endsWith('.ts') ? {} : { execArgv: [] });
    w.unref();
    w.on('message', (m: WorkerReply) => {
      const p = this.running.get(w);
      this.running.delete(w);
      this.served.add(w);
      if (p) {
        if ('error' in m) {
          const e = new DataError(`Expected to render a sample but the data worker failed: ${m.error.message}`);
          if (m.error.stack) e.stack = m.error.stack;
          p.reject(e);
        } else {
          p.resolve({ image: m.image, mask: m.mask, x: m.x, y: m.y });
        }
      }
      this.idle.push(w);
      this.pump();
    });
    w.on('error', (err) => this.fail(w, err));
    w.on('exit', (code) => {
      if (!this.closed) this.fail(w, new Error(`data worker exited with code ${code}`));
    });
    this.workers.push(w);
    this.idle.push(w);
  }

  private fail(w: Worker, err: Error): void {
    if (this.dead.has(w)) return; // 'error' is followed by 'exit'
    this.dead.add(w);
    const p = this.running.get(w);
    this.running.delete(w);
    this.workers = this.workers.filter((x) => x !== w);
    this.idle = this.idle.filter((x) => x !== w);
    if (p) p.reject(new DataError(`Expected a running data worker but it failed: ${err.message}`));
    if (this.closed) return;
    if (!this.served.has(w)) {
      // Died before finishing one task (e.g. cannot load its module): respawning would loop.
      this.broken = new DataError(
        `Expected data worker threads to start but one failed: ${err.message} (workers: 0 runs on the main thread)`,
      );
      for (const q of this.queue) q.reject(this.broken);
      this.queue = [];
      return;
    }
    this.spawn();
    this.pump();
  }

  run(src: SampleSource, req: SampleRequest): Promise<SampleResult> {
    if (this.closed) return Promise.reject(new DataError('Expected an open DataLoader but it was closed'));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ task: { id: this.nextId++, src, req }, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const p = this.queue.shift()!;
      this.running.set(w, p);
      w.postMessage(p.task);
    }
    // Keep the process alive only while work is in flight.
    for (const w of this.workers) {
      if (this.running.has(w)) w.ref();
      else w.unref();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.queue, ...this.running.values()]) p.reject(new DataError('Expected an open DataLoader but it was closed'));
    this.queue = [];
    this.running.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
    this.idle = [];
  }
}
