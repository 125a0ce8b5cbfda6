// Liveness of the ranks of a job, to name a peer that is stopped (SIGSTOP), hung or cut off: such a
// peer keeps its connections open, so nothing looks "gone"; its collectives just never come. Every
// rank sends a heartbeat to the rendezvous store on a connection of its own; the store stamps each
// with its own clock (no clock skew between hosts), and a failed collective asks which ranks fell silent.
import { StoreClient } from './store';

/** How often a rank says it is alive. */
export const HEARTBEAT_MS = 1000;

/** Silence after which a rank counts as not responding: half the timeout, within 2..10 s. */
export function silenceThresholdMs(timeoutMs: number): number {
  return Math.min(10_000, Math.max(2_000, timeoutMs / 2));
}

export interface Heartbeat {
  stop(): void;
}

/**
 * Sends alive/<rank> every HEARTBEAT_MS over its own connection, so a long waiting request on the
 * rank's main connection (a barrier) never delays it. Never keeps the process alive.
 */
export async function startHeartbeat(host: string, port: number, rank: number, timeoutMs: number): Promise<Heartbeat> {
  const client = await StoreClient.connect(host, port, timeoutMs, `rank ${rank}`);
  client.unref();
  let stopped = false;
  const beat = (): void => {
    if (!stopped) client.set(`alive/${rank}`, '').catch(() => undefined); // the store is gone: its owner reports that
  };
  beat();
  const timer = setInterval(beat, HEARTBEAT_MS);
  timer.unref();
  return {
    stop(): void {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      client.close();
    },
  };
}

export interface Silence {
  rank: number;
  /** ms since its last heartbeat reached the store */
  silentMs: number;
}

/**
 * Ranks whose heartbeat is older than thresholdMs (or that never sent one), by asking the store.
 * Rejects when the store itself does not answer within answerMs: then rank 0, which serves it, is the silent one.
 */
export async function silentRanks(store: StoreClient, worldSize: number, thresholdMs: number, answerMs = 3000): Promise<Silence[]> {
  const ages = JSON.parse((await store.get('liveness', 0, answerMs)).toString()) as Record<string, number>;
  const out: Silence[] = [];
  for (let r = 0; r < worldSize; r++) {
    const age = ages[r];
    if (age === undefined || age > thresholdMs) out.push({ rank: r, silentMs: age ?? Infinity });
  }
  return out;
}

let watchingLauncher = false;

/**
 * Under `patho launch` (PATHO_LAUNCHER_PID): exit when the launcher is gone (killed with SIGKILL, or
 * by the OOM killer), rather than train on as an orphan that nothing will stop. Workers run in
 * process groups of their own, so nothing else would reach them. Once per process.
 */
export function watchLauncher(env: NodeJS.ProcessEnv = process.env): void {
  const launcher = Number(env.PATHO_LAUNCHER_PID);
  if (watchingLauncher || !Number.isInteger(launcher) || launcher <= 1 || process.ppid !== launcher) return;
  watchingLauncher = true;
  setInterval(() => {
    if (process.ppid === launcher) return;
    process.stderr.write(`patho: the launcher (patho launch, pid ${launcher}) is gone; stopping this worker\n`);
    process.exit(1);
  }, HEARTBEAT_MS).unref();
}
