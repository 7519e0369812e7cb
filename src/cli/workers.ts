/**
 * `gp predict --workers N`: the inputs, already read and checked, are cut into N contiguous shards; each shard goes
 * to a child `gp predict` process of its own (each loads its own backend and model, so every backend works, native
 * ones included), and the outputs are joined in input order. Each child gets an equal share of the cores as
 * libtensorflow intra-op threads unless TF_NUM_INTRAOP_THREADS is set.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpError } from '../errors.js';
import type { InputLine } from './input.js';

/** [start, end) of at most `workers` contiguous, non-empty, nearly equal shards of `count` lines. */
export function shardBounds(count: number, workers: number): Array<[number, number]> {
  const n = Math.max(1, Math.min(workers, count));
  const size = Math.ceil(count / n);
  return Array.from({ length: n }, (_, w) => [w * size, Math.min(count, (w + 1) * size)] as [number, number]).filter(([a, b]) => b > a);
}

/**
 * Output lines (JSON) of `gp predict` over `inputs`, computed by `workers` child processes, in input order.
 * `predictArgs` are the children's flags besides their input and output files.
 */
export async function predictInWorkers(inputs: InputLine[], workers: number, predictArgs: string[]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gp-predict-'));
  try {
    const shards = shardBounds(inputs.length, workers);
    const threads = String(Math.max(1, Math.floor(availableParallelism() / shards.length)));
    const outputs = await Promise.all(
      shards.map(async ([start, end], w) => {
        const inFile = join(dir, `in-${w}.jsonl`);
        const outFile = join(dir, `out-${w}.jsonl`);
        // JSON lines keep each input's extra fields and make an empty text a line of its own.
        writeFileSync(inFile, inputs.slice(start, end).map((i) => JSON.stringify({ ...i.extra, text: i.text }) + '\n').join(''));
        await runChild([...predictArgs, inFile, '--out', outFile], { TF_NUM_INTRAOP_THREADS: process.env.TF_NUM_INTRAOP_THREADS ?? threads });
        const lines = readFileSync(outFile, 'utf8').split('\n').slice(0, -1);
        if (lines.length !== end - start) throw new GpError(`predict worker ${w + 1}: ${lines.length} output lines for ${end - start} inputs`, 70);
        return lines;
      }),
    );
    return outputs.flat();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    // The same entry point and loader flags as this process (tsx during development, the built bin otherwise).
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], 'predict', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => reject(new GpError(`cannot start a predict worker: ${error.message}`, 70)));
    child.on('close', (code) => {
      if (code === 0) return resolve();
      // The child's own error line says what went wrong; its other stderr lines are backend chatter.
      const lines = stderr.trim().split('\n');
      const own = lines.filter((l) => l.startsWith('gp: error: ')).pop()?.slice('gp: error: '.length);
      reject(new GpError(`a predict worker failed (exit ${code}): ${own ?? lines.slice(-3).join(' | ')}`, code ?? 70));
    });
  });
}
