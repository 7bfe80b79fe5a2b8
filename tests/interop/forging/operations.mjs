// One operation of every kind Taquito's local forger can forge, and what `signatory
// decode` must report for each: the kind and main fields exactly as they were forged.
import { LocalForger, getCodec, CODEC } from '@taquito/local-forging';

export const forger = new LocalForger();

const BRANCH = 'BLzyjjHKEKMULtvkpSHxuZxx6ei6fpntH2BTkYZiLgs8zLVstvX';
const TZ1 = 'tz1QZ6KY7d3BuZDT1d19dUxoQrtFPN2QJ3hn';
const TZ2 = 'tz2WH1zahKo2KiS1gcHBhNFTURPfW1Vk7qpE';
const TZ3 = 'tz3WXYtyDUNL91qfiCJtVUX746QpNv5i5ve5';
const TZ4 = 'tz4EmMVfqF7NxZsJaofqPDR9xdmXSDWcKAM7';
const KT1 = 'KT1JHqHQdHSgWBKo6H4UfG8dw3JnZSyjGkHA';
const KT1_TICKETER = 'KT1EAMUQC1yJ2sRPNPpLHVMGCzroYGe1C1ea';
const PROTO = 'PsCARTHAGazKbHtnKfLzQg3kms52kSRpgnDY982a9oYsSXRLQEb';
const BLPK = 'BLpk1yKS9X6vrUiAZiZYfnjiDPkEf215W6rMX6c9gZ7FSFkkH63ZjAuU7VKvZfiBWaoCWtwWY8dQ';
const BLSIG =
  'BLsigASWx9GkMxUpQMGvCrHrhkcsTZ5V9pmDrXSHvkiurrX6Bf5RQcMPbDMDgqWj4GokRekK42FyG76ccMUyFYWcJEmnCd8s6Kek9gtUGkXjPkLEhu8dbFFn5LWyQ4FoMCK3QrxXn6M6LD';

const manager = (source, counter) => ({
  source,
  fee: '1420',
  counter: String(counter),
  gas_limit: '10600',
  storage_limit: '300',
});

const unit = { prim: 'Unit' };

