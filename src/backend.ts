/**
 * Picks and loads the TensorFlow.js backend. The rest of gp imports ops from `@tensorflow/tfjs`; this module decides
 * which engine runs them.
 * docs/backends.md explains the choices and the measurements behind them.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
// The union package, not bare tfjs-core: its Node bundle is what registers the gradients and the chained tensor
// methods (x.add(y)) that the model uses; tfjs-core alone registers neither (docs/backends.md).
import * as tf from '@tensorflow/tfjs';
import { ConfigError, GpError } from './errors.js';

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export type LoadedBackendName = Exclude<BackendName, 'auto'>;

export interface BackendInfo {
  name: LoadedBackendName;
  /** The npm package that provides the backend. */
  package: string;
  version: string;
  /** Why this backend: what was asked for, and for auto what was skipped. */
  reason: string;
  /** Threads the backend was told to use, where it can be told. */
  threads?: number;
}

export interface BackendOptions {
  /** 0 or absent lets the backend decide. */
  threads?: number;
  log?: (line: string) => void;
}

/** Tried in this order by auto; both register the backend called 'tensorflow'. */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
const CPU_PACKAGE = '@tensorflow/tfjs-backend-cpu';
const WASM_BINARIES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
const SETUP_COMMAND = 'npm run setup:tensorflow';
const BACKEND_NAMES: readonly string[] = ['auto', 'tensorflow', 'wasm', 'cpu'] satisfies BackendName[];
/** EX_UNAVAILABLE from sysexits.h: the backend asked for is not there. */
const EXIT_UNAVAILABLE = 69;

const requireHere = createRequire(import.meta.url);

/** A backend that cannot run here; auto moves on to the next one, an explicit request turns it into a GpError. */
class Unavailable extends Error {}

/** `requested` unless it is 'auto' and GP_BACKEND names a backend; `why` says which of the two decided. */
export function resolveRequest(requested: BackendName, envValue: string | undefined): { choice: BackendName; why: string } {
  if (requested !== 'auto') return { choice: requested, why: 'requested' };
  const fromEnv = envValue?.trim();
  if (!fromEnv) return { choice: 'auto', why: 'auto' };
  if (!BACKEND_NAMES.includes(fromEnv)) {
    throw new ConfigError('GP_BACKEND', `"${fromEnv}" is not one of ${BACKEND_NAMES.join(', ')}`);
  }
  return { choice: fromEnv as BackendName, why: `GP_BACKEND=${fromEnv}` };
}

export async function initBackend(requested: BackendName, opts: BackendOptions = {}): Promise<BackendInfo> {
  const { choice, why } = resolveRequest(requested, process.env.GP_BACKEND);
  // PROD silences tfjs's console banners (the cpu backend's "install the node backend" notice); gp says it itself.
  tf.env().set('PROD', true);
  const threads = opts.threads && opts.threads > 0 ? opts.threads : undefined;
  const info = choice === 'auto' ? await loadAuto(threads) : await loadExplicit(choice, why, threads);
  opts.log?.(`backend: ${info.name} (${info.reason})`);
  if (threads !== undefined && info.threads !== undefined && info.threads !== threads) {
    opts.log?.(`backend: ${info.name} runs ${info.threads} thread(s) here; threads=${threads} has no effect`);
  }
  return info;
}

async function loadExplicit(choice: LoadedBackendName, why: string, threads: number | undefined): Promise<BackendInfo> {
  try {
    const info = choice === 'tensorflow' ? await loadFirstNative(threads) : await LOADERS[choice]();
    return { ...info, reason: `${why}; ${info.reason}` };
  } catch (err) {
    if (!(err instanceof Unavailable)) throw err;
    const advice =
      choice === 'tensorflow'
        ? `run \`${SETUP_COMMAND}\` (builds @tensorflow/tfjs-node against a local TensorFlow; docs/backends.md), or use --backend wasm`
        : 'use --backend cpu';
    throw new GpError(`backend "${choice}" is not available: ${err.message}. To get it: ${advice}.`, EXIT_UNAVAILABLE);
  }
}

