#!/usr/bin/env node
/**
 * `npm run setup:tensorflow [-- options]`: makes gp's `tensorflow` backend work without internet access by building
 * @tensorflow/tfjs-node's native binding against a TensorFlow C library that is already here or that pip's
 * configured index provides. tfjs-node's own install script would download libtensorflow from Google instead.
 *
 * Where TensorFlow comes from, first match wins:
 *   1. --libtensorflow DIR or GP_LIBTENSORFLOW=DIR: a libtensorflow archive (lib/ + include/) or a TensorFlow
 *      Python package directory (libtensorflow_cc.so.2 + include/);
 *   2. a TensorFlow Python package importable by python3;
 *   3. the wheel named by GP_TENSORFLOW_PIP (default tensorflow-cpu==2.21.0) from pip's configured index,
 *      unpacked once into .gp/tensorflow/ and reused.
 * Options: --if-possible (a failure only warns, exit 0), --force (rebuild even if a working binding exists).
 * docs/backends.md describes the layout, the cache and the timings.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = join(ROOT, '.gp', 'tensorflow');
const PACKAGE = '@tensorflow/tfjs-node';
const PACKAGE_DIR = join(ROOT, 'node_modules', PACKAGE);
const CORE_DIR = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-core');
const PIP_REQUIREMENT = process.env.GP_TENSORFLOW_PIP || 'tensorflow-cpu==2.21.0';
/** Link-time names the binding's binding.gyp asks for (-ltensorflow -ltensorflow_framework) → the wheel's files. */
const WHEEL_LIBS = { 'libtensorflow.so': 'libtensorflow_cc.so.2', 'libtensorflow_framework.so': 'libtensorflow_framework.so.2' };
const USAGE = `usage: npm run setup:tensorflow [-- --libtensorflow DIR] [--if-possible] [--force]
  --libtensorflow DIR  use this TensorFlow C library (or env GP_LIBTENSORFLOW)
  --if-possible        on failure print a warning and exit 0 (gp then uses wasm)
  --force              rebuild the binding even if a working one is installed`;

/** A failure the user can act on: printed without a stack. */
class SetupError extends Error {}

const say = (line) => console.log(`setup:tensorflow: ${line}`);
const since = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

function main() {
  const started = Date.now();
  let args;
  try {
    args = parseArgs({ options: { 'if-possible': { type: 'boolean' }, force: { type: 'boolean' }, libtensorflow: { type: 'string' }, help: { type: 'boolean' } } }).values;
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`);
    process.exit(64);
  }
  if (args.help) return console.log(USAGE);
  try {
    say(`${setup(args)} (${since(started)})`);
  } catch (err) {
    const message = err instanceof SetupError ? err.message : err.stack;
    if (!args['if-possible']) {
      console.error(`setup:tensorflow: failed: ${message}`);
      process.exit(1);
    }
    console.warn(`setup:tensorflow: warning: ${message}\nsetup:tensorflow: continuing without the tensorflow backend; gp will use wasm`);
  }
}

/** Returns the closing summary line. */
function setup(args) {
  if (process.platform !== 'linux') {
    throw new SetupError(`this script builds on Linux only; on ${process.platform} \`npm install --no-save ${PACKAGE}\` fetches a prebuilt binding when online`);
  }
  const userDir = args.libtensorflow || process.env.GP_LIBTENSORFLOW;
  // With a TensorFlow named explicitly, a binding that works against some other one is not good enough.
  if (!args.force && !userDir) {
    const current = probe();
    if (current.ok) return `already working: ${PACKAGE} on libtensorflow ${current.tf}; nothing to do`;
    say(`no working binding yet (${current.error})`);
  }
  const version = packageVersion(CORE_DIR);
  if (!version) throw new SetupError('@tensorflow/tfjs-core is not installed: run `npm ci` first');
  ensurePackage(version);
  const tf = obtainTensorFlow(userDir);
  linkDeps(tf.deps);

  const binding = bindingPath();
  const cached = join(CACHE, tf.tag, 'binding', `tfjs-node-${version}`, relative(PACKAGE_DIR, binding));
  if (!args.force && existsSync(cached)) {
    mkdirSync(dirname(binding), { recursive: true });
    copyFileSync(cached, binding);
    const restored = probe();
    if (restored.ok) return `restored the cached binding: ${PACKAGE} ${version} on libtensorflow ${restored.tf}`;
    say(`the cached binding does not load (${restored.error}); rebuilding`);
  }
  build();
  const built = probe();
  if (!built.ok) throw new SetupError(`the binding was built but does not load: ${built.error}`);
  mkdirSync(dirname(cached), { recursive: true });
  copyFileSync(binding, cached);
  return `done: ${PACKAGE} ${version} on libtensorflow ${built.tf} (${tf.description})`;
}

