/**
 * Writes the config's JSON Schema (generated from src/config/schema.ts) for editor validation:
 *
 *   npm run schema          (= tsx scripts/config-schema.ts)
 *
 * Run it after changing the zod schema; test/config-schema.test.ts fails while the committed file is stale.
 */
import { fileURLToPath } from 'node:url';
import { CONFIG_SCHEMA_FILE, renderConfigJsonSchema } from '../src/config/json-schema.js';
import { writeFileAtomic } from '../src/io.js';

const target = fileURLToPath(new URL(`../${CONFIG_SCHEMA_FILE}`, import.meta.url));
writeFileAtomic(target, renderConfigJsonSchema());
console.log(`wrote ${CONFIG_SCHEMA_FILE}`);