async function loadAuto(threads: number | undefined): Promise<BackendInfo> {
  try {
    const info = await loadFirstNative(threads);
    return { ...info, reason: `auto; ${info.reason}` };
  } catch (err) {
    if (!(err instanceof Unavailable)) throw err;
    const skipped = `auto; ${err.message}; \`${SETUP_COMMAND}\` adds the faster tensorflow backend`;
    try {
      return { ...(await LOADERS.wasm()), reason: skipped };
    } catch (wasmErr) {
      if (!(wasmErr instanceof Unavailable)) throw wasmErr;
      return { ...(await LOADERS.cpu()), reason: `${skipped}; ${wasmErr.message}` };
    }
  }
}

/** The first of NATIVE_PACKAGES that loads; Unavailable lists why each did not. */
async function loadFirstNative(threads: number | undefined): Promise<BackendInfo> {
  const failures: string[] = [];
  for (const name of NATIVE_PACKAGES) {
    try {
      return await loadNative(name, threads);
    } catch (err) {
      if (!(err instanceof Unavailable)) throw err;
      failures.push(err.message);
    }
  }
  throw new Unavailable(failures.join('; '));
}

async function loadNative(name: string, threads: number | undefined): Promise<BackendInfo> {
  const status = inspectNative(name);
  if (!status.installed) throw new Unavailable(`${name} not installed`);
  if (!status.bindingBuilt) throw new Unavailable(`${name} has no native binding`);
  // libtensorflow reads this when its eager context starts, which tfjs-node does on import.
  if (threads !== undefined) process.env.TF_NUM_INTRAOP_THREADS = String(threads);
  try {
    await import(name);
  } catch (err) {
    throw new Unavailable(`${name} failed to load: ${firstLine(err)}`);
  }
  // tfjs-node registers on the engine of the tfjs-core copy it resolves; the engine lives on globalThis, so a
  // backend that is not visible here means two incompatible copies.
  if (!(await tf.setBackend('tensorflow')) || tf.getBackend() !== 'tensorflow') {
    throw new Unavailable(`${name} loaded, but its 'tensorflow' backend is not visible to gp's @tensorflow/tfjs-core`);
  }
  await tf.ready();
  const version = status.version ?? 'unknown';
  const lib = libtensorflowVersion();
  return {
    name: 'tensorflow',
    package: name,
    version,
    reason: `${name} ${version}${lib ? `, libtensorflow ${lib}` : ''}`,
    ...(threads !== undefined ? { threads } : {}),
  };
}

const LOADERS: Record<'wasm' | 'cpu', () => Promise<BackendInfo>> = {
  async wasm() {
    // Found next to the package's Node bundle, so no setWasmPaths is needed; tfjs-backend-wasm reports no thread
    // support under Node and always picks its single-threaded binary, so setThreadsCount would change nothing.
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Unavailable('the wasm backend failed to initialise');
    await tf.ready();
    return { name: 'wasm', package: WASM_PACKAGE, version: wasm.version_wasm, reason: 'single-threaded in Node', threads: wasm.getThreadsCount() };
  },
  async cpu() {
    const cpu = await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend('cpu'))) throw new Unavailable('the cpu backend failed to initialise');
    await tf.ready();
    return { name: 'cpu', package: CPU_PACKAGE, version: cpu.version_cpu, reason: 'plain JavaScript', threads: 1 };
  },
};

/** The C library version the tensorflow backend runs on, read from the binding tfjs-node exposes. */
function libtensorflowVersion(): string | undefined {
  const backend: unknown = tf.backend();
  if (typeof backend !== 'object' || backend === null || !('binding' in backend)) return undefined;
  const binding: unknown = backend.binding;
  if (typeof binding !== 'object' || binding === null || !('TF_Version' in binding)) return undefined;
  return typeof binding.TF_Version === 'string' ? binding.TF_Version : undefined;
}

