/**
 * Errors a user can act on. The CLI prints `message` alone (no stack) and exits with `exitCode`;
 * anything that is not a GpError is a bug and keeps its stack.
 */
export class GpError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'GpError';
  }
}

/** Bad input data: always names the file and line. */
export class DataError extends GpError {
  constructor(readonly file: string, readonly line: number, problem: string) {
    super(`${file}:${line}: ${problem}`, 65);
    this.name = 'DataError';
  }
}

/** A bad config value: names the key path (e.g. `training.lr`). */
export class ConfigError extends GpError {
  constructor(readonly where: string, problem: string) {
    super(`${where}: ${problem}`, 78);
    this.name = 'ConfigError';
  }
}
