// Runs every *.test.mjs here against one seeded server and browser:
//   node --test-reporter=spec run.mjs [name-filter]
import { before, after } from 'node:test';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setup, teardown } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv[2] || process.env.KILN_UI_ONLY || '';
process.env.KILN_UI_ONLY = only; // seed.py seeds only what the chosen tests need
before(setup, { timeout: 900_000 });
after(teardown);
for (const f of readdirSync(here).filter((f) => f.endsWith('.test.mjs') && f.includes(only)).sort()) {
  await import(join(here, f));
}
