/**
 * Values that move over training. The learning rate warms up linearly from 0 to its peak, then stays (constant),
 * decays linearly to 0 (linear) or follows a half cosine to 0 (cosine).
 */
export interface LrSchedule {
  type: 'constant' | 'linear' | 'cosine';
  /** Steps, or a fraction of all steps when < 1. */
  warmup: number;
}

/** A step count given either directly (≥ 1) or as a fraction of the total (< 1). */
export function resolveSteps(value: number, totalSteps: number): number {
  return value < 1 ? Math.round(value * totalSteps) : Math.round(value);
}

/** The learning rate at `step` (0-based) of `totalSteps`. */
export function learningRateAt(step: number, totalSteps: number, peak: number, schedule: LrSchedule): number {
  const warmup = resolveSteps(schedule.warmup, totalSteps);
  if (step < warmup) return (peak * (step + 1)) / warmup;
  if (schedule.type === 'constant') return peak;
  const progress = Math.min(1, (step - warmup) / Math.max(1, totalSteps - warmup));
  return schedule.type === 'linear' ? peak * (1 - progress) : peak * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** λ at `step`: 0 during warm-up, then a ramp to `weight` (linear, half-cosine, or a step at the ramp's end). */
export function lambdaAt(
  step: number,
  totalSteps: number,
  stepsPerEpoch: number,
  weight: number,
  schedule: { type: 'linear' | 'cosine' | 'step'; warmup: number; ramp: number; unit: 'steps' | 'epochs' },
): number {
  const toSteps = (v: number) => (v < 1 ? Math.round(v * totalSteps) : Math.round(schedule.unit === 'epochs' ? v * stepsPerEpoch : v));
  const warmup = toSteps(schedule.warmup);
  const ramp = toSteps(schedule.ramp);
  if (step < warmup) return 0;
  if (ramp === 0 || step >= warmup + ramp) return weight;
  const progress = (step - warmup) / ramp;
  if (schedule.type === 'step') return 0;
  return schedule.type === 'linear' ? weight * progress : weight * 0.5 * (1 - Math.cos(Math.PI * progress));
}