// ------------------------------------------------------------------------------------------- tfjs-node package

/**
 * Installs tfjs-node into the project's own node_modules, where its @tensorflow/tfjs dedupes to gp's
 * @tensorflow/tfjs-core. --no-save keeps package.json and the lockfile as they are (npm ls lists it as extraneous,
 * which does not fail); --ignore-scripts skips the libtensorflow download that would fail offline and make npm drop it.
 */
function ensurePackage(version) {
  if (packageVersion(PACKAGE_DIR) === version) return;
  const t0 = Date.now();
  say(`installing ${PACKAGE}@${version} into node_modules (npm install --no-save --ignore-scripts)`);
  run('npm', ['install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund', `${PACKAGE}@${version}`], { cwd: ROOT });
  const union = resolvePackageDir('@tensorflow/tfjs', PACKAGE_DIR);
  const theirCore = union && resolvePackageDir('@tensorflow/tfjs-core', union);
  if (theirCore !== CORE_DIR) {
    throw new SetupError(`${PACKAGE} resolves @tensorflow/tfjs-core at ${theirCore}, not gp's ${CORE_DIR}; its backend would be invisible to gp`);
  }
  say(`installed in ${since(t0)}`);
}

function packageVersion(dir) {
  const manifest = join(dir, 'package.json');
  return existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).version : undefined;
}