// Each case: a name and the operation as Taquito takes it.
export const cases = [
  {
    name: 'reveal ed25519',
    contents: [
      {
        kind: 'reveal',
        ...manager('tz1WRxrFJDYNJYMJiqLAeS2QCg9SwXJt4QYD', 1),
        public_key: 'edpkuh8bYRPTrSCUUKmPSGg9WtVQiqHpEE4buEk7jynbenvQdaHTTD',
      },
    ],
  },
  {
    name: 'reveal secp256k1',
    contents: [
      {
        kind: 'reveal',
        ...manager('tz2JKWBpoLTR7Yxe3Vgpqpk9Ch8HSBeYBEdF', 2),
        public_key: 'sppk7ccMwYw4ZoJL3QUFnt4GfWYn9R15fwNHP47AyivsLurGtEkDHKw',
      },
    ],
  },
  {
    name: 'reveal p256',
    contents: [
      {
        kind: 'reveal',
        ...manager('tz3YchCjUWXRvZKnU6xZoFeJeEkWQTrhvVYi', 3),
        public_key: 'p2pk678THitX2ewSXAA4KPJVFAMbfQZkp8XyjEh1RN4ynXbA9sbf1i9',
      },
    ],
  },
  {
    name: 'reveal bls with proof of possession',
    contents: [
      {
        kind: 'reveal',
        ...manager('tz4EuLnUzNkUv14qok6BczV8DTcjwa2BgEMf', 4),
        public_key:
          'BLpk1xqBc7HwrFwF7vSs8jaBy1cvx8AaL3DU1CLZiPhbimf6u8Si65LQvJu37b4J4mKTgrDf5qbc',
        proof:
          'BLsig9m7E7NBVMa29m3pKqcXZ1yq8usLr7PiaQeMvQnxxj4uCQ3u1ZXLoubmAvD9CPc7iXutSPPXG43nyfua8NxvqQSk8z3kRLq7QX14ZApkvk8Vp3TNtJPbYh4F1nxPVk1ra7XGNr6ZTB',
      },
    ],
  },
  {
    name: 'transaction without parameters',
    contents: [
      { kind: 'transaction', ...manager(TZ1, 5), amount: '1000000', destination: TZ2 },
    ],
  },
  {
    name: 'transaction to a contract, custom entrypoint',
    contents: [
      {
        kind: 'transaction',
        ...manager(TZ1, 6),
        amount: '0',
        destination: KT1,
        parameters: {
          entrypoint: 'mint_tokens',
          value: { prim: 'Pair', args: [{ int: '42' }, { string: 'hello' }] },
        },
      },
    ],
  },
  {
    name: 'transaction to a contract, named built-in entrypoint do',
    contents: [
      {
        kind: 'transaction',
        ...manager(TZ2, 7),
        amount: '12',
        destination: KT1,
        parameters: { entrypoint: 'do', value: { bytes: '0a0b0c' } },
      },
    ],
  },
  {
    name: 'transaction with huge amount',
    contents: [
      {
        kind: 'transaction',
        ...manager(TZ3, 8),
        amount: '9223372036854775807',
        destination: TZ4,
      },
    ],
  },
  {
    name: 'stake to self',
    contents: [
      {
        kind: 'transaction',
        ...manager(TZ1, 9),
        amount: '1000000000',
        destination: TZ1,
        parameters: { entrypoint: 'stake', value: unit },
      },
    ],
  },
  {
    name: 'unstake to self',
    contents: [
      {
        kind: 'transaction',
        ...manager(TZ1, 10),
        amount: '5000',
        destination: TZ1,
        parameters: { entrypoint: 'unstake', value: unit },
      },
    ],
  },
  {
    name: 'finalize_unstake to self',
    contents: [
      {
        kind: 'transaction',
        ...manager(TZ1, 11),
        amount: '0',
        destination: TZ1,
        parameters: { entrypoint: 'finalize_unstake', value: unit },
      },
    ],
  },
  {
    name: 'set_delegate_parameters to self',
    contents: [
      {
        kind: 'transaction',
        ...manager(TZ1, 12),
        amount: '0',
        destination: TZ1,
        parameters: {
          entrypoint: 'set_delegate_parameters',
          value: {
            prim: 'Pair',
            args: [{ int: '5000000' }, { prim: 'Pair', args: [{ int: '1000000000' }, unit] }],
          },
        },
      },
    ],
  },
  {
    name: 'stake entrypoint to another account is a plain transaction',
    contents: [
      {
        kind: 'transaction',
        ...manager(TZ1, 13),
        amount: '1',
        destination: TZ2,
        parameters: { entrypoint: 'stake', value: unit },
      },
    ],
  },
  {
    name: 'origination with delegate',
    contents: [
      {
        kind: 'origination',
        ...manager(TZ1, 14),
        balance: '500',
        delegate: TZ3,
        script: {
          code: [
            { prim: 'parameter', args: [{ prim: 'unit' }] },
            { prim: 'storage', args: [{ prim: 'unit' }] },
            {
              prim: 'code',
              args: [[{ prim: 'CDR' }, { prim: 'NIL', args: [{ prim: 'operation' }] }, { prim: 'PAIR' }]],
            },
          ],
          storage: unit,
        },
      },
    ],
  },
  {
    name: 'delegation',
    contents: [{ kind: 'delegation', ...manager(TZ1, 15), delegate: TZ4 }],
  },
  {
    name: 'delegation withdrawal',
    contents: [{ kind: 'delegation', ...manager(TZ1, 16) }],
  },
  {
    name: 'ballot',
    contents: [{ kind: 'ballot', source: TZ1, period: -300, ballot: 'nay', proposal: PROTO }],
  },
  {
    name: 'proposals',
    contents: [{ kind: 'proposals', source: TZ2, period: 25550, proposals: [PROTO, PROTO] }],
  },
  {
    name: 'seed nonce revelation',
    contents: [{ kind: 'seed_nonce_revelation', level: 25550, nonce: 'ab'.repeat(32) }],
  },
  {
    name: 'activate account',
    contents: [
      {
        kind: 'activate_account',
        pkh: 'tz1ddb9NMYHZi5UzPdzTZMYQQZoMub195zgv',
        secret: '41f98b15efc63fa893d61d7d6eee4a2ce9427ac4',
      },
    ],
  },
  {
    name: 'drain delegate',
    contents: [
      {
        kind: 'drain_delegate',
        consensus_key: 'tz1MY8g5UqVmQtpAp7qs1cUwEof1GjZCHgVv',
        delegate: TZ2,
        destination: 'tz1KvJCU5cNdz5RAS3diEtdRvS9wfhRC7Cwj',
      },
    ],
  },
  {
    name: 'update consensus key',
    contents: [
      {
        kind: 'update_consensus_key',
        ...manager(TZ1, 17),
        pk: 'edpkuXKmpnwWUTVo55d3N7fR9Hr8JgYKPnwDfLkS9wnyfEJpYRaCSi',
      },
    ],
  },
  {
    name: 'update consensus key to bls with proof',
    contents: [{ kind: 'update_consensus_key', ...manager(TZ1, 18), pk: BLPK, proof: BLSIG }],
  },
  {
    name: 'update companion key with proof',
    contents: [{ kind: 'update_companion_key', ...manager(TZ1, 19), pk: BLPK, proof: BLSIG }],
  },
  {
    name: 'increase paid storage',
    contents: [
      { kind: 'increase_paid_storage', ...manager(TZ2, 20), amount: '2', destination: KT1 },
    ],
  },
  {
    name: 'register global constant',
    contents: [
      {
        kind: 'register_global_constant',
        ...manager(TZ1, 21),
        value: { prim: 'Pair', args: [{ int: '999' }, { int: '-999' }] },
      },
    ],
  },
  {
    name: 'transfer ticket',
    contents: [
      {
        kind: 'transfer_ticket',
        ...manager(TZ1, 22),
        ticket_contents: { prim: 'Pair', args: [{ string: KT1_TICKETER }, { int: '0' }, { int: '1' }] },
        ticket_ty: { prim: 'nat' },
        ticket_ticketer: KT1_TICKETER,
        ticket_amount: '2',
        destination: KT1,
        entrypoint: 'default',
      },
    ],
  },
  {
    name: 'set deposits limit',
    contents: [{ kind: 'set_deposits_limit', ...manager(TZ1, 23), limit: '1000000' }],
  },
  {
    name: 'unset deposits limit',
    contents: [{ kind: 'set_deposits_limit', ...manager(TZ1, 24) }],
  },
  {
    name: 'smart rollup originate with whitelist',
    contents: [
      {
        kind: 'smart_rollup_originate',
        ...manager(TZ1, 25),
        pvm_kind: 'wasm_2_0_0',
        kernel: '0061736d0100000001280760037f7f7f',
        parameters_ty: { prim: 'bytes' },
        whitelist: [TZ1, TZ2],
      },
    ],
  },
  {
    name: 'smart rollup originate arith',
    contents: [
      {
        kind: 'smart_rollup_originate',
        ...manager(TZ3, 26),
        pvm_kind: 'arith',
        kernel: '',
        parameters_ty: { prim: 'unit' },
      },
    ],
  },
  {
    name: 'smart rollup add messages',
    contents: [
      {
        kind: 'smart_rollup_add_messages',
        ...manager(TZ1, 27),
        message: ['0000000062010000000b48656c6c6f20776f726c64', '01'],
      },
    ],
  },
  {
    name: 'smart rollup execute outbox message',
    contents: [
      {
        kind: 'smart_rollup_execute_outbox_message',
        ...manager(TZ1, 28),
        rollup: 'sr1J4MBaQqTGNwUqfcUusy3xUmH6HbMK7kYy',
        cemented_commitment: 'src13aUmJ5fEVJJM1qH1n9spuppXVAWc8wmHpTaC81pz5rrZN5e628',
        output_proof: '030002268259c7843df9a14e2cd5b4d187d3d603a535c64f0cc3ce3c',
      },
    ],
  },
  {
    name: 'dal publish commitment',
    contents: [
      {
        kind: 'dal_publish_commitment',
        ...manager('tz1Mp9zrMAJ3jckh3juLXGobfDv6oyUycfSy', 29),
        slot_header: {
          slot_index: 10,
          commitment: 'sh1vHbHrPSt7eWqYJmM9EUk5scjbvR5PKBckJxmmDJzYHHBkca8Lz4hxXX6zpW5wbhJhswJd4v',
          commitment_proof:
            '90c6576ad09e11b14eb464cdd214fe061ba8e8e5a3175e29fe7ff40526f90c2f2f4e02fe9fe03f7adb0fe286d7828b970eb1979f0f65ca3637a51d5456b442377d20397eb1b02544c2e435d79e156881443179fe16b32ad9e9501622a647c2ce',
        },
      },
    ],
  },
  {
    name: 'failing noop',
    contents: [{ kind: 'failing_noop', arbitrary: '48656c6c6f20576f726c64' }],
  },
  {
    name: 'attestation inside a generic operation',
    contents: [
      {
        kind: 'attestation',
        slot: 7,
        level: 66299,
        round: 5,
        block_payload_hash: 'vh3FEkypvxUYLwjGYd2Sme7aWyfX8npDsqxcL6imVpBWnAZeNn2n',
      },
    ],
  },
  {
    name: 'attestation with dal inside a generic operation',
    contents: [
      {
        kind: 'attestation_with_dal',
        slot: 0,
        level: 66299,
        round: 5,
        block_payload_hash: 'vh3FEkypvxUYLwjGYd2Sme7aWyfX8npDsqxcL6imVpBWnAZeNn2n',
        // Below 64 on purpose: Octez encodes DAL bitsets as Zarith z (signed), Taquito
        // 24.2.0 as Zarith n; the two agree only for 0..63.
        dal_attestation: '42',
      },
    ],
  },
  {
    name: 'batch: reveal, transaction, delegation',
    contents: [
      {
        kind: 'reveal',
        ...manager('tz1WRxrFJDYNJYMJiqLAeS2QCg9SwXJt4QYD', 30),
        public_key: 'edpkuh8bYRPTrSCUUKmPSGg9WtVQiqHpEE4buEk7jynbenvQdaHTTD',
      },
      {
        kind: 'transaction',
        ...manager('tz1WRxrFJDYNJYMJiqLAeS2QCg9SwXJt4QYD', 31),
        amount: '1',
        destination: KT1,
        parameters: { entrypoint: 'root', value: unit },
      },
      { kind: 'delegation', ...manager('tz1WRxrFJDYNJYMJiqLAeS2QCg9SwXJt4QYD', 32), delegate: TZ1 },
    ],
  },
].map((c) => ({ ...c, branch: BRANCH }));

