// Taquito's RemoteSigner against a running signatory, as a wallet or a dApp backend uses
// it: it fetches the public key, checks that it hashes to the key hash, posts operations
// forged by Taquito's LocalForger (magic byte 0x03), and verifies every signature itself;
// each signature is checked once more with @taquito/utils' verifySignature.
//
//   SIGNATORY_BIN=/path/to/signatory node --test     (default: ../../../target/debug/signatory)
//
// The keys are the published Taquito and tezt test keys of testdata/public-vectors.json:
// they must never hold funds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { RemoteSigner } from '@taquito/remote-signer';
import { LocalForger } from '@taquito/local-forging';
import { verifySignature } from '@taquito/utils';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.SIGNATORY_BIN ?? path.resolve(here, '../../../target/debug/signatory');
const vectors = JSON.parse(readFileSync(path.resolve(here, '../../../testdata/public-vectors.json'), 'utf8'));

const byCurve = (curve) => vectors.keys.find((k) => k.curve === curve && k.source === 'taquito-signer tests');
const KEYS = [
  { name: 'tz1', prefix: 'edsig', ...byCurve('ed25519') },
  { name: 'tz2', prefix: 'spsig1', ...byCurve('secp256k1') },
  { name: 'tz3', prefix: 'p2sig', ...byCurve('p256') },
];
// A key whose policy allows transactions only (for the refusal mapping).
const RESTRICTED = vectors.keys.find((k) => k.source === 'octez tezt bootstrap1');
const UNKNOWN_PKH = 'tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q';

const GENERIC = new Uint8Array([0x03]);
const ATTESTATION = new Uint8Array([0x13]);
const BRANCH = 'BLzyjjHKEKMULtvkpSHxuZxx6ei6fpntH2BTkYZiLgs8zLVstvX';
const KT1 = 'KT1JHqHQdHSgWBKo6H4UfG8dw3JnZSyjGkHA';
const forger = new LocalForger();

let dir;
let server;
let url;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(child, logPath) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`signatory exited (${child.exitCode}):\n${readFileSync(logPath, 'utf8')}`);
    }
    try {
      const r = await fetch(`${url}/authorized_keys`);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`signatory did not answer within 60 s:\n${readFileSync(logPath, 'utf8')}`);
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'signatory-taquito-'));
  const secretPath = path.join(dir, 'secret.json');
  const secrets = [...KEYS, RESTRICTED].map((k, i) => ({ name: `key${i}`, value: `unencrypted:${k.secret_key}` }));
  writeFileSync(secretPath, JSON.stringify(secrets), { mode: 0o600 });
  const [api, utility] = [await freePort(), await freePort()];
  url = `http://127.0.0.1:${api}`;
  const generic = ['transaction', 'reveal', 'delegation', 'origination'];
  const config = [
    `base_dir: ${JSON.stringify(path.join(dir, 'base'))}`,
    'server:',
    `  address: "127.0.0.1:${api}"`,
    `  utility_address: "127.0.0.1:${utility}"`,
    'vaults:',
    '  local:',
    '    driver: file',
    '    config:',
    `      file: ${JSON.stringify(secretPath)}`,
    'watermark:',
    '  driver: file',
    'tezos:',
    ...KEYS.flatMap((k) => [
      `  ${k.pkh}:`,
      '    allow:',
      '      attestation:',
      '      generic:',
      ...generic.map((g) => `        - ${g}`),
    ]),
    `  ${RESTRICTED.pkh}:`,
    '    allow:',
    '      generic:',
    '        - transaction',
    '',
  ].join('\n');
  const configPath = path.join(dir, 'signatory.yaml');
  writeFileSync(configPath, config, { mode: 0o600 });
  mkdirSync(path.join(dir, 'base'));
  execFileSync(BIN, ['watermark', 'init', '-c', configPath], { stdio: 'pipe' });
  const logPath = path.join(dir, 'signer.log');
  const log = openSync(logPath, 'a');
  server = spawn(BIN, ['serve', '-c', configPath], { stdio: ['ignore', log, log] });
  await waitReady(server, logPath);
});