function resolvePackageDir(name, fromDir) {
  try {
    return dirname(createRequire(join(fromDir, 'package.json')).resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

/** The path tfjs-node loads its addon from, as computed by the node-pre-gyp copy tfjs-node itself uses. */
function bindingPath() {
  const manifest = join(PACKAGE_DIR, 'package.json');
  return createRequire(manifest)('@mapbox/node-pre-gyp').find(manifest);
}

// ----------------------------------------------------------------------------------------------- TensorFlow

/**
 * Returns { deps, tag, description }: deps is a directory with lib/ and include/ laid out as tfjs-node's binding.gyp
 * expects (its rpath is $ORIGIN/../../deps/lib); tag names the cache folder for this TensorFlow's built binding.
 */
function obtainTensorFlow(userDir) {
  if (userDir) {
    if (!existsSync(userDir)) throw new SetupError(`--libtensorflow / GP_LIBTENSORFLOW: ${userDir} does not exist`);
    const dir = realpathSync(resolve(userDir));
    if (isArchiveLayout(dir)) return { deps: dir, tag: tagFor('custom', dir), description: `libtensorflow from ${dir}` };
    if (isPythonLayout(dir)) return stagePythonPackage(dir);
    throw new SetupError(
      `${dir} holds no TensorFlow C library: expected lib/libtensorflow.so and include/tensorflow/c/c_api.h ` +
        '(a libtensorflow archive) or libtensorflow_cc.so.2 and include/ (a TensorFlow Python package directory)',
    );
  }
  const installed = installedPythonTensorFlow();
  if (installed) return stagePythonPackage(installed);
  return stageWheel();
}

function isArchiveLayout(dir) {
  return existsSync(join(dir, 'lib', 'libtensorflow.so')) && existsSync(join(dir, 'include', 'tensorflow', 'c', 'c_api.h'));
}

function isPythonLayout(dir) {
  return Object.values(WHEEL_LIBS).every((lib) => existsSync(join(dir, lib))) && existsSync(join(dir, 'include', 'tensorflow', 'c', 'c_api.h'));
}

function tagFor(kind, dir) {
  return `${kind}-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`;
}

/** The directory of a `tensorflow` Python package importable by python3 with the C libraries in it, if any. */
function installedPythonTensorFlow() {
  const python = findPython(false);
  if (!python) return undefined;
  const code = "import importlib.util as u; s = u.find_spec('tensorflow'); print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')";
  const r = spawnSync(python, ['-c', code], { encoding: 'utf8' });
  const dir = r.status === 0 ? r.stdout.trim() : '';
  return dir && isPythonLayout(dir) ? realpathSync(dir) : undefined;
}

/** Links a Python package's libraries under the names the build wants, without copying its ≈850 MB. */
function stagePythonPackage(dir) {
  const tag = tagFor('python', dir);
  const deps = join(CACHE, tag, 'deps');
  rmSync(deps, { recursive: true, force: true });
  mkdirSync(join(deps, 'lib'), { recursive: true });
  for (const file of Object.values(WHEEL_LIBS)) symlinkSync(join(dir, file), join(deps, 'lib', file));
  linkLinkTimeNames(join(deps, 'lib'));
  symlinkSync(join(dir, 'include'), join(deps, 'include'));
  say(`using the TensorFlow Python package at ${dir}`);
  return { deps, tag, description: `TensorFlow Python package at ${dir}` };
}

function linkLinkTimeNames(libDir) {
  for (const [linkName, file] of Object.entries(WHEEL_LIBS)) symlinkSync(file, join(libDir, linkName));
}

/** Downloads the wheel with pip once, keeping only the two libraries and the headers the binding includes. */
function stageWheel() {
  const tag = `wheel-${PIP_REQUIREMENT.replace(/[^\w.-]+/g, '_')}`;
  const deps = join(CACHE, tag, 'deps');
  const complete = join(deps, '.complete');
  if (existsSync(complete)) {
    say(`using the cached ${PIP_REQUIREMENT} libraries in ${relative(ROOT, deps)}`);
    return { deps, tag, description: `${PIP_REQUIREMENT} wheel, cached` };
  }
  const python = findPython(true);
  const downloads = join(CACHE, tag, 'download');
  rmSync(downloads, { recursive: true, force: true });
  let t0 = Date.now();
  say(`downloading ${PIP_REQUIREMENT} with pip from its configured index`);
  run(python, ['-m', 'pip', 'download', PIP_REQUIREMENT, '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-d', downloads]);
  const wheels = readdirSync(downloads).filter((f) => f.endsWith('.whl'));
  if (wheels.length !== 1) throw new SetupError(`pip download left ${wheels.length} wheels in ${downloads}, expected one`);
  say(`downloaded ${wheels[0]} in ${since(t0)}`);

  t0 = Date.now();
  rmSync(deps, { recursive: true, force: true });
  run(python, ['-c', UNPACK_WHEEL, join(downloads, wheels[0]), deps, ...bindingIncludes()]);
  linkLinkTimeNames(join(deps, 'lib'));
  writeFileSync(complete, `${wheels[0]}\n`);
  rmSync(downloads, { recursive: true, force: true });
  say(`unpacked the libraries and headers into ${relative(ROOT, deps)} in ${since(t0)}`);
  return { deps, tag, description: `${PIP_REQUIREMENT} wheel` };
}

/** The TensorFlow headers tfjs-node's sources include; the unpacker follows their own includes from there. */
function bindingIncludes() {
  const sources = join(PACKAGE_DIR, 'binding');
  const includes = new Set();
  for (const file of readdirSync(sources)) {
    for (const m of readFileSync(join(sources, file), 'utf8').matchAll(/#include\s+"(tensorflow\/[^"]+)"/g)) includes.add(m[1]);
  }
  return [...includes];
}

/** argv: wheel, destination, header seeds. Python's zipfile, since pip already implies Python and Node has no unzip. */
const UNPACK_WHEEL = String.raw`
import os, re, shutil, sys, zipfile
wheel, dest, todo = sys.argv[1], sys.argv[2], sys.argv[3:]
libs = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2']
prefix = 'tensorflow/include/'
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    missing = [lib for lib in libs if 'tensorflow/' + lib not in names]
    if missing:
        sys.exit('the wheel lacks ' + ', '.join(missing))
    os.makedirs(os.path.join(dest, 'lib'))
    for lib in libs:
        with z.open('tensorflow/' + lib) as src, open(os.path.join(dest, 'lib', lib), 'wb') as out:
            shutil.copyfileobj(src, out, 1 << 22)
    seen = set()
    while todo:
        header = todo.pop()
        if header in seen or prefix + header not in names:
            continue
        seen.add(header)
        text = z.read(prefix + header)
        todo += re.findall(r'#\s*include\s+"([^"]+)"', text.decode('utf-8', 'replace'))
        path = os.path.join(dest, 'include', header)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as out:
            out.write(text)
    if 'tensorflow/c/c_api.h' not in seen:
        sys.exit('the wheel has no tensorflow/c/c_api.h')
`;

function findPython(needPip) {
  for (const python of ['python3', 'python']) {
    const r = spawnSync(python, needPip ? ['-m', 'pip', '--version'] : ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return python;
  }
  if (!needPip) return undefined;
  throw new SetupError(
    'pip was not found (tried python3 -m pip and python -m pip): install Python 3 with pip, ' +
      'or pass --libtensorflow DIR pointing at a TensorFlow C library',
  );
}

// --------------------------------------------------------------------------------------------------- building

function linkDeps(deps) {
  const link = join(PACKAGE_DIR, 'deps');
  rmSync(link, { recursive: true, force: true });
  symlinkSync(deps, link);
}

function build() {
  const t0 = Date.now();
  const nodedir = process.env.npm_config_nodedir || nodeHeadersDir();
  say(`building the binding from source with node-pre-gyp (Node headers: ${nodedir})`);
  const preGyp = createRequire(join(PACKAGE_DIR, 'package.json')).resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp');
  run(process.execPath, [preGyp, 'install', '--build-from-source'], {
    cwd: PACKAGE_DIR,
    env: { ...process.env, npm_config_nodedir: nodedir },
    hint: 'building needs python3, make and a C++ compiler',
  });
  say(`built in ${since(t0)}`);
}

/** Headers from the Node installation itself or node-gyp's cache; node-gyp would otherwise fetch them from nodejs.org. */
function nodeHeadersDir() {
  const candidates = [dirname(dirname(process.execPath)), join(homedir(), '.cache', 'node-gyp', process.versions.node)];
  const found = candidates.find((dir) => existsSync(join(dir, 'include', 'node', 'node_api.h')));
  if (!found) {
    throw new SetupError(
      `no Node ${process.version} headers found (looked in ${candidates.join(', ')}): set npm_config_nodedir to a ` +
        'Node source or headers directory, or run `npx node-gyp install` where nodejs.org is reachable',
    );
  }
  return found;
}

/**
 * Loads tfjs-node in a child process the way gp will: its backend must appear on gp's own tfjs-core and multiply
 * correctly. Returns { ok, tf } with the libtensorflow version, or { ok: false, error }.
 */
function probe() {
  const script = `
    const core = require(${JSON.stringify(CORE_DIR)});
    require(${JSON.stringify(PACKAGE_DIR)});
    if (core.getBackend() !== 'tensorflow') throw new Error('the tensorflow backend is not on gp\\'s @tensorflow/tfjs-core');
    const y = core.matMul(core.tensor2d([[1, 2], [3, 4]]), core.tensor2d([[5], [6]])).dataSync();
    if (y[0] !== 17 || y[1] !== 39) throw new Error('matMul gave ' + Array.from(y));
    process.stdout.write(core.backend().binding.TF_Version);`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
  if (r.status === 0) return { ok: true, tf: r.stdout.trim() };
  const error = (r.stderr ?? '').split('\n').find((l) => /^\w*Error\b/.test(l));
  return { ok: false, error: error ?? `exit ${r.status ?? r.signal}` };
}

/** Runs a command with output captured; on failure shows its error lines (pip, gyp, compiler), else its tail. */
function run(command, argv, { cwd = ROOT, env = process.env, hint } = {}) {
  const r = spawnSync(command, argv, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status === 0) return r.stdout;
  const lines = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n');
  const errors = lines.filter((l) => /^\s*error\b|\berror:|ERR!/i.test(l));
  const output = (errors.length > 0 ? errors : lines).slice(-15).join('\n');
  const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
  const shown = [command, ...argv.slice(0, 4).map((a) => (a.includes('\n') ? '<script>' : a))].join(' ');
  throw new SetupError(`\`${shown} …\` failed (${why})${hint ? `; ${hint}` : ''}:\n${output}`);
}

main();
