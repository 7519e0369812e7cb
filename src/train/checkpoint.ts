/**
 * Training checkpoints: everything needed to continue a run as if it had not stopped — parameters, AdamW moments and
 * step, the RNG state (now, and at the start of the epoch, which fixes that epoch's batch order), the position in the
 * epoch, the best score so far and the history.
 *
 *   DIR/checkpoint/state.json                 which files hold the latest checkpoint, plus the scalar state
 *   DIR/checkpoint/params-STEP.safetensors    parameters
 *   DIR/checkpoint/adam-STEP.safetensors      AdamW first and second moments (m.NAME, v.NAME), and the parameters'
 *                                             moving average (avg.NAME) when training.ema is on
 *
 * The tensor files of a step are written (atomically) before state.json points at them, and older ones are deleted
 * only after, so a kill -9 at any moment leaves a state.json whose files are complete.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GpError } from '../errors.js';
import { writeFileAtomic } from '../io.js';
import { assignWeights, snapshotParams } from '../model/io.js';
import type { Model } from '../model/globalpointer.js';
import { readSafetensors, writeSafetensors, type NamedArray } from '../model/safetensors.js';
import type { AdamWState } from './optimizer.js';

export interface LoopState {
  /** Optimizer steps taken so far. */
  step: number;
  /** The epoch in progress (1-based) and how many of its batches are done. */
  epoch: number;
  batchesDone: number;
  rngNow: number;
  rngAtEpochStart: number;
  lossSum: number;
  tokensSeen: number;
  badSteps: number;
  best: { epoch: number; step: number; f1: number } | null;
  evalsWithoutImprovement: number;
  /** One line of metrics.jsonl per evaluation so far (rewritten on resume so the file matches the state). */
  history: object[];
}

interface StateFile extends LoopState {
  params: string;
  adam: string;
  adamStep: number;
}

export const CHECKPOINT_DIR = 'checkpoint';

export function saveCheckpoint(outDir: string, model: Model, optimizer: AdamWState, state: LoopState): void {
  const dir = join(outDir, CHECKPOINT_DIR);
  mkdirSync(dir, { recursive: true });
  const tag = String(state.step).padStart(8, '0');
  const params = `params-${tag}.safetensors`;
  const adam = `adam-${tag}.safetensors`;
  writeSafetensors(join(dir, params), snapshotParams(model.params));
  const moments = new Map<string, NamedArray>();
  for (const [name, m] of optimizer.m) moments.set(`m.${name}`, { shape: m.shape, data: m.dataSync() as Float32Array });
  for (const [name, v] of optimizer.v) moments.set(`v.${name}`, { shape: v.shape, data: v.dataSync() as Float32Array });
  for (const [name, a] of optimizer.average ?? []) moments.set(`avg.${name}`, { shape: a.shape, data: a.dataSync() as Float32Array });
  writeSafetensors(join(dir, adam), moments);
  const file: StateFile = { ...state, params, adam, adamStep: optimizer.step };
  writeFileAtomic(join(dir, 'state.json'), JSON.stringify(file) + '\n');
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.safetensors') && f !== params && f !== adam) rmSync(join(dir, f), { force: true });
  }
}

export function hasCheckpoint(outDir: string): boolean {
  return existsSync(join(outDir, CHECKPOINT_DIR, 'state.json'));
}

/** Restore parameters and optimizer state in place; returns the loop state to continue from. */
export function loadCheckpoint(outDir: string, model: Model, optimizer: AdamWState): LoopState {
  const dir = join(outDir, CHECKPOINT_DIR);
  const stateFile = join(dir, 'state.json');
  if (!existsSync(stateFile)) throw new GpError(`${outDir}: nothing to resume (no ${CHECKPOINT_DIR}/state.json)`);
  let file: StateFile;
  try {
    file = JSON.parse(readFileSync(stateFile, 'utf8')) as StateFile;
  } catch (err) {
    throw new GpError(`${stateFile}: corrupt checkpoint state: ${(err as Error).message}`);
  }
  assignWeights(model, readSafetensors(join(dir, file.params)).tensors, join(dir, file.params));
  const adamFile = join(dir, file.adam);
  const moments = readSafetensors(adamFile).tensors;
  const kinds = [['m', optimizer.m], ['v', optimizer.v], ...(optimizer.average ? [['avg', optimizer.average] as const] : [])] as const;
  for (const [kind, target] of kinds) {
    for (const [name, variable] of target) {
      const saved = moments.get(`${kind}.${name}`);
      if (!saved || saved.shape.join() !== variable.shape.join()) throw new GpError(`${adamFile}: optimizer state for ${name} is missing or has the wrong shape`);
      tf.tidy(() => variable.assign(tf.tensor(saved.data, saved.shape)));
    }
  }
  optimizer.step = file.adamStep;
  const { params: _p, adam: _a, adamStep: _s, ...state } = file;
  return state;
}