after(() => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const manager = (source, counter) => ({
  source,
  fee: '1420',
  counter: String(counter),
  gas_limit: '10600',
  storage_limit: '300',
});

// The operations each key signs, forged by Taquito.
const operations = (k) => [
  { name: 'reveal', contents: [{ kind: 'reveal', ...manager(k.pkh, 1), public_key: k.public_key }] },
  {
    name: 'transaction',
    contents: [{ kind: 'transaction', ...manager(k.pkh, 2), amount: '1000000', destination: RESTRICTED.pkh }],
  },
  {
    name: 'transaction with parameters',
    contents: [
      {
        kind: 'transaction',
        ...manager(k.pkh, 3),
        amount: '0',
        destination: KT1,
        parameters: { entrypoint: 'mint', value: { prim: 'Pair', args: [{ int: '7' }, { string: 'taquito' }] } },
      },
    ],
  },
  { name: 'delegation', contents: [{ kind: 'delegation', ...manager(k.pkh, 4), delegate: k.pkh }] },
  {
    name: 'reveal + transaction batch',
    contents: [
      { kind: 'reveal', ...manager(k.pkh, 5), public_key: k.public_key },
      { kind: 'transaction', ...manager(k.pkh, 6), amount: '1', destination: k.pkh },
    ],
  },
  {
    name: 'origination',
    contents: [
      {
        kind: 'origination',
        ...manager(k.pkh, 7),
        balance: '0',
        script: {
          code: [
            { prim: 'parameter', args: [{ prim: 'unit' }] },
            { prim: 'storage', args: [{ prim: 'unit' }] },
            { prim: 'code', args: [[{ prim: 'CDR' }, { prim: 'NIL', args: [{ prim: 'operation' }] }, { prim: 'PAIR' }]] },
          ],
          storage: { prim: 'Unit' },
        },
      },
    ],
  },
];

for (const k of KEYS) {
  test(`${k.name}: RemoteSigner fetches the public key and its hash`, async () => {
    const signer = new RemoteSigner(k.pkh, url);
    assert.equal(await signer.publicKeyHash(), k.pkh);
    assert.equal(await signer.publicKey(), k.public_key);
  });

  for (const op of operations(k)) {
    test(`${k.name}: RemoteSigner signs a forged ${op.name}`, async () => {
      const signer = new RemoteSigner(k.pkh, url);
      const bytes = await forger.forge({ branch: BRANCH, contents: op.contents });
      // RemoteSigner verifies the signature against the fetched key before returning.
      const signed = await signer.sign(bytes, GENERIC);
      assert.ok(signed.prefixSig.startsWith(k.prefix), signed.prefixSig);
      assert.ok(signed.sig.startsWith('sig'), signed.sig);
      assert.equal(signed.bytes, bytes);
      assert.equal(verifySignature(bytes, k.public_key, signed.prefixSig, GENERIC), true);
      assert.equal(verifySignature('03' + bytes, k.public_key, signed.prefixSig), true);
      // And not over other bytes.
      assert.equal(verifySignature(bytes + '00', k.public_key, signed.prefixSig, GENERIC), false);
    });
  }

  test(`${k.name}: an attestation signs once; a conflicting one is refused with 409`, async () => {
    const signer = new RemoteSigner(k.pkh, url);
    const chain = '7a06a770';
    const att = (payload) =>
      chain + 'aa'.repeat(32) + '15' + '0007' + '00000064' + '00000000' + payload.repeat(32);
    const first = await signer.sign(att('01'), ATTESTATION);
    assert.equal(verifySignature(att('01'), k.public_key, first.prefixSig, ATTESTATION), true);
    const again = await signer.sign(att('01'), ATTESTATION);
    assert.equal(again.prefixSig, first.prefixSig);
    await assert.rejects(signer.sign(att('02'), ATTESTATION), (e) => e.status === 409);
  });
}

test('unknown key: PublicKeyNotFoundError (404)', async () => {
  const signer = new RemoteSigner(UNKNOWN_PKH, url);
  await assert.rejects(signer.publicKey(), { name: 'PublicKeyNotFoundError' });
});

test('policy refusal: OperationNotAuthorized (403)', async () => {
  const signer = new RemoteSigner(RESTRICTED.pkh, url);
  const bytes = await forger.forge({
    branch: BRANCH,
    contents: [{ kind: 'delegation', ...manager(RESTRICTED.pkh, 1), delegate: RESTRICTED.pkh }],
  });
  await assert.rejects(signer.sign(bytes, GENERIC), (e) => e.name === 'OperationNotAuthorized' && e.cause?.status === 403);
  // The same key signs what its policy allows.
  const ok = await forger.forge({
    branch: BRANCH,
    contents: [{ kind: 'transaction', ...manager(RESTRICTED.pkh, 2), amount: '5', destination: KEYS[0].pkh }],
  });
  const signed = await signer.sign(ok, GENERIC);
  assert.equal(verifySignature(ok, RESTRICTED.public_key, signed.prefixSig, GENERIC), true);
});

test('undecodable bytes: BadSigningData (400)', async () => {
  const signer = new RemoteSigner(KEYS[0].pkh, url);
  await assert.rejects(signer.sign('00ff', GENERIC), (e) => e.name === 'BadSigningData' && e.cause?.status === 400);
});
