// A bounded read-ahead queue: fn(item) runs for at most `depth` items ahead of the consumer (the
// reads themselves run in sharp's and the addon's worker threads), results come out in order, and
// an abort stops launching new work and lets the running reads settle before it throws.

export async function* prefetchInOrder<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
  depth: number,
  signal?: AbortSignal,
): AsyncGenerator<R> {
  if (!Number.isInteger(depth) || depth < 1)
    throw new RangeError(`prefetchInOrder: Expected a positive integer depth but received ${depth}`);
  const pending: Promise<R>[] = [];
  let next = 0;
  try {
    while (next < items.length || pending.length) {
      while (next < items.length && pending.length < depth && !signal?.aborted) {
        const p = fn(items[next++]);
        p.catch(() => undefined); // awaited in order below; a consumer that stops early must not leave an unhandled rejection
        pending.push(p);
      }
      if (signal?.aborted) break;
      yield await pending.shift()!;
    }
  } finally {
    await Promise.allSettled(pending);
  }
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
