/** The tiny model the unit tests build: a one-layer transformer of width 16 over a 20-token vocabulary. */
import type { ModelSpec } from '../src/model/globalpointer.js';

export function tinySpec(over: Partial<ModelSpec> = {}): ModelSpec {
  return {
    dim: 16,
    dropout: 0.1,
    encoder: { type: 'transformer', layers: 1, heads: 2, ffnMultiplier: 2, positions: 'rope', attentionDropout: 0.1 },
    head: { type: 'globalpointer', size: 8, rope: true },
    vocabSize: 20,
    numTypes: 3,
    maxLength: 16,
    ...over,
  };
}