/** The part of tfjs-node's backend `nativeUniform` uses: any libtensorflow op by name. */
interface NativeOps {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number; TF_INT32: number };
  executeSingleOutput(name: string, attrs: Array<{ name: string; type: number; value: number }>, inputs: tf.Tensor[]): tf.Tensor;
}

function nativeOps(): NativeOps | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  const backend: unknown = tf.backend();
  return typeof backend === 'object' && backend !== null && 'executeSingleOutput' in backend && 'binding' in backend ? (backend as NativeOps) : null;
}

/**
 * Uniform [0, 1) float32 numbers from libtensorflow's StatelessRandomUniform, a pure function of (shape, seed), or
 * null on other backends. tf.randomUniform fills its buffer in JavaScript one number at a time, which made dropout
 * masks a large share of a training step (docs/performance.md).
 */
export function nativeUniform(shape: number[], seed: number): tf.Tensor | null {
  const native = nativeOps();
  if (!native) return null;
  const { TF_ATTR_TYPE, TF_FLOAT, TF_INT32 } = native.binding;
  const attrs = [
    { name: 'dtype', type: TF_ATTR_TYPE, value: TF_FLOAT },
    { name: 'T', type: TF_ATTR_TYPE, value: TF_INT32 },
    { name: 'Tseed', type: TF_ATTR_TYPE, value: TF_INT32 },
  ];
  return tf.tidy(() => native.executeSingleOutput('StatelessRandomUniform', attrs, [tf.tensor1d(shape, 'int32'), tf.tensor1d([seed, 0], 'int32')]));
}

// ------------------------------------------------------------------------------------------------- inspection

/**
 * The addon path tfjs-node itself will try: it asks node-pre-gyp's `find`, which picks the N-API build directory
 * for this Node; asking the same function keeps the two from disagreeing.
 */
function preGypBindingPath(packageDir: string): string | undefined {
  const manifest = join(packageDir, 'package.json');
  try {
    const preGyp: unknown = createRequire(manifest)('@mapbox/node-pre-gyp');
    if (typeof preGyp !== 'object' || preGyp === null || !('find' in preGyp) || typeof preGyp.find !== 'function') return undefined;
    const found: unknown = preGyp.find(manifest);
    return typeof found === 'string' ? found : undefined;
  } catch {
    return undefined;
  }
}

interface PackageFound {
  dir: string;
  manifest: { version?: string };
}

function findPackage(name: string, from = requireHere): PackageFound | undefined {
  let manifestPath: string;
  try {
    manifestPath = from.resolve(`${name}/package.json`);
  } catch {
    return undefined;
  }
  return { dir: dirname(manifestPath), manifest: JSON.parse(readFileSync(manifestPath, 'utf8')) as PackageFound['manifest'] };
}

export interface NativeStatus {
  package: string;
  installed: boolean;
  dir?: string;
  version?: string;
  binding?: string;
  bindingBuilt: boolean;
  /** Whether the package's @tensorflow/tfjs resolves to the same @tensorflow/tfjs-core file as gp. */
  sharesTfjsCore?: boolean;
}

function inspectNative(name: string): NativeStatus {
  const found = findPackage(name);
  if (!found) return { package: name, installed: false, bindingBuilt: false };
  const binding = preGypBindingPath(found.dir);
  return {
    package: name,
    installed: true,
    dir: found.dir,
    version: found.manifest.version,
    binding,
    bindingBuilt: binding !== undefined && existsSync(binding),
    sharesTfjsCore: sharesTfjsCore(found.dir),
  };
}

function sharesTfjsCore(packageDir: string): boolean {
  const union = findPackage('@tensorflow/tfjs', createRequire(join(packageDir, 'package.json')));
  const theirs = union && findPackage('@tensorflow/tfjs-core', createRequire(join(union.dir, 'package.json')));
  return theirs?.dir === findPackage('@tensorflow/tfjs-core')?.dir;
}

