// Training progress for the terminal: a cli-progress bar per epoch (step, loss, images/s, ETA)
// when stdout is a TTY, plain lines otherwise (logs, CI). After interrupt() no bar is drawn again, so
// no redraw overwrites the message that says training is stopping.
import * as cliProgress from 'cli-progress';
import type { ProgressEvent } from '../train/trainer';

export interface ProgressReporter {
  onProgress: (e: ProgressEvent) => void;
  stop: () => void;
  /** ends the bar, writes `message` to err on a line of its own and draws no bar after it */
  interrupt: (message: string) => void;
}

export function progressReporter(out: NodeJS.WriteStream = process.stdout, err: NodeJS.WritableStream = process.stderr): ProgressReporter {
  const valShare = (v: number | undefined): string => (v === undefined ? '' : `; validation ${(100 * v).toFixed(1)}% of the time`);

  const tty = Boolean(out.isTTY);
  let interrupted = false;
  let bar: cliProgress.SingleBar | null = null;
  let barEpoch = -1;
  let lastLine = 0;
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const onProgress = (e: ProgressEvent) => {
    if (e.type === 'step') {
      const total = e.stepsPerEpoch ?? 0;
      if (tty) {
        if (interrupted) return;
        if (barEpoch !== e.epoch) {
          stop();
          bar = new cliProgress.SingleBar(
            {
              format: `epoch ${e.epoch} [{bar}] {value}/{total} | loss {loss} | {ips} img/s | ETA {eta_formatted}`,
              hideCursor: true,
              stream: out,
              etaBuffer: 20,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total || 1, 0, { loss: '-', ips: '-' });
          barEpoch = e.epoch;
        }
        bar?.update(e.stepInEpoch, { loss: e.loss.toFixed(4), ips: e.imagesPerSecond.toFixed(1) });
      } else if (Date.now() - lastLine > 5000 || e.stepInEpoch === total) {
        lastLine = Date.now();
        out.write(
          `epoch ${e.epoch} step ${e.stepInEpoch}${total ? `/${total}` : ''} loss ${e.loss.toFixed(4)} ${e.imagesPerSecond.toFixed(1)} img/s lr ${e.lr.toExponential(2)}\n`,
        );
      }
    } else if (e.type === 'epoch') {
      stop();
      const m = e.metrics;
      const dice =
        m.classes && m.dice
          ? `mean dice ${m.dice.mean?.toFixed(4)} (${Object.entries(m.classes)
              .slice(1)
              .map(([k, v]) => `${k} ${v.dice?.toFixed(3)}`)
              .join(', ')})`
          : m.dice
            ? Object.entries(m.dice)
                .map(([t, v]) => `dice@${t} ${v.toFixed(4)}`)
                .join(' ')
            : '';
      out.write(
        `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)}${m.valLoss !== undefined ? ` val loss ${m.valLoss.toFixed(4)}` : ''} ${dice} ` +
          `${m.imagesPerSecond.toFixed(1)} img/s ${m.seconds.toFixed(1)} s${m.partial ? ' (partial)' : ''}${valShare(m.valShare)}\n`,
      );
    } else if (e.type === 'validation') {
      stop();
      barEpoch = -1; // the next step starts a fresh bar below this line
      const m = e.metrics;
      out.write(
        `step ${m.step}: val loss ${m.valLoss.toFixed(4)} ${Object.entries(m.dice)
          .map(([t, v]) => `dice@${t} ${v.toFixed(4)}`)
          .join(' ')}${m.ema ? ' (moving average)' : ''}` + ` ${m.seconds.toFixed(1)} s${valShare(m.valShare)}\n`,
      );
    } else if (e.type === 'checkpoint') {
      if (!tty) out.write(`saved ${e.file}${e.best ? ' (best)' : ''}\n`);
    }
  };
  const interrupt = (message: string) => {
    stop();
    interrupted = true;
    err.write(`${message}\n`);
  };
  return { onProgress, stop, interrupt };
}
