/**
 * The config's JSON Schema, derived from the zod schema so the two cannot disagree. Editors (yaml-language-server)
 * use it to validate and complete configs; `npm run schema` writes it to configs/gp-config.schema.json.
 */
import { z } from 'zod';
import { ConfigSchema } from './schema.js';

export const CONFIG_SCHEMA_FILE = 'configs/gp-config.schema.json';

/**
 * Input mode: keys with a default are optional, which is what a user writes. Strict zod objects become
 * `additionalProperties: false`, so editors flag unknown keys as gp itself does.
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12' }),
    title: 'gp config',
    description: 'A gp training config (see configs/ for examples); every key but data.train has a default.',
  };
}

/** The file's exact content, newline-terminated, so a regenerated file diffs cleanly. */
export function renderConfigJsonSchema(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + '\n';
}
