/**
 * How training looks in a terminal: one cli-progress bar per epoch with loss, learning rate and tokens/s; plain
 * log lines (every ~10% of an epoch) when stdout is not a TTY, so CI logs and files stay readable.
 */
import cliProgress from 'cli-progress';
import type { EpochInfo, StepInfo, TrainReporter } from '../train/train.js';

export function consoleReporter(opts: { quiet: boolean; tty: boolean; write: (line: string) => void }): TrainReporter {
  let bar: cliProgress.SingleBar | null = null;
  let steps = 0;
  let epochs = 0;
  const line = (s: string) => {
    if (!opts.quiet) opts.write(s);
  };
  return {
    log: line,
    epochStart(epoch, total, stepCount) {
      steps = stepCount;
      epochs = total;
      if (opts.quiet || !opts.tty) return;
      bar = new cliProgress.SingleBar(
        {
          format: `epoch ${epoch}/${total} [{bar}] {value}/{total} | loss {loss} | λ {lambda} reg {reg} | lr {lr} | {tps} tok/s | eta {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(stepCount, 0, { loss: '-', lambda: '-', reg: '-', lr: '-', tps: '-' });
    },
    step(info: StepInfo) {
      const payload = {
        loss: info.loss.toFixed(4),
        lambda: info.lambda.toPrecision(2),
        reg: `${(100 * info.regShare).toFixed(0)}%`,
        lr: info.lr.toExponential(2),
        tps: Math.round(info.tokensPerSecond),
      };
      if (bar) bar.update(info.stepInEpoch, payload);
      else if (!opts.tty && (info.stepInEpoch % Math.max(1, Math.ceil(steps / 10)) === 0 || info.stepInEpoch === steps))
        line(`epoch ${info.epoch}/${epochs} step ${info.stepInEpoch}/${steps} loss ${payload.loss} λ ${payload.lambda} reg ${payload.reg} lr ${payload.lr} ${payload.tps} tok/s`);
    },
    epochEnd(info: EpochInfo) {
      bar?.stop();
      bar = null;
      const dev = info.dev
        ? `dev P ${info.dev.scores.micro.precision.toFixed(4)} R ${info.dev.scores.micro.recall.toFixed(4)} F1 ${info.dev.scores.micro.f1.toFixed(4)} (${info.dev.decoding.flat ? 'flat' : 'nested'}, threshold ${info.dev.decoding.threshold})`
        : 'no dev set';
      line(`epoch ${info.epoch}: train loss ${info.trainLoss.toFixed(4)}, ${dev}, ${info.seconds.toFixed(1)} s${info.best ? ' (best, saved)' : ''}`);
    },
  };
}