/** Binary Micheline of a value, without its 4-byte length prefix. */
export function micheline(value) {
  return getCodec(CODEC.VALUE, forger.protocolHash).encoder(value).slice(8);
}

const MANAGER_FIELDS = ['source', 'fee', 'counter', 'gas_limit', 'storage_limit'];
const str = (v) => (v === undefined ? null : String(v));

/** The fields `signatory decode` must print for one forged content (null = absent). */
export function expectedFields(c) {
  const e = { kind: c.kind };
  if ('fee' in c) for (const f of MANAGER_FIELDS) e[f] = String(c[f]);
  switch (c.kind) {
    case 'reveal':
      e.public_key = c.public_key;
      e.proof = c.proof ?? null;
      break;
    case 'transaction':
      e.amount = c.amount;
      e.destination = c.destination;
      e.entrypoint = c.parameters ? c.parameters.entrypoint : null;
      e.parameters = c.parameters ? micheline(c.parameters.value) : null;
      break;
    case 'origination':
      e.balance = c.balance;
      e.delegate = c.delegate ?? null;
      e.code = micheline(c.script.code);
      e.storage = micheline(c.script.storage);
      break;
    case 'delegation':
      e.delegate = c.delegate ?? null;
      break;
    case 'ballot':
      Object.assign(e, { source: c.source, period: c.period, proposal: c.proposal, ballot: c.ballot });
      break;
    case 'proposals':
      Object.assign(e, { source: c.source, period: c.period, proposals: c.proposals });
      break;
    case 'seed_nonce_revelation':
      Object.assign(e, { level: c.level, nonce: c.nonce });
      break;
    case 'activate_account':
      Object.assign(e, { pkh: c.pkh, secret: c.secret });
      break;
    case 'drain_delegate':
      Object.assign(e, { consensus_key: c.consensus_key, delegate: c.delegate, destination: c.destination });
      break;
    case 'update_consensus_key':
    case 'update_companion_key':
      e.pk = c.pk;
      e.proof = c.proof ?? null;
      break;
    case 'increase_paid_storage':
      Object.assign(e, { amount: c.amount, destination: c.destination });
      break;
    case 'register_global_constant':
      e.value = micheline(c.value);
      break;
    case 'transfer_ticket':
      Object.assign(e, {
        ticket_contents: micheline(c.ticket_contents),
        ticket_ty: micheline(c.ticket_ty),
        ticket_ticketer: c.ticket_ticketer,
        ticket_amount: c.ticket_amount,
        destination: c.destination,
        entrypoint: c.entrypoint,
      });
      break;
    case 'set_deposits_limit':
      e.limit = str(c.limit);
      break;
    case 'smart_rollup_originate':
      Object.assign(e, {
        pvm_kind: c.pvm_kind,
        kernel: c.kernel,
        parameters_ty: micheline(c.parameters_ty),
        whitelist: c.whitelist ?? null,
      });
      break;
    case 'smart_rollup_add_messages':
      e.message = c.message;
      break;
    case 'smart_rollup_execute_outbox_message':
      Object.assign(e, {
        rollup: c.rollup,
        cemented_commitment: c.cemented_commitment,
        output_proof: c.output_proof,
      });
      break;
    case 'dal_publish_commitment':
      e.slot_header = c.slot_header;
      break;
    case 'failing_noop':
      e.arbitrary = c.arbitrary;
      break;
    case 'attestation':
    case 'attestation_with_dal':
      Object.assign(e, {
        slot: c.slot,
        level: c.level,
        round: c.round,
        block_payload_hash: c.block_payload_hash,
      });
      if (c.kind === 'attestation_with_dal') e.dal_attestation = c.dal_attestation;
      break;
    default:
      throw new Error(`no expectation for ${c.kind}`);
  }
  return e;
}

const STAKING = new Set(['stake', 'unstake', 'finalize_unstake', 'set_delegate_parameters']);

/** ECAD Signatory's policy name for a content: staking pseudo-kinds, ballot:<vote>. */
export function expectedPolicyKind(c) {
  if (c.kind === 'ballot') return `ballot:${c.ballot}`;
  if (
    c.kind === 'transaction' &&
    c.destination === c.source &&
    c.parameters &&
    STAKING.has(c.parameters.entrypoint)
  ) {
    return c.parameters.entrypoint;
  }
  return c.kind;
}

/** Forges a case: `03 ‖ Taquito's bytes`, and what decoding must give back. */
export async function forgeCase(c) {
  const hex = '03' + (await forger.forge({ branch: c.branch, contents: c.contents }));
  return {
    name: c.name,
    hex,
    branch: c.branch,
    operation_kinds: c.contents.map((x) => x.kind),
    policy_kinds: c.contents.map(expectedPolicyKind),
    contents: c.contents.map(expectedFields),
  };
}
