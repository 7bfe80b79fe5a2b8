// Writes the Taquito-forged fixtures that `cargo test -p tezos-encoding` checks without
// node: crates/tezos-encoding/tests/fixtures/taquito_forged.json.
//
//   npm ci && node gen-fixtures.mjs
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createRequire } from 'node:module';
import { cases, forgeCase, forger } from './operations.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, '../../../crates/tezos-encoding/tests/fixtures/taquito_forged.json');
const version = createRequire(import.meta.url)('@taquito/local-forging/package.json').version;

const forged = [];
for (const c of cases) forged.push(await forgeCase(c));

mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify(
    {
      about:
        'Generic operations forged by @taquito/local-forging (an independent forger) and the fields ' +
        'decoding must return; null means absent. Regenerate with tests/interop/forging/gen-fixtures.mjs.',
      forger: `@taquito/local-forging ${version}`,
      protocol: forger.protocolHash,
      cases: forged,
    },
    null,
    1
  ) + '\n'
);
console.log(`wrote ${forged.length} cases to ${out}`);