export interface NativeReport extends NativeStatus {
  /** Set when the binding exists: whether a child Node process could load it, and the libtensorflow it found. */
  loads?: boolean;
  libtensorflow?: string;
  error?: string;
}

export interface BackendReport {
  node: string;
  napi: string;
  platform: string;
  tfjsCore: string;
  cpus: number;
  env: { GP_BACKEND?: string; TF_NUM_INTRAOP_THREADS?: string };
  tensorflow: NativeReport[];
  wasm: { package: string; version?: string; binariesFound: boolean; threadsInNode: number };
  cpu: { package: string; version?: string };
  /** What initBackend('auto') would pick here, judged without switching this process's backend. */
  auto: { name: LoadedBackendName; reason: string };
  setup: string;
}

const execFileAsync = promisify(execFile);

/** Loads a native package in a child process so that the report neither switches nor breaks this one. */
async function probeNative(status: NativeStatus): Promise<NativeReport> {
  if (!status.bindingBuilt || status.dir === undefined) return status;
  const script = `const t = require(${JSON.stringify(status.dir)});
    process.stdout.write(JSON.stringify({ backend: t.getBackend(), tf: t.backend().binding.TF_Version }));`;
  try {
    const { stdout } = await execFileAsync(process.execPath, ['-e', script], { timeout: 120_000 });
    const parsed = JSON.parse(stdout) as { backend?: string; tf?: string };
    return { ...status, loads: parsed.backend === 'tensorflow', libtensorflow: parsed.tf };
  } catch (err) {
    return { ...status, loads: false, error: childError(err) };
  }
}

export async function backendReport(): Promise<BackendReport> {
  const tensorflow = await Promise.all(NATIVE_PACKAGES.map((name) => probeNative(inspectNative(name))));
  const wasm = findPackage(WASM_PACKAGE);
  const binariesFound = wasm !== undefined && WASM_BINARIES.every((f) => existsSync(join(wasm.dir, 'dist', f)));
  const envBackend = process.env.GP_BACKEND;
  return {
    node: process.version,
    napi: process.versions.napi ?? 'unknown',
    platform: `${process.platform}-${process.arch}`,
    tfjsCore: tf.version_core,
    cpus: availableParallelism(),
    env: { GP_BACKEND: envBackend, TF_NUM_INTRAOP_THREADS: process.env.TF_NUM_INTRAOP_THREADS },
    tensorflow,
    wasm: { package: WASM_PACKAGE, version: wasm?.manifest.version, binariesFound, threadsInNode: 1 },
    cpu: { package: CPU_PACKAGE, version: findPackage(CPU_PACKAGE)?.manifest.version },
    auto: predictAuto(resolveRequest('auto', envBackend), tensorflow, binariesFound),
    setup: SETUP_COMMAND,
  };
}

function predictAuto(
  request: { choice: BackendName; why: string },
  natives: NativeReport[],
  wasmBinaries: boolean,
): { name: LoadedBackendName; reason: string } {
  if (request.choice !== 'auto') return { name: request.choice, reason: request.why };
  const native = natives.find((n) => n.loads);
  if (native) return { name: 'tensorflow', reason: `${native.package} loads` };
  const why = natives.map((n) => `${n.package}: ${!n.installed ? 'not installed' : !n.bindingBuilt ? 'no native binding' : n.error ?? 'does not load'}`);
  return wasmBinaries ? { name: 'wasm', reason: why.join('; ') } : { name: 'cpu', reason: [...why, 'wasm binaries missing'].join('; ') };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

/** The `Error: ...` line of a failed child's stderr, which also carries libtensorflow's start-up chatter. */
function childError(err: unknown): string {
  const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr) : '';
  return stderr.split('\n').find((l) => /^\w*Error\b/.test(l)) ?? firstLine(err);
}
