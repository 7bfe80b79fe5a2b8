// Round trip against an independent forger: every operation Taquito's LocalForger forges,
// prefixed with the generic magic byte 0x03, must come back from `signatory decode` with the
// same kinds and fields.
//
//   SIGNATORY_BIN=/path/to/signatory node --test     (default: ../../../target/debug/signatory)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { cases, forgeCase } from './operations.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.SIGNATORY_BIN ?? path.resolve(here, '../../../target/debug/signatory');

function decode(hex) {
  return JSON.parse(execFileSync(BIN, ['decode', '--compact', hex], { encoding: 'utf8' }));
}

/** Compares the expected fields; `null` means absent or null. */
function assertFields(actual, expected, where) {
  for (const [key, want] of Object.entries(expected)) {
    assert.deepStrictEqual(actual[key] ?? null, want, `${where}: field ${key}`);
  }
}

for (const c of cases) {
  test(`taquito forges, signatory decodes: ${c.name}`, async () => {
    const forged = await forgeCase(c);
    const decoded = decode(forged.hex);
    assert.equal(decoded.kind, 'generic');
    assert.equal(decoded.branch, forged.branch);
    assert.deepStrictEqual(decoded.operation_kinds, forged.operation_kinds);
    assert.deepStrictEqual(decoded.policy_kinds, forged.policy_kinds);
    assert.equal(decoded.contents.length, forged.contents.length);
    forged.contents.forEach((want, i) => assertFields(decoded.contents[i], want, `${c.name}[${i}]`));
  });
}

test('every kind Taquito forges is covered', async () => {
  const { kindMapping } = await import('@taquito/local-forging/dist/lib/constants.js');
  const forgeable = new Set(Object.values(kindMapping));
  const covered = new Set(cases.flatMap((c) => c.contents.map((x) => x.kind)));
  assert.deepStrictEqual([...forgeable].filter((k) => !covered.has(k)), []);
});

test('one byte cut from a forged operation is refused with an offset', async () => {
  const forged = await forgeCase(cases.find((c) => c.name === 'transaction to a contract, custom entrypoint'));
  const cut = forged.hex.slice(0, -2);
  const r = spawnSync(BIN, ['decode', cut], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /at offset \d+/);
});
