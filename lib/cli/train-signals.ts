// The signals that stop `patho train`: Ctrl-C (SIGINT), and SIGTERM and SIGHUP, which schedulers
// (SLURM, Kubernetes) and closed terminals send. The first stops training after the current step,
// which then saves; a second one quits at once (the handlers are gone, so the signal's default
// action ends the process; the checkpoints on disk are whole, being written atomically).

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The line printed at the first signal. */
export function stopMessage(sig: StopSignal): string {
  const again = sig === 'SIGINT' ? 'Ctrl-C again' : `a second ${sig}`;
  return `patho train: ${sig === 'SIGINT' ? 'Ctrl-C' : sig} received: stopping after the current step, then saving (${again} quits at once)`;
}

/**
 * Calls `onStop` with the first of SIGINT/SIGTERM/SIGHUP, then leaves every later one to its default
 * action. Returns the function that removes the handlers (when training ends by itself).
 */
export function onStopSignals(onStop: (sig: StopSignal) => void): () => void {
  const handlers = new Map<StopSignal, () => void>();
  const remove = (): void => {
    for (const [sig, h] of handlers) process.off(sig, h);
    handlers.clear();
  };
  for (const sig of STOP_SIGNALS) {
    const h = (): void => {
      remove();
      onStop(sig);
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  return remove;
}
