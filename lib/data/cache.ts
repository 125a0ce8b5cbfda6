// Decoded-image cache with a byte budget: entries live in SharedArrayBuffers so worker threads
// read them without copies; in-flight decodes are shared, never repeated.
import type { SampleSource } from './sample';

export class DecodeCache {
  private entries = new Map<string, SampleSource>();
  private inflight = new Map<string, Promise<SampleSource>>();
  bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly budget: number) {}

  async get(key: string, load: () => Promise<SampleSource>): Promise<SampleSource> {
    const hit = this.entries.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.hits++;
      return pending;
    }
    this.misses++;
    const p = load()
      .then((s) => {
        const size = s.image.byteLength + s.mask.byteLength;
        if (this.bytes + size <= this.budget) {
          this.entries.set(key, s);
          this.bytes += size;
        }
        return s;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

/** Copy into shared memory so the bytes can be handed to workers without copying again. */
export function toShared(a: Uint8Array): Uint8Array {
  const s = new Uint8Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}
