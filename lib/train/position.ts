// Where in an epoch training stopped, saved in the checkpoint (metadata `loader`) so a resume
// continues with the next batch rather than repeating the epoch: with the order a function of
// (seed, epoch) (lib/data/loader.ts) and the RNG state saved too, an interrupted and resumed run
// sees the batches an uninterrupted one would.
export interface LoaderPosition {
  /** 0-based epoch in progress */
  epoch: number;
  /** batches of it done (per rank) */
  batch: number;
  /** samples of it done, over all ranks */
  samples: number;
}

/** The position a checkpoint's metadata holds, when it is one mid-epoch of the checkpoint's epoch. */
export function positionFromMeta(meta: { epoch?: number; loader?: unknown }): LoaderPosition | null {
  const p = meta.loader as Partial<LoaderPosition> | undefined;
  if (!p || typeof p !== 'object') return null;
  const ok = [p.epoch, p.batch, p.samples].every((v) => Number.isSafeInteger(v) && (v as number) >= 0);
  return ok && p.epoch === (meta.epoch ?? 0) && p.batch! > 0 ? { epoch: p.epoch!, batch: p.batch!, samples: p.samples! } : null;
}

/** lib/data's DataLoader can start an epoch mid-way; other loaders are replayed and the batches done dropped. */
interface Resumable {
  resumeAt?: (epoch: number, samples: number) => { batch: number; samples: number };
}

/**
 * Sets the loader up to continue `pos`; returns the batch and sample count it starts at, and how
 * many batches the trainer must drop unseen (a loader without resumeAt replays the epoch).
 */
export function resumeLoader(loader: unknown, pos: LoaderPosition): { batch: number; samples: number; discard: number } {
  const l = loader as Resumable;
  if (typeof l.resumeAt === 'function') return { ...l.resumeAt(pos.epoch, pos.samples), discard: 0 };
  return { batch: pos.batch, samples: pos.samples, discard: pos.batch };
}
