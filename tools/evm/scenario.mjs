#!/usr/bin/env node
// A deterministic EVM heist scenario for tracehound's tests, driven against a real anvil node.
//
//   node tools/evm/scenario.mjs --rpc http://127.0.0.1:8599 --out ground_truth.json [--bulk-blocks N]
//
// It needs a FRESH anvil (block 0, nothing sent yet) started exactly like this (the same
// flags give the same chain, the same block and transaction hashes, every run):
//
//   tools/evm/node_modules/.bin/anvil --port 8599 \
//     --chain-id 31337 --accounts 30 --balance 10000 \
//     --mnemonic "test test test test test test test test test test test junk" \
//     --timestamp 1655942400 --hardfork prague --order fifo \
//     --gas-limit 30000000 --base-fee 1000000000 --no-mining
//
// (ANVIL_ARGS below is that line; it is also written into the ground truth.)
//
// What it does: compiles contracts/*.sol with solc-js in-process, signs every scenario
// transaction itself (viem, explicit nonces, fixed gas and fees), mines blocks on demand
// with fixed timestamps (evm_mine), and checks after every block that the chain did what
// the story says: receipt status, ERC-20 Transfer logs, and internal ETH transfers (from
// debug_traceTransaction's callTracer, including reverted frames). At the end it checks
// every known address's ETH and token balance against its own ledger, then writes the
// ground truth (layout: README.md beside this file).
//
// --bulk-blocks N: afterwards mines N more blocks of mixed background activity (native
// transfers, token transfers, a forwarder deposit with an internal transfer, per block)
// from the unlocked dev accounts 10..29, for benchmarks. It never touches the scenario's
// actors except the exchange hot wallet (which receives the forwarder deposits). For long bulk
// runs read README.md first: anvil writes ~350 KB of state snapshot per block to
// ~/.foundry/anvil/tmp and keeps it after exit unless started with --cache-path (or
// --max-persisted-states 0, which is also ~2x faster but forgets old states).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';
import {
  encodeDeployData,
  encodeFunctionData,
  encodeAbiParameters,
  getContractAddress,
  keccak256,
  stringToHex,
  parseEther,
  parseUnits,
  concat,
  pad,
  toHex,
} from 'viem';
import { mnemonicToAccount, privateKeyToAccount } from 'viem/accounts';

// ---------------------------------------------------------------------------------------
// Fixed settings
// ---------------------------------------------------------------------------------------

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MNEMONIC = 'test test test test test test test test test test test junk';
const CHAIN_ID = 31337;
const GENESIS_TIMESTAMP = 1655942400; // 2022-06-23T00:00:00Z, the day of the Harmony bridge hack
const BLOCK_TIME = 12;
const ANVIL_ARGS = [
  '--chain-id', String(CHAIN_ID),
  '--accounts', '30',
  '--balance', '10000',
  '--mnemonic', MNEMONIC,
  '--timestamp', String(GENESIS_TIMESTAMP),
  '--hardfork', 'prague',
  '--order', 'fifo',
  '--gas-limit', '30000000',
  '--base-fee', '1000000000',
  '--no-mining',
];
const GWEI = 10n ** 9n;
const LEGACY_GAS_PRICE = 2n * GWEI; // type 0 and type 1
const MAX_FEE = 4n * GWEI; // type 2 and type 4
const MAX_PRIORITY_FEE = 1n * GWEI;
const DEV_BALANCE = parseEther('10000');
const ZERO = '0x0000000000000000000000000000000000000000';
const TRANSFER_TOPIC = keccak256(stringToHex('Transfer(address,address,uint256)'));

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

function parseArgs(argv) {
  const args = { rpc: 'http://127.0.0.1:8545', out: 'ground_truth.json', bulkBlocks: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--rpc') args.rpc = next();
    else if (a === '--out') args.out = next();
    else if (a === '--bulk-blocks') args.bulkBlocks = Number(next());
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scenario.mjs --rpc URL --out FILE [--bulk-blocks N]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(args.bulkBlocks) || args.bulkBlocks < 0) throw new Error('--bulk-blocks must be a whole number');
  return args;
}

// ---------------------------------------------------------------------------------------
// JSON-RPC
// ---------------------------------------------------------------------------------------

let RPC_URL;
let rpcId = 0;

async function rpc(method, params = []) {
  const res = await fetch(RPC_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

/// One HTTP request carrying several calls; answers in call order.
async function rpcBatch(calls) {
  const reqs = calls.map(([method, params]) => ({ jsonrpc: '2.0', id: ++rpcId, method, params }));
  const res = await fetch(RPC_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(reqs),
  });
  const body = await res.json();
  const byId = new Map(body.map((r) => [r.id, r]));
  return reqs.map((q) => {
    const r = byId.get(q.id);
    if (!r || r.error) throw new Error(`${q.method}: ${JSON.stringify(r?.error)}`);
    return r.result;
  });
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

const lc = (a) => (a == null ? null : a.toLowerCase());
const str = (n) => n.toString(); // BigInt -> exact decimal string
const big = (hex) => BigInt(hex);
function assert(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}
const TUSD = (s) => parseUnits(s, 6);
const ETH = (s) => parseEther(s);

// ---------------------------------------------------------------------------------------
// Contracts
// ---------------------------------------------------------------------------------------

function compile() {
  const dir = path.join(HERE, 'contracts');
  const sources = {};
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.sol')).sort()) {
    sources[f] = { content: fs.readFileSync(path.join(dir, f), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: 'cancun',
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join('\n'));
  const artifacts = {};
  for (const file of Object.values(out.contracts)) {
    for (const [name, c] of Object.entries(file)) {
      artifacts[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
    }
  }
  return { artifacts, solcVersion: solc.version() };
}

// ---------------------------------------------------------------------------------------
// Scenario state
// ---------------------------------------------------------------------------------------

const S = {
  ts: GENESIS_TIMESTAMP,
  nonces: new Map(), // address -> next nonce
  current: [], // txs sent for the block being built
  txs: [], // every scenario tx record, in chain order
  blocks: [], // every scenario block
  phase: 'setup',
  ledger: new Map(), // address -> { eth, tok }
  names: new Map(), // address -> { name, actor, role, kind }
  contracts: [], // { name, address, deployer, tx, via }
  tokenAddress: null,
};

function ledgerOf(addr) {
  const a = lc(addr);
  if (!S.ledger.has(a)) S.ledger.set(a, { eth: 0n, tok: 0n });
  return S.ledger.get(a);
}
function moveEth(from, to, v) {
  ledgerOf(from).eth -= v;
  ledgerOf(to).eth += v;
}
function moveTok(from, to, v) {
  if (lc(from) !== ZERO) ledgerOf(from).tok -= v;
  ledgerOf(to).tok += v;
}

function nextNonce(addr) {
  const a = lc(addr);
  const n = S.nonces.get(a) ?? 0;
  S.nonces.set(a, n + 1);
  return n;
}
const peekNonce = (addr) => S.nonces.get(lc(addr)) ?? 0;

/// Registers a known address. `role` is a fixed code (see README), `extra` may add
/// `deposit_kind` (eoa|forwarder) and `customer` for exchange deposit addresses.
function name(addr, name, actor, role, kind, description, extra = {}) {
  S.names.set(lc(addr), { name, actor, role, kind, ...extra, description });
  ledgerOf(addr);
  return addr;
}
const nameOf = (addr) => S.names.get(lc(addr))?.name ?? lc(addr);

/// Signs and sends one transaction; the expectations in `x` are checked when its block is mined.
///   x.status     1 (default) or 0
///   x.internal   [{from, to, value, kind}] value-moving internal frames that stay (kind: call|create|create2|selfdestruct)
///   x.reverted   [{from, to, value, kind, reason}] value-moving internal frames that were undone
///   x.tokens     [{from, to, value}] ERC-20 Transfer events of the token, in log order
///   x.notMoved   for a failed tx: [{asset, from, to, amount}] what it tried to move
async function send(account, tx, x = {}) {
  const from = account.address;
  const nonce = nextNonce(from);
  const type = tx.type ?? 'eip1559';
  const req = {
    type,
    chainId: CHAIN_ID,
    nonce,
    gas: tx.gas,
    to: tx.to ?? null,
    value: tx.value ?? 0n,
    data: tx.data ?? '0x',
  };
  if (type === 'legacy' || type === 'eip2930') req.gasPrice = LEGACY_GAS_PRICE;
  else {
    req.maxFeePerGas = MAX_FEE;
    req.maxPriorityFeePerGas = MAX_PRIORITY_FEE;
  }
  if (type === 'eip2930') req.accessList = tx.accessList;
  if (type === 'eip7702') req.authorizationList = tx.authorizationList;
  if (req.to === null) delete req.to;
  const raw = await account.signTransaction(req);
  const hash = await rpc('eth_sendRawTransaction', [raw]);
  assert(hash === keccak256(raw), `hash of ${x.label}`);
  const rec = {
    hash,
    label: x.label,
    phase: S.phase,
    type: { legacy: 0, eip2930: 1, eip1559: 2, eip7702: 4 }[type],
    from: lc(from),
    to: lc(tx.to ?? null),
    value: req.value,
    nonce,
    gas: BigInt(tx.gas),
    createdAddress: tx.to ? null : lc(getContractAddress({ from, nonce: BigInt(nonce) })),
    status: x.status ?? 1,
    internal: (x.internal ?? []).map(normFrame),
    reverted: (x.reverted ?? []).map(normFrame),
    tokens: (x.tokens ?? []).map((t) => ({ from: lc(t.from), to: lc(t.to), value: t.value })),
    notMoved: x.notMoved ?? [],
    reason: x.reason ?? null,
    authorizations: (tx.authorizationList ?? []).map((a) => ({ authority: lc(from), address: lc(a.address), nonce: a.nonce, chain_id: a.chainId })),
    accessList: tx.accessList ?? null,
  };
  S.current.push(rec);
  S.txs.push(rec);
  return rec;
}
function normFrame(f) {
  return { from: lc(f.from), to: lc(f.to), value: f.value, kind: f.kind ?? 'call', reason: f.reason ?? null };
}

async function deploy(account, A, contract, args = [], opts = {}) {
  const data = encodeDeployData({ abi: A[contract].abi, bytecode: A[contract].bytecode, args });
  const rec = await send(account, { to: null, data, value: opts.value ?? 0n, gas: opts.gas ?? 3_000_000, type: opts.type }, { label: opts.label ?? `deploy ${contract}`, tokens: opts.tokens });
  S.contracts.push({ name: opts.name ?? contract, contract, address: rec.createdAddress, deployer: lc(account.address), tx: rec.hash, via: 'create transaction' });
  return rec.createdAddress;
}

const fn = (A, contract, functionName, args = []) => encodeFunctionData({ abi: A[contract].abi, functionName, args });

/// Frames of a callTracer trace that moved ETH (depth >= 1), split into those that stayed and
/// those undone by their own or an ancestor's revert.
function valueFrames(top) {
  const ok = [];
  const reverted = [];
  const walk = (f, depth, revertedAbove) => {
    const rev = revertedAbove || !!f.error;
    const t = f.type;
    if (depth > 0 && t !== 'DELEGATECALL' && t !== 'STATICCALL') {
      const v = big(f.value ?? '0x0');
      if (v > 0n) (rev ? reverted : ok).push({ from: lc(f.from), to: lc(f.to), value: v, kind: t.toLowerCase() });
    }
    for (const c of f.calls ?? []) walk(c, depth + 1, rev);
  };
  walk(top, 0, false);
  return { ok, reverted };
}

const frameKey = (f) => `${f.kind} ${f.from} -> ${f.to} ${f.value}`;

/// Mines one block with the transactions sent since the last one, `gap` seconds after the
/// previous block, and checks every expectation.
async function mine(gap = BLOCK_TIME) {
  S.ts += gap;
  await rpc('evm_mine', [S.ts]);
  const block = await rpc('eth_getBlockByNumber', ['latest', false]);
  const number = Number(block.number);
  assert(Number(block.timestamp) === S.ts, `timestamp of block ${number}`);
  const sent = S.current;
  S.current = [];
  assert(JSON.stringify(block.transactions) === JSON.stringify(sent.map((r) => r.hash)), `block ${number} holds exactly the sent txs in order (${block.transactions.length} vs ${sent.length})`);
  const receipts = sent.length ? await rpc('eth_getBlockReceipts', [block.number]) : [];
  const baseFee = big(block.baseFeePerGas);
  for (let i = 0; i < sent.length; i++) {
    const rec = sent[i];
    const rc = receipts[i];
    assert(rc.transactionHash === rec.hash, `receipt order in block ${number}`);
    rec.block = number;
    rec.index = i;
    rec.gasUsed = big(rc.gasUsed);
    rec.effectiveGasPrice = big(rc.effectiveGasPrice);
    rec.fee = rec.gasUsed * rec.effectiveGasPrice;
    rec.burnt = rec.gasUsed * baseFee;
    rec.priorityFee = rec.fee - rec.burnt;
    assert(Number(rc.status) === rec.status, `status of "${rec.label}" (${rec.hash}) is ${Number(rc.status)}, expected ${rec.status}`);
    if (rec.createdAddress) {
      if (rec.status === 1) assert(lc(rc.contractAddress) === rec.createdAddress, `contract address of ${rec.label}`);
      else rec.createdAddress = null;
    }
    // ERC-20 Transfer logs of the scenario token
    const logs = rc.logs.filter((l) => lc(l.address) === S.tokenAddress && l.topics[0] === TRANSFER_TOPIC);
    const got = logs.map((l) => ({ from: lc(`0x${l.topics[1].slice(26)}`), to: lc(`0x${l.topics[2].slice(26)}`), value: big(l.data) }));
    assert(JSON.stringify(got.map((t) => [t.from, t.to, str(t.value)])) === JSON.stringify(rec.tokens.map((t) => [t.from, t.to, str(t.value)])), `token transfers of "${rec.label}": got ${JSON.stringify(got, (k, v) => (typeof v === 'bigint' ? str(v) : v))}`);
    rec.tokenLogIndexes = logs.map((l) => Number(l.logIndex));
    // internal transfers from the call trace
    const trace = await rpc('debug_traceTransaction', [rec.hash, { tracer: 'callTracer' }]);
    const { ok, reverted } = valueFrames(trace);
    assert(JSON.stringify(ok.map(frameKey)) === JSON.stringify(rec.internal.map(frameKey)), `internal transfers of "${rec.label}": got ${JSON.stringify(ok.map(frameKey))}`);
    assert(JSON.stringify(reverted.map(frameKey)) === JSON.stringify(rec.reverted.map(frameKey)), `reverted internal transfers of "${rec.label}": got ${JSON.stringify(reverted.map(frameKey))}`);
    if (rec.status === 0) {
      assert(!!trace.error, `failed tx ${rec.label} has a top-level error`);
      rec.reason = rec.reason ?? trace.revertReason ?? trace.error;
    }
    // ledger
    ledgerOf(rec.from).eth -= rec.fee;
    ledgerOf(lc(block.miner)).eth += rec.priorityFee;
    if (rec.status === 1) {
      moveEth(rec.from, rec.to ?? rec.createdAddress, rec.value);
      for (const f of rec.internal) moveEth(f.from, f.to, f.value);
      for (const t of rec.tokens) moveTok(t.from, t.to, t.value);
    }
  }
  S.blocks.push({ number, hash: block.hash, timestamp: S.ts, base_fee_per_gas: str(baseFee), miner: lc(block.miner), transactions: sent.length, phase: S.phase });
  return number;
}

async function mineEmpty(n, gap = BLOCK_TIME) {
  for (let i = 0; i < n; i++) await mine(gap);
}

/// Checks every known address's ETH and token balance against the ledger.
async function checkBalances(A) {
  const addrs = [...S.ledger.keys()];
  const calls = [];
  for (const a of addrs) {
    calls.push(['eth_getBalance', [a, 'latest']]);
    calls.push(['eth_call', [{ to: S.tokenAddress, data: fn(A, 'Token', 'balanceOf', [a]) }, 'latest']]);
  }
  const res = await rpcBatch(calls);
  addrs.forEach((a, i) => {
    const eth = big(res[2 * i]);
    const tok = big(res[2 * i + 1]);
    const l = S.ledger.get(a);
    assert(eth === l.eth, `ETH balance of ${nameOf(a)} ${a}: chain ${eth}, ledger ${l.eth}`);
    assert(tok === l.tok, `TUSD balance of ${nameOf(a)} ${a}: chain ${tok}, ledger ${l.tok}`);
  });
  return addrs.length;
}

// ---------------------------------------------------------------------------------------
// The story
// ---------------------------------------------------------------------------------------

async function scenario(A) {
  const dev = (i) => mnemonicToAccount(MNEMONIC, { addressIndex: i });
  const fresh = (label) => privateKeyToAccount(keccak256(stringToHex(`tracehound/evm-scenario/${label}`)));

  // --- actors -------------------------------------------------------------------------
  const deployer = dev(0);
  const hot = dev(1);
  const operator = dev(2);
  const alice = dev(3);
  const bob = dev(4);
  const carol = dev(5);
  const dave = dev(6);
  const erin = dev(7);
  const frank = dev(8);
  const relayer = dev(9);
  for (let i = 0; i < 30; i++) ledgerOf(dev(i).address).eth = DEV_BALANCE;

  const exploiter = fresh('attacker/exploiter'); // A0: sends the exploit, pays its gas with clean ETH
  const loot = fresh('attacker/loot'); // A1: receives the loot, only stolen funds
  const feeder = fresh('attacker/mixer-feeder'); // A2: only stolen ETH (from A1)
  const swapper = fresh('attacker/swapper'); // A3: only stolen ETH + TUSD (from A1)
  const proceeds = fresh('attacker/swap-proceeds'); // A4: only the ETH from swapping stolen TUSD
  const mixOut = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => fresh(`attacker/mixer-withdrawal-${i}`));
  const dBob = fresh('exchange/deposit/bob');
  const dAttEth = fresh('exchange/deposit/attacker-eth');
  const dAttTok = fresh('exchange/deposit/attacker-tusd');
  const carolFresh = fresh('carol/fresh');
  const frankFresh = fresh('frank/fresh');

  name(deployer.address, 'deployer', 'deployer', 'deployer', 'eoa', 'deploys the token, bridge, mixer, swap and helpers; token issuer and swap liquidity provider');
  name(hot.address, 'exchange_hot_wallet', 'exchange', 'exchange_hot_wallet', 'eoa', 'the exchange\'s hot wallet: receives the deposits, pays the withdrawals');
  name(operator.address, 'bridge_operator', 'bridge', 'bridge_operator', 'eoa', 'releases legitimate bridge withdrawals');
  for (const [acc, n] of [[alice, 'alice'], [bob, 'bob'], [carol, 'carol'], [dave, 'dave'], [erin, 'erin'], [frank, 'frank']]) name(acc.address, n, n, 'user', 'eoa', 'innocent user');
  name(relayer.address, 'mixer_relayer', 'mixer_relayer', 'mixer_relayer', 'eoa', 'calls Mixer.withdraw for users (pays the gas, takes no fee)');
  name(exploiter.address, 'attacker_exploiter', 'attacker', 'attacker', 'eoa', 'sends the exploit transactions; funded by an exchange withdrawal, never holds stolen funds');
  name(loot.address, 'attacker_loot', 'attacker', 'attacker', 'eoa', 'receives the loot from the bridge');
  name(feeder.address, 'attacker_mixer_feeder', 'attacker', 'attacker', 'eoa', 'split from the loot, feeds the mixer and an exchange EOA deposit address');
  name(swapper.address, 'attacker_swapper', 'attacker', 'attacker', 'eoa', 'swaps stolen TUSD to ETH');
  name(proceeds.address, 'attacker_swap_proceeds', 'attacker', 'attacker', 'eoa', 'receives the ETH from the swap');
  mixOut.forEach((a, i) => name(a.address, `attacker_mixer_withdrawal_${i + 1}`, 'attacker', 'attacker', 'eoa', 'fresh address paid by a mixer withdrawal'));
  name(dBob.address, 'exchange_deposit_bob', 'exchange', 'exchange_deposit_address', 'eoa', 'deposit address of customer bob, swept by the exchange', { deposit_kind: 'eoa', customer: 'bob' });
  name(dAttEth.address, 'exchange_deposit_attacker_eth', 'exchange', 'exchange_deposit_address', 'eoa', 'deposit address of customer attacker (ETH), swept by the exchange', { deposit_kind: 'eoa', customer: 'attacker' });
  name(dAttTok.address, 'exchange_deposit_attacker_tusd', 'exchange', 'exchange_deposit_address', 'eoa', 'deposit address of customer attacker (TUSD), swept by the exchange', { deposit_kind: 'eoa', customer: 'attacker' });
  name(carolFresh.address, 'carol_fresh', 'carol', 'user', 'eoa', 'carol\'s fresh address paid by a mixer withdrawal');
  name(frankFresh.address, 'frank_fresh', 'frank', 'user', 'eoa', 'frank\'s fresh address paid by a mixer withdrawal');
  name(ZERO, 'zero_address', 'block_producer', 'coinbase', 'eoa', 'anvil\'s coinbase: receives the priority fees; also the source of the ERC-20 mint');

  // =====================================================================================
  // Setup: contracts and balances
  // =====================================================================================
  S.phase = 'setup';
  const SUPPLY = TUSD('100000000');
  const token = lc(getContractAddress({ from: deployer.address, nonce: 0n }));
  S.tokenAddress = token;
  await deploy(deployer, A, 'Token', ['Test USD', 'TUSD', 6, SUPPLY], { name: 'token', label: 'deploy TUSD token (mints the supply to the deployer)', tokens: [{ from: ZERO, to: deployer.address, value: SUPPLY }] });
  const bridge = await deploy(deployer, A, 'Bridge', [operator.address], { name: 'bridge', type: 'legacy', label: 'deploy Bridge (legacy type-0 creation)' });
  const mixer = await deploy(deployer, A, 'Mixer', [], { name: 'mixer', label: 'deploy Mixer' });
  const factory = await deploy(hot, A, 'ForwarderFactory', [], { name: 'exchange_forwarder_factory', label: 'exchange deploys its ForwarderFactory' });
  name(token, 'token_tusd', 'token', 'token', 'contract', 'the ERC-20 TUSD');
  name(bridge, 'bridge', 'bridge', 'victim_bridge', 'contract', 'the bridge that gets drained');
  name(mixer, 'mixer', 'mixer', 'mixer', 'contract', 'fixed-denomination mixer (10 ETH)');
  name(factory, 'exchange_forwarder_factory', 'exchange', 'exchange_forwarder_factory', 'contract', 'creates the exchange\'s deposit forwarders (CREATE2)');
  await mine();

  const SWAP_ETH = ETH('2000');
  const SWAP_TUSD = TUSD('4000000');
  const swap = await deploy(deployer, A, 'Swap', [token], { name: 'swap', value: SWAP_ETH, label: 'deploy Swap with 2000 ETH of liquidity (creation with value)' });
  await send(deployer, { to: token, data: fn(A, 'Token', 'transfer', [swap, SWAP_TUSD]), gas: 100_000 }, { label: 'TUSD liquidity to Swap', tokens: [{ from: deployer.address, to: swap, value: SWAP_TUSD }] });
  const disperse = await deploy(deployer, A, 'Disperse', [], { name: 'disperse', label: 'deploy Disperse' });
  const fickle = await deploy(deployer, A, 'Fickle', [carol.address], { name: 'fickle', label: 'deploy Fickle (a recipient that always reverts)' });
  const batchWallet = await deploy(deployer, A, 'BatchWallet', [], { name: 'batch_wallet', label: 'deploy BatchWallet (EIP-7702 delegation target)' });
  name(swap, 'swap', 'swap', 'swap', 'contract', 'ETH/TUSD constant-product pool');
  name(disperse, 'disperse', 'disperse', 'helper_contract', 'contract', 'batch payments, refunds failed ones');
  name(fickle, 'fickle', 'fickle', 'helper_contract', 'contract', 'payment recipient that passes the ETH on, then reverts');
  name(batchWallet, 'batch_wallet', 'batch_wallet', 'helper_contract', 'contract', 'EIP-7702 delegation target (erin)');
  await mine();

  const grants = [[dave, '1500000'], [erin, '1200000'], [frank, '400000'], [hot, '5000000'], [alice, '50000'], [bob, '20000']];
  for (const [acc, amt] of grants) {
    await send(deployer, { to: token, data: fn(A, 'Token', 'transfer', [acc.address, TUSD(amt)]), gas: 100_000 }, { label: `TUSD to ${nameOf(acc.address)}`, tokens: [{ from: deployer.address, to: acc.address, value: TUSD(amt) }] });
  }
  await mine();

  // The exchange creates CREATE2 forwarders for two customers (internal create frames, no value)
  const fwdInit = encodeDeployData({ abi: A.DepositForwarder.abi, bytecode: A.DepositForwarder.bytecode, args: [hot.address] });
  const forwarder = async (customer) => {
    const salt = keccak256(stringToHex(`forwarder/${customer}`));
    const addr = lc(getContractAddress({ opcode: 'CREATE2', from: factory, salt, bytecode: fwdInit }));
    const rec = await send(hot, { to: factory, data: fn(A, 'ForwarderFactory', 'create', [salt]), gas: 400_000 }, { label: `exchange creates the deposit forwarder of ${customer}` });
    S.contracts.push({ name: `exchange_forwarder_${customer}`, contract: 'DepositForwarder', address: addr, deployer: factory, tx: rec.hash, via: 'CREATE2 inside a call' });
    name(addr, `exchange_forwarder_${customer}`, 'exchange', 'exchange_deposit_address', 'contract', `deposit forwarder of customer ${customer}`, { deposit_kind: 'forwarder', customer });
    return addr;
  };
  const fAlice = await forwarder('alice');
  const fCarol = await forwarder('carol');
  await mine();

  // =====================================================================================
  // Users lock ETH and TUSD in the bridge
  // =====================================================================================
  S.phase = 'bridge_deposits';
  const lockEth = (acc, amt, type) => send(acc, { to: bridge, value: ETH(amt), data: fn(A, 'Bridge', 'depositETH', [acc.address]), gas: 100_000, type }, { label: `${nameOf(acc.address)} locks ${amt} ETH in the bridge` });
  const lockTok = async (acc, amt) => {
    await send(acc, { to: token, data: fn(A, 'Token', 'approve', [bridge, TUSD(amt)]), gas: 100_000 }, { label: `${nameOf(acc.address)} approves the bridge` });
    await send(acc, { to: bridge, data: fn(A, 'Bridge', 'depositToken', [token, TUSD(amt), acc.address]), gas: 150_000 }, { label: `${nameOf(acc.address)} locks ${amt} TUSD in the bridge`, tokens: [{ from: acc.address, to: bridge, value: TUSD(amt) }] });
  };
  await lockEth(alice, '300', 'legacy');
  await lockEth(bob, '137.5');
  await mine(60);
  await lockTok(dave, '1250000');
  await lockTok(erin, '987654.321');
  await lockEth(carol, '49.75');
  await mine();
  await lockTok(frank, '262345.679');
  await mine();
  // a legitimate release by the operator, with a real signature (the bridge does not check it)
  const release = async (acc, id, tok, to, amount, sig, x) =>
    send(acc, { to: bridge, data: fn(A, 'Bridge', 'release', [id, tok, to, amount, sig]), gas: 150_000 }, x);
  const opSig = async (id, tok, to, amount) =>
    operator.sign({ hash: keccak256(encodeAbiParameters([{ type: 'bytes32' }, { type: 'address' }, { type: 'address' }, { type: 'uint256' }], [id, tok, to, amount])) });
  {
    const id1 = keccak256(stringToHex('bridge-withdrawal/1'));
    const id2 = keccak256(stringToHex('bridge-withdrawal/2'));
    await release(operator, id1, ZERO, bob.address, ETH('12.5'), await opSig(id1, ZERO, bob.address, ETH('12.5')), { label: 'operator releases 12.5 ETH to bob (legitimate)', internal: [{ from: bridge, to: bob.address, value: ETH('12.5') }] });
    await release(operator, id2, token, dave.address, TUSD('10000'), await opSig(id2, token, dave.address, TUSD('10000')), { label: 'operator releases 10000 TUSD to dave (legitimate)', tokens: [{ from: bridge, to: dave.address, value: TUSD('10000') }] });
  }
  await mine(300);

  // =====================================================================================
  // Everyday activity before the hack
  // =====================================================================================
  S.phase = 'background';
  const pay = (acc, to, amt, type, x = {}) => send(acc, { to, value: ETH(amt), gas: x.gas ?? 21_000, type }, { label: x.label ?? `${nameOf(acc.address)} pays ${amt} ETH to ${nameOf(to)}`, internal: x.internal });
  const sendTok = (acc, to, amount, x = {}) => send(acc, { to: token, data: fn(A, 'Token', 'transfer', [to, amount]), gas: 100_000, type: x.type, accessList: x.accessList }, { label: x.label ?? `${nameOf(acc.address)} sends ${amount} TUSD base units to ${nameOf(to)}`, tokens: x.status === 0 ? [] : [{ from: acc.address, to, value: amount }], status: x.status, notMoved: x.notMoved });
  const balanceSlot = (holder) => keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }], [holder, 3n]));

  await pay(alice, bob.address, '3', 'legacy');
  await sendTok(erin, frank.address, TUSD('25000'), { type: 'eip2930', accessList: [{ address: token, storageKeys: [balanceSlot(erin.address), balanceSlot(frank.address)] }], label: 'erin sends 25000 TUSD to frank (type-1, with an access list)' });
  await pay(bob, dBob.address, '40', undefined, { label: 'bob deposits 40 ETH at his exchange deposit address (eoa)' });
  await pay(alice, fAlice, '25', undefined, { gas: 80_000, label: 'alice deposits 25 ETH at her exchange forwarder', internal: [{ from: fAlice, to: hot.address, value: ETH('25') }] });
  await mine();

  // Swap state, to predict the constant-product outputs exactly
  const pool = { eth: SWAP_ETH, tok: SWAP_TUSD };
  const amountOut = (amountIn, rIn, rOut) => (amountIn * 997n * rOut) / (rIn * 1000n + amountIn * 997n);
  const swapEthIn = async (acc, value, to, label) => {
    const out = amountOut(value, pool.eth, pool.tok);
    pool.eth += value;
    pool.tok -= out;
    await send(acc, { to: swap, value, data: fn(A, 'Swap', 'swapEthForToken', [out, to]), gas: 150_000 }, { label, tokens: [{ from: swap, to, value: out }] });
    return out;
  };
  const swapTokIn = async (acc, amountIn, to, label) => {
    const out = amountOut(amountIn, pool.tok, pool.eth);
    pool.tok += amountIn;
    pool.eth -= out;
    const rec = await send(acc, { to: swap, data: fn(A, 'Swap', 'swapTokenForEth', [amountIn, out, to]), gas: 150_000 }, { label, tokens: [{ from: acc.address, to: swap, value: amountIn }], internal: [{ from: swap, to, value: out }] });
    return { out, rec };
  };
  await swapEthIn(frank, ETH('5'), frank.address, 'frank swaps 5 ETH for TUSD');
  await send(dave, { to: token, data: fn(A, 'Token', 'approve', [swap, (1n << 256n) - 1n]), gas: 100_000 }, { label: 'dave approves the swap' });
  await swapTokIn(dave, TUSD('50000'), dave.address, 'dave swaps 50000 TUSD for ETH');
  await mine();

  // Mixer: innocent deposits first
  const DENOM = ETH('10');
  const mixerLog = []; // every mixer deposit and withdrawal, in chain order
  const secretOf = (label) => keccak256(stringToHex(`mixer-secret/${label}`));
  const mixDeposit = async (acc, label, tainted, owner) => {
    const secret = secretOf(label);
    const commitment = keccak256(secret);
    const rec = await send(acc, { to: mixer, value: DENOM, data: fn(A, 'Mixer', 'deposit', [commitment]), gas: 100_000 }, { label: `${nameOf(acc.address)} deposits 10 ETH in the mixer (${label})` });
    mixerLog.push({ event: 'deposit', note: label, owner, tainted, from: lc(acc.address), amount: DENOM, commitment, rec });
    return rec;
  };
  const mixWithdraw = async (label, to, tainted, owner) => {
    const secret = secretOf(label);
    const rec = await send(relayer, { to: mixer, data: fn(A, 'Mixer', 'withdraw', [secret, to]), gas: 100_000 }, { label: `relayer withdraws ${label} from the mixer to ${nameOf(to)}`, internal: [{ from: mixer, to, value: DENOM }] });
    mixerLog.push({ event: 'withdrawal', note: label, owner, tainted, to: lc(to), amount: DENOM, commitment: keccak256(secret), secret, rec });
    return rec;
  };
  await mixDeposit(carol, 'carol-1', false, 'carol');
  await mixDeposit(carol, 'carol-2', false, 'carol');
  await mixDeposit(frank, 'frank-1', false, 'frank');
  const piggy = await deploy(dave, A, 'Piggy', [], { name: 'piggy', value: ETH('5'), gas: 500_000, label: 'dave creates a Piggy holding 5 ETH (creation with value)' });
  name(piggy, 'piggy', 'dave', 'helper_contract', 'contract', 'dave\'s piggy bank, paid out by SELFDESTRUCT');
  await mine();

  // Failures: a failed tx that tried to move ETH, a failed token transfer, and a successful
  // tx with a reverted inner payment (refunded), whose subtree holds a call that succeeded.
  await send(bob, { to: mixer, value: ETH('3'), data: fn(A, 'Mixer', 'deposit', [keccak256(stringToHex('bob-oops'))]), gas: 100_000, type: 'legacy' }, { label: 'bob sends 3 ETH to the mixer: wrong denomination, reverts', status: 0, notMoved: [{ asset: 'ETH', from: bob.address, to: mixer, amount: ETH('3') }] });
  await sendTok(carol, alice.address, TUSD('1000'), { status: 0, label: 'carol tries to send 1000 TUSD she does not have: reverts', notMoved: [{ asset: 'TUSD', from: carol.address, to: alice.address, amount: TUSD('1000') }] });
  await send(alice, { to: disperse, value: ETH('3.5'), data: fn(A, 'Disperse', 'disperse', [[bob.address, fickle, carol.address], [ETH('1'), ETH('2'), ETH('0.5')]]), gas: 200_000 }, {
    label: 'alice disperses 3.5 ETH to bob, fickle and carol; fickle reverts and alice gets 2 ETH back',
    internal: [
      { from: disperse, to: bob.address, value: ETH('1') },
      { from: disperse, to: carol.address, value: ETH('0.5') },
      { from: disperse, to: alice.address, value: ETH('2') },
    ],
    reverted: [
      { from: disperse, to: fickle, value: ETH('2'), reason: 'Fickle reverts ("changed my mind")' },
      { from: fickle, to: carol.address, value: ETH('2'), reason: 'succeeded itself, undone by its parent\'s revert' },
    ],
  });
  await sendTok(dave, fCarol, TUSD('5000'), { label: 'dave pays 5000 TUSD to carol\'s exchange forwarder (tokens wait there)' });
  await mine();
  await mineEmpty(2);

  // The exchange sweeps: bob's EOA deposit address sends its whole balance less the fee
  // (type 0, so the fee is exactly 21000 * gasPrice); carol's forwarder tokens by sweepToken.
  const sweepEoa = async (acc, label) => {
    const bal = ledgerOf(acc.address).eth;
    const fee = 21_000n * LEGACY_GAS_PRICE;
    return { rec: await send(acc, { to: hot.address, value: bal - fee, gas: 21_000, type: 'legacy' }, { label }), amount: bal - fee, fee };
  };
  await sweepEoa(dBob, 'exchange sweeps bob\'s deposit address to the hot wallet');
  await send(hot, { to: fCarol, data: fn(A, 'DepositForwarder', 'sweepToken', [token]), gas: 100_000 }, { label: 'exchange sweeps carol\'s forwarder tokens', tokens: [{ from: fCarol, to: hot.address, value: TUSD('5000') }] });
  await pay(hot, frank.address, '7', undefined, { label: 'exchange withdrawal: 7 ETH to frank' });
  await sendTok(hot, alice.address, TUSD('20000'), { label: 'exchange withdrawal: 20000 TUSD to alice' });
  await mine();

  // EIP-7702: erin delegates her EOA to BatchWallet and pays three people in one transaction
  {
    const n = peekNonce(erin.address);
    const auth = await erin.signAuthorization({ address: batchWallet, chainId: CHAIN_ID, nonce: n + 1 });
    const calls = [
      { to: bob.address, value: ETH('1.5'), data: '0x' },
      { to: carol.address, value: ETH('0.25'), data: '0x' },
      { to: token, value: 0n, data: fn(A, 'Token', 'transfer', [dave.address, TUSD('1000')]) },
    ];
    await send(erin, { type: 'eip7702', to: erin.address, data: fn(A, 'BatchWallet', 'execute', [calls]), authorizationList: [auth], gas: 300_000 }, {
      label: 'erin (EIP-7702, delegated to BatchWallet) pays bob 1.5 ETH, carol 0.25 ETH and dave 1000 TUSD in one call',
      internal: [
        { from: erin.address, to: bob.address, value: ETH('1.5') },
        { from: erin.address, to: carol.address, value: ETH('0.25') },
      ],
      tokens: [{ from: erin.address, to: dave.address, value: TUSD('1000') }],
    });
    nextNonce(erin.address); // the authorization used nonce n+1
  }
  await mine();

  // The attacker opens an exchange account (gets a forwarder) and withdraws 1 ETH for gas
  const fAtt = await forwarder('attacker');
  await pay(hot, exploiter.address, '1', undefined, { label: 'exchange withdrawal: 1 ETH to the future exploiter (its gas money)' });
  await mine(600);

  // =====================================================================================
  // The heist
  // =====================================================================================
  S.phase = 'heist';
  const bogus = concat([pad('0x1337', { size: 32 }), pad('0x1337', { size: 32 }), '0x1b']);
  const stolenEth = ledgerOf(bridge).eth;
  const stolenTok = ledgerOf(bridge).tok;
  S.ts = 1655982406 - BLOCK_TIME; // the exploit lands at 2022-06-23T11:06:46Z
  const failedAttempt = await release(exploiter, keccak256(stringToHex('exploit/0')), ZERO, loot.address, stolenEth, '0x', { label: 'exploiter tries release() without a signature: reverts', status: 0, notMoved: [{ asset: 'ETH', from: bridge, to: loot.address, amount: stolenEth }] });
  await mine();
  const exploitEth = await release(exploiter, keccak256(stringToHex('exploit/1')), ZERO, loot.address, stolenEth, bogus, { label: 'EXPLOIT: bridge releases all its ETH to the attacker (bogus signature)', internal: [{ from: bridge, to: loot.address, value: stolenEth }] });
  const exploitTok = await release(exploiter, keccak256(stringToHex('exploit/2')), token, loot.address, stolenTok, bogus, { label: 'EXPLOIT: bridge releases all its TUSD to the attacker (bogus signature)', tokens: [{ from: bridge, to: loot.address, value: stolenTok }] });
  await mine();

  // =====================================================================================
  // Laundering
  // =====================================================================================
  S.phase = 'laundering';
  const toFeeder = await pay(loot, feeder.address, '200', undefined, { label: 'attacker splits 200 ETH to the mixer feeder' });
  const toSwapperEth = await pay(loot, swapper.address, '0.5', undefined, { label: 'attacker sends 0.5 ETH gas money to the swapper' });
  const SWAP_IN = TUSD('600000');
  const toSwapperTok = await sendTok(loot, swapper.address, SWAP_IN, { label: 'attacker sends 600000 TUSD to the swapper' });
  await mine(240);

  await send(swapper, { to: token, data: fn(A, 'Token', 'approve', [swap, SWAP_IN]), gas: 100_000 }, { label: 'swapper approves the swap' });
  const { out: swapOut, rec: swapRec } = await swapTokIn(swapper, SWAP_IN, proceeds.address, 'swapper swaps 600000 stolen TUSD for ETH, paid to a fresh address');
  await mine();

  const attackerMix = [];
  for (let i = 1; i <= 4; i++) attackerMix.push(await mixDeposit(feeder, `attacker-${i}`, true, 'attacker'));
  await mixDeposit(frank, 'frank-2', false, 'frank');
  await mine();
  for (let i = 5; i <= 7; i++) attackerMix.push(await mixDeposit(feeder, `attacker-${i}`, true, 'attacker'));
  await mixDeposit(erin, 'erin-1', false, 'erin');
  await mine();
  for (let i = 8; i <= 10; i++) attackerMix.push(await mixDeposit(feeder, `attacker-${i}`, true, 'attacker'));
  await mixWithdraw('carol-1', carolFresh.address, false, 'carol');
  await mine();

  const toFAttEth = await pay(loot, fAtt, '50', undefined, { gas: 80_000, label: 'attacker deposits 50 ETH at his exchange forwarder', internal: [{ from: fAtt, to: hot.address, value: ETH('50') }] });
  const FWD_TOK = TUSD('400000');
  const toFAttTok = await sendTok(loot, fAtt, FWD_TOK, { label: 'attacker deposits 400000 TUSD at his exchange forwarder' });
  const toDAttEth = await pay(feeder, dAttEth.address, '60', undefined, { label: 'mixer feeder deposits 60 ETH at an exchange EOA deposit address' });
  await mine();

  const attackerWithdrawals = [];
  for (let i = 1; i <= 4; i++) attackerWithdrawals.push(await mixWithdraw(`attacker-${i}`, mixOut[i - 1].address, true, 'attacker'));
  await mine(1800);

  const EOA_TOK = TUSD('250000');
  const toDAttTok = await sendTok(loot, dAttTok.address, EOA_TOK, { label: 'attacker deposits 250000 TUSD at an exchange EOA deposit address' });
  const PROCEEDS_TO_EXCHANGE = ETH('150');
  const proceedsToFAtt = await pay(proceeds, fAtt, '150', undefined, { gas: 80_000, label: 'swap proceeds: 150 ETH to the attacker\'s exchange forwarder', internal: [{ from: fAtt, to: hot.address, value: PROCEEDS_TO_EXCHANGE }] });
  await mine();
  await mineEmpty(3);

  // The exchange sweeps the attacker's deposits
  const sweepAttEth = await sweepEoa(dAttEth, 'exchange sweeps the attacker\'s ETH deposit address');
  const sweepFAtt = await send(hot, { to: fAtt, data: fn(A, 'DepositForwarder', 'sweepToken', [token]), gas: 100_000 }, { label: 'exchange sweeps the attacker\'s forwarder tokens', tokens: [{ from: fAtt, to: hot.address, value: FWD_TOK }] });
  const GAS_TOPUP = ETH('0.01');
  const topup = await pay(hot, dAttTok.address, '0.01', undefined, { label: 'exchange tops up gas on the attacker\'s TUSD deposit address' });
  await mine();
  const sweepAttTok = await sendTok(dAttTok, hot.address, EOA_TOK, { label: 'exchange sweeps the attacker\'s TUSD deposit address' });
  for (let i = 5; i <= 8; i++) attackerWithdrawals.push(await mixWithdraw(`attacker-${i}`, mixOut[i - 1].address, true, 'attacker'));
  await mixWithdraw('frank-1', frankFresh.address, false, 'frank');
  await mine();

  // Life goes on
  S.phase = 'background';
  await pay(alice, carol.address, '2', 'legacy');
  await send(dave, { to: piggy, data: fn(A, 'Piggy', 'smash', []), gas: 60_000 }, { label: 'dave smashes his piggy: 5 ETH back by SELFDESTRUCT', internal: [{ from: piggy, to: dave.address, value: ETH('5'), kind: 'selfdestruct' }] });
  await pay(frank, erin.address, '0.3', undefined, { gas: 60_000, label: 'frank pays 0.3 ETH to erin (an EOA with EIP-7702 code: its receive() runs)' });
  await sendTok(bob, carol.address, TUSD('1234.5678'), { label: 'bob sends 1234.5678 TUSD to carol' });
  await mine();

  const checked = await checkBalances(A);
  console.log(`scenario: ${S.blocks.length} blocks, ${S.txs.length} transactions; balances of ${checked} addresses match the ledger`);

  return {
    actors: { deployer, hot, operator, alice, bob, carol, dave, erin, frank, relayer, exploiter, loot, feeder, swapper, proceeds, mixOut, dBob, dAttEth, dAttTok, carolFresh, frankFresh },
    contracts: { token, bridge, mixer, factory, swap, disperse, fickle, batchWallet, piggy, fAlice, fCarol, fAtt },
    heist: {
      stolenEth, stolenTok, failedAttempt, exploitEth, exploitTok, toFeeder, toSwapperEth, toSwapperTok, SWAP_IN, swapOut, swapRec,
      attackerMix, attackerWithdrawals, toFAttEth, toFAttTok, FWD_TOK, toDAttEth, EOA_TOK, toDAttTok, proceedsToFAtt, PROCEEDS_TO_EXCHANGE,
      sweepAttEth, sweepFAtt, topup, GAS_TOPUP, sweepAttTok,
    },
    mixerLog,
    DENOM,
  };
}

// ---------------------------------------------------------------------------------------
// Ground truth
// ---------------------------------------------------------------------------------------

function groundTruth(ctx, meta) {
  const { actors: a, contracts: c, heist: h, mixerLog, DENOM } = ctx;
  const addr = (x) => lc(typeof x === 'string' ? x : x.address);
  const sum = (xs) => xs.reduce((s, x) => s + x, 0n);
  const txsFrom = (who, phases) => S.txs.filter((t) => t.from === addr(who) && (!phases || phases.includes(t.phase)));
  const fees = (who) => txsFrom(who).map((t) => ({ tx: t.hash, from: t.from, amount: str(t.fee) }));
  const feeSum = (who) => sum(txsFrom(who).map((t) => t.fee));
  const bal = (x) => S.ledger.get(addr(x));

  // --- ETH stolen from the bridge ---------------------------------------------------
  const ethDest = [
    { category: 'exchange', deposit_kind: 'forwarder', deposit_address: c.fAtt, hot_wallet: addr(a.hot), amount: str(ETH('50')), deposit_tx: h.toFAttEth.hash, credit_tx: h.toFAttEth.hash, credited_to_hot_wallet: str(ETH('50')), note: 'the forwarder passes the ETH on to the hot wallet in the deposit transaction (internal transfer)' },
    { category: 'exchange', deposit_kind: 'eoa', deposit_address: addr(a.dAttEth), hot_wallet: addr(a.hot), amount: str(ETH('60')), deposit_tx: h.toDAttEth.hash, credit_tx: h.sweepAttEth.rec.hash, credited_to_hot_wallet: str(h.sweepAttEth.amount), sweep_fee: str(h.sweepAttEth.fee), note: 'swept by a type-0 transaction from the deposit address: the whole balance less the sweep fee (the fee is paid out of the deposit)' },
    { category: 'mixer', address: c.mixer, amount: str(DENOM * BigInt(h.attackerMix.length)), deposit_txs: h.attackerMix.map((r) => r.hash), note: 'see mixer: 80 ETH of it came out to attacker_mixer_withdrawal_1..8, 20 ETH is still in the pool' },
    { category: 'gas_fees', amount: str(feeSum(a.loot) + feeSum(a.feeder) + feeSum(a.swapper)), txs: [...fees(a.loot), ...fees(a.feeder), ...fees(a.swapper)], note: 'paid by attacker_loot, attacker_mixer_feeder and attacker_swapper out of stolen ETH (base fee burnt, priority fee to the coinbase, the zero address)' },
    { category: 'held', address: addr(a.loot), amount: str(bal(a.loot).eth) },
    { category: 'held', address: addr(a.feeder), amount: str(bal(a.feeder).eth) },
    { category: 'held', address: addr(a.swapper), amount: str(bal(a.swapper).eth) },
  ];
  assert(sum(ethDest.map((d) => BigInt(d.amount))) === h.stolenEth, 'ETH destinations add up to the stolen ETH');

  // --- TUSD stolen from the bridge ----------------------------------------------------
  const tokDest = [
    { category: 'swap', address: c.swap, amount: str(h.SWAP_IN), tx: h.swapRec.hash, via_address: addr(a.swapper), eth_out: str(h.swapOut), eth_to: addr(a.proceeds), note: 'stolen TUSD swapped for ETH in one transaction: TUSD attacker_swapper -> swap (Transfer event), ETH swap -> attacker_swap_proceeds (internal transfer); see flows.ETH_from_swap' },
    { category: 'exchange', deposit_kind: 'forwarder', deposit_address: c.fAtt, hot_wallet: addr(a.hot), amount: str(h.FWD_TOK), deposit_tx: h.toFAttTok.hash, credit_tx: h.sweepFAtt.hash, credited_to_hot_wallet: str(h.FWD_TOK), note: 'tokens wait in the forwarder until the exchange calls sweepToken' },
    { category: 'exchange', deposit_kind: 'eoa', deposit_address: addr(a.dAttTok), hot_wallet: addr(a.hot), amount: str(h.EOA_TOK), deposit_tx: h.toDAttTok.hash, credit_tx: h.sweepAttTok.hash, credited_to_hot_wallet: str(h.EOA_TOK), gas_topup_tx: h.topup.hash, gas_topup: str(h.GAS_TOPUP), note: 'the exchange first sends clean ETH for gas to the deposit address (from the hot wallet, after tainted deposits reached it), then the deposit address transfers the tokens' },
    { category: 'held', address: addr(a.loot), amount: str(bal(a.loot).tok) },
    { category: 'held', address: addr(a.swapper), amount: str(bal(a.swapper).tok) },
  ];
  assert(sum(tokDest.map((d) => BigInt(d.amount))) === h.stolenTok, 'TUSD destinations add up to the stolen TUSD');

  // --- ETH that came back from swapping stolen TUSD -----------------------------------
  const proceedsDest = [
    { category: 'exchange', deposit_kind: 'forwarder', deposit_address: c.fAtt, hot_wallet: addr(a.hot), amount: str(h.PROCEEDS_TO_EXCHANGE), deposit_tx: h.proceedsToFAtt.hash, credit_tx: h.proceedsToFAtt.hash, credited_to_hot_wallet: str(h.PROCEEDS_TO_EXCHANGE) },
    { category: 'gas_fees', amount: str(feeSum(a.proceeds)), txs: fees(a.proceeds) },
    { category: 'held', address: addr(a.proceeds), amount: str(bal(a.proceeds).eth) },
  ];
  assert(sum(proceedsDest.map((d) => BigInt(d.amount))) === h.swapOut, 'swap proceeds destinations add up');

  // --- hops: every movement of stolen (or derived) value -------------------------------
  const hop = (asset, from, to, amount, tx, via, note) => ({ asset, from: addr(from), to: addr(to), amount: str(amount), tx: tx.hash ?? tx, via, ...(note ? { note } : {}) });
  const hops = [
    hop('ETH', c.bridge, a.loot, h.stolenEth, h.exploitEth, 'internal', 'the exploit: Bridge.release pays attacker_loot'),
    hop('TUSD', c.bridge, a.loot, h.stolenTok, h.exploitTok, 'token_transfer', 'the exploit: Bridge.release transfers TUSD to attacker_loot'),
    hop('ETH', a.loot, a.feeder, ETH('200'), h.toFeeder, 'transaction'),
    hop('ETH', a.loot, a.swapper, ETH('0.5'), h.toSwapperEth, 'transaction'),
    hop('TUSD', a.loot, a.swapper, h.SWAP_IN, h.toSwapperTok, 'token_transfer'),
    hop('TUSD', a.swapper, c.swap, h.SWAP_IN, h.swapRec, 'token_transfer', 'swap in'),
    hop('ETH_from_swap', c.swap, a.proceeds, h.swapOut, h.swapRec, 'internal', 'swap out: new asset, derived from the stolen TUSD'),
    ...h.attackerMix.map((r) => hop('ETH', a.feeder, c.mixer, DENOM, r, 'transaction', 'mixer deposit')),
    hop('ETH', a.loot, c.fAtt, ETH('50'), h.toFAttEth, 'transaction', 'exchange deposit (forwarder)'),
    hop('ETH', c.fAtt, a.hot, ETH('50'), h.toFAttEth, 'internal', 'forwarded to the hot wallet'),
    hop('TUSD', a.loot, c.fAtt, h.FWD_TOK, h.toFAttTok, 'token_transfer', 'exchange deposit (forwarder)'),
    hop('ETH', a.feeder, a.dAttEth, ETH('60'), h.toDAttEth, 'transaction', 'exchange deposit (eoa)'),
    ...h.attackerWithdrawals.map((r, i) => hop('ETH', c.mixer, a.mixOut[i], DENOM, r, 'internal', 'mixer withdrawal (attacker\'s by the secret; a pool to taint tracing)')),
    hop('TUSD', a.loot, a.dAttTok, h.EOA_TOK, h.toDAttTok, 'token_transfer', 'exchange deposit (eoa)'),
    hop('ETH_from_swap', a.proceeds, c.fAtt, h.PROCEEDS_TO_EXCHANGE, h.proceedsToFAtt, 'transaction', 'exchange deposit (forwarder)'),
    hop('ETH_from_swap', c.fAtt, a.hot, h.PROCEEDS_TO_EXCHANGE, h.proceedsToFAtt, 'internal', 'forwarded to the hot wallet'),
    hop('ETH', a.dAttEth, a.hot, h.sweepAttEth.amount, h.sweepAttEth.rec, 'transaction', 'exchange sweep'),
    hop('TUSD', c.fAtt, a.hot, h.FWD_TOK, h.sweepFAtt, 'token_transfer', 'exchange sweep (sweepToken)'),
    hop('TUSD', a.dAttTok, a.hot, h.EOA_TOK, h.sweepAttTok, 'token_transfer', 'exchange sweep'),
  ];
  const hopOrder = new Map(S.txs.map((t, i) => [t.hash, i]));
  hops.sort((x, y) => hopOrder.get(x.tx) - hopOrder.get(y.tx));

  // --- mixer -----------------------------------------------------------------------------
  let poolInnocent = 0n;
  let poolTainted = 0n;
  const mixerEvents = mixerLog
    .slice()
    .sort((x, y) => hopOrder.get(x.rec.hash) - hopOrder.get(y.rec.hash))
    .map((e) => {
      const d = e.event === 'deposit' ? 1n : -1n;
      if (e.tainted) poolTainted += d * e.amount;
      else poolInnocent += d * e.amount;
      return {
        event: e.event, tx: e.rec.hash, block: e.rec.block, ...(e.from ? { from: e.from } : { to: e.to, relayer: addr(a.relayer) }), amount: str(e.amount), commitment: e.commitment,
        owner: e.owner, tainted_by_truth: e.tainted, pool_after: { innocent: str(poolInnocent), tainted: str(poolTainted) },
      };
    });
  const mixerSum = (ev, tainted) => str(sum(mixerLog.filter((e) => e.event === ev && e.tainted === tainted).map((e) => e.amount)));

  // --- chain-wide lists ------------------------------------------------------------------
  const internalTransfers = [];
  const revertedTransfers = [];
  const tokenTransfers = [];
  for (const t of S.txs) {
    for (const f of t.internal) internalTransfers.push({ tx: t.hash, block: t.block, from: f.from, to: f.to, value: str(f.value), kind: f.kind });
    for (const f of t.reverted) revertedTransfers.push({ tx: t.hash, block: t.block, from: f.from, to: f.to, value: str(f.value), kind: f.kind, reason: f.reason });
    t.tokens.forEach((x, i) => tokenTransfers.push({ tx: t.hash, block: t.block, log_index: t.tokenLogIndexes[i], token: S.tokenAddress, from: x.from, to: x.to, value: str(x.value) }));
  }
  const failed = S.txs.filter((t) => t.status === 0).map((t) => ({
    tx: t.hash, block: t.block, from: t.from, to: t.to, label: t.label, reason: t.reason, value_not_moved: str(t.value), fee_paid: str(t.fee),
    attempted: t.notMoved.map((m) => ({ asset: m.asset, from: lc(m.from), to: lc(m.to), amount: str(m.amount) })),
  }));

  const byActor = new Map();
  for (const [address, info] of S.names) {
    if (!byActor.has(info.actor)) byActor.set(info.actor, []);
    byActor.get(info.actor).push({ address, ...info, actor: undefined });
  }

  return {
    format: 'tracehound-evm-ground-truth/1',
    generator: 'tools/evm/scenario.mjs',
    chain_id: CHAIN_ID,
    anvil: { version: meta.anvilVersion, args: ANVIL_ARGS, command: meta.anvilCommand },
    solc_version: meta.solcVersion,
    genesis_timestamp: GENESIS_TIMESTAMP,
    scenario_blocks: { first: S.blocks[0].number, last: S.blocks[S.blocks.length - 1].number },
    bulk: null, // filled in by main()
    assets: {
      ETH: { kind: 'native', decimals: 18 },
      TUSD: { kind: 'erc20', address: S.tokenAddress, name: 'Test USD', symbol: 'TUSD', decimals: 6 },
      ETH_from_swap: { kind: 'native', decimals: 18, note: 'ETH paid out by the swap for stolen TUSD: ordinary ETH, tainted only through the token-to-ETH swap' },
    },
    actors: Object.fromEntries(byActor),
    addresses: Object.fromEntries([...S.names].map(([address, i]) => [address, i])),
    contracts: S.contracts.map((x) => ({ ...x, address: lc(x.address), deployer: lc(x.deployer) })),
    heist: {
      victim: 'bridge',
      victim_address: c.bridge,
      attacker_exploiter: addr(a.exploiter),
      seed_transactions: [h.exploitEth.hash, h.exploitTok.hash],
      seed_addresses: [addr(a.loot)],
      failed_attempt: h.failedAttempt.hash,
      stolen: { ETH: str(h.stolenEth), TUSD: str(h.stolenTok) },
      flows: {
        ETH: { total: str(h.stolenEth), destinations: ethDest },
        TUSD: { total: str(h.stolenTok), destinations: tokDest },
        ETH_from_swap: { total: str(h.swapOut), source_tx: h.swapRec.hash, destinations: proceedsDest },
      },
      hops,
      only_stolen_funds: [addr(a.loot), addr(a.feeder), addr(a.swapper), addr(a.proceeds), addr(a.dAttEth)],
      ambiguous: [
        { what: 'mixer', address: c.mixer, note: `Deposits are pooled. By truth (the revealed secret links each withdrawal to its deposit) the attacker deposited ${mixerSum('deposit', true)} wei and withdrew ${mixerSum('withdrawal', true)} wei to attacker_mixer_withdrawal_1..8; innocent users deposited ${mixerSum('deposit', false)} wei and withdrew ${mixerSum('withdrawal', false)} wei (carol_fresh, frank_fresh). A pool-level tracer (FIFO, haircut, poison) splits the withdrawals differently; mixer.events gives the pool composition after every event.` },
        { what: 'exchange_hot_wallet', address: addr(a.hot), note: 'The hot wallet mixes the tainted deposits with the exchange\'s own funds; tracing should stop there. After the deposits it sends clean ETH (gas top-up) to exchange_deposit_attacker_tusd, which a poison tracer that does not stop at the exchange would taint.' },
        { what: 'swap', address: c.swap, note: 'Stolen TUSD entered the pool (innocent liquidity) and ETH came out to attacker_swap_proceeds in the same transaction; only a tracer that follows token-to-ETH swaps sees it (flows.ETH_from_swap). The pool keeps the stolen TUSD.' },
        { what: 'gas', note: 'Fees of transactions sent by attacker addresses are paid out of stolen ETH (flows.ETH gas_fees); the sweep fee of exchange_deposit_attacker_eth is paid out of the tainted deposit (sweep_fee).' },
      ],
    },
    mixer: {
      address: c.mixer,
      denomination: str(DENOM),
      relayer: addr(a.relayer),
      deposited: { tainted: mixerSum('deposit', true), innocent: mixerSum('deposit', false) },
      withdrawn: { tainted: mixerSum('withdrawal', true), innocent: mixerSum('withdrawal', false) },
      still_in_pool: { tainted: str(poolTainted), innocent: str(poolInnocent) },
      events: mixerEvents,
    },
    failed_transactions: failed,
    reverted_internal_transfers: revertedTransfers,
    internal_transfers: internalTransfers,
    token_transfers: tokenTransfers,
    transactions: S.txs.map((t) => ({
      hash: t.hash, block: t.block, index: t.index, type: t.type, from: t.from, to: t.to, created: t.createdAddress, value: str(t.value), nonce: t.nonce,
      status: t.status, gas_limit: str(t.gas), gas_used: str(t.gasUsed), effective_gas_price: str(t.effectiveGasPrice), fee: str(t.fee), burnt_fee: str(t.burnt), priority_fee: str(t.priorityFee),
      phase: t.phase, label: t.label,
      ...(t.accessList ? { access_list: t.accessList.map((e) => ({ address: lc(e.address), storage_keys: e.storageKeys })) } : {}),
      ...(t.authorizations.length ? { authorizations: t.authorizations } : {}),
    })),
    blocks: S.blocks.map((b) => ({ ...b })), // a copy: bulk setup appends to S.blocks later
    final_balances: {
      block: S.blocks[S.blocks.length - 1].number,
      note: 'at the end of the scenario, before any bulk blocks; ETH and TUSD in base units',
      balances: Object.fromEntries([...S.ledger].sort().map(([address, l]) => [address, { name: nameOf(address), ETH: str(l.eth), TUSD: str(l.tok) }])),
    },
  };
}

// ---------------------------------------------------------------------------------------
// Bulk blocks (benchmarks)
// ---------------------------------------------------------------------------------------

async function bulk(A, n, ctx) {
  if (n === 0) return null;
  const t0 = Date.now();
  const devAddr = (i) => mnemonicToAccount(MNEMONIC, { addressIndex: i }).address;
  const users = [];
  for (let i = 10; i < 30; i++) users.push(lc(devAddr(i)));
  const { deployer, hot } = ctx.actors;
  const token = ctx.contracts.token;
  S.phase = 'bulk';
  // setup block: TUSD for the bulk users, four forwarders for them (signed by the script like the scenario)
  for (const u of users) await send(deployer, { to: token, data: fn(A, 'Token', 'transfer', [u, TUSD('100000')]), gas: 100_000 }, { label: 'bulk setup: TUSD', tokens: [{ from: deployer.address, to: u, value: TUSD('100000') }] });
  const fwdInit = encodeDeployData({ abi: A.DepositForwarder.abi, bytecode: A.DepositForwarder.bytecode, args: [hot.address] });
  const forwarders = [];
  for (let k = 0; k < 4; k++) {
    const salt = keccak256(stringToHex(`forwarder/bulk-${k}`));
    forwarders.push(lc(getContractAddress({ opcode: 'CREATE2', from: ctx.contracts.factory, salt, bytecode: fwdInit })));
    await send(hot, { to: ctx.contracts.factory, data: fn(A, 'ForwarderFactory', 'create', [salt]), gas: 400_000 }, { label: 'bulk setup: forwarder' });
  }
  const setupBlock = await mine();
  // the mixed blocks: sent from the unlocked dev accounts 10..29, signed by anvil
  const nonce = new Map(users.map((u) => [u, 0]));
  const take = (u) => {
    const v = nonce.get(u);
    nonce.set(u, v + 1);
    return toHex(v);
  };
  const common = { maxFeePerGas: toHex(MAX_FEE), maxPriorityFeePerGas: toHex(MAX_PRIORITY_FEE) };
  let txCount = 0;
  let first = null;
  let last = null;
  for (let b = 0; b < n; b++) {
    const calls = [];
    for (let k = 0; k < 3; k++) {
      const s = users[(b * 6 + k) % 20];
      const r = users[(b * 6 + k + 1 + (b % 19)) % 20];
      const value = BigInt(1 + ((b * 7 + k * 13) % 1000)) * 10n ** 12n;
      const legacy = (b + k) % 5 === 0;
      calls.push(['eth_sendTransaction', [{ from: s, to: r, value: toHex(value), gas: toHex(21_000), nonce: take(s), ...(legacy ? { gasPrice: toHex(LEGACY_GAS_PRICE) } : common) }]]);
    }
    for (let k = 0; k < 2; k++) {
      const s = users[(b * 6 + 3 + k) % 20];
      const r = users[(b * 6 + 3 + k + 1 + ((b + 7) % 19)) % 20];
      const value = BigInt(1 + ((b * 11 + k) % 500)) * 10_000n;
      calls.push(['eth_sendTransaction', [{ from: s, to: token, data: fn(A, 'Token', 'transfer', [r, value]), gas: toHex(100_000), nonce: take(s), ...common }]]);
    }
    {
      const s = users[(b * 6 + 5) % 20];
      const value = BigInt(1 + (b % 100)) * 10n ** 15n;
      calls.push(['eth_sendTransaction', [{ from: s, to: forwarders[b % 4], value: toHex(value), gas: toHex(80_000), nonce: take(s), ...common }]]);
    }
    await rpcBatch(calls);
    S.ts += BLOCK_TIME;
    await rpc('evm_mine', [S.ts]);
    txCount += calls.length;
    const num = setupBlock + b + 1;
    if (first === null) first = num;
    last = num;
    if ((b + 1) % 1000 === 0 || b + 1 === n) {
      const secs = (Date.now() - t0) / 1000;
      console.log(`bulk: ${b + 1}/${n} blocks, ${txCount} txs, ${secs.toFixed(1)} s`);
    }
  }
  const lastBlock = await rpc('eth_getBlockByNumber', ['latest', false]);
  assert(Number(lastBlock.number) === last, 'bulk block count');
  assert(lastBlock.transactions.length === 6, 'a bulk block holds 6 transactions');
  const lastReceipts = await rpc('eth_getBlockReceipts', [lastBlock.number]);
  assert(lastReceipts.every((r) => Number(r.status) === 1), 'bulk transactions succeed');
  const seconds = (Date.now() - t0) / 1000;
  return {
    setup_block: setupBlock,
    first,
    last,
    blocks: n,
    transactions: txCount,
    per_block: { native_transfers: 3, token_transfers: 2, forwarder_deposits: 1, internal_transfers: 1 },
    senders: users,
    forwarders,
    last_block_hash: lastBlock.hash,
    seconds,
  };
}

// ---------------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  RPC_URL = args.rpc;
  const [chainId, head, clientVersion] = await rpcBatch([['eth_chainId', []], ['eth_blockNumber', []], ['web3_clientVersion', []]]);
  assert(Number(chainId) === CHAIN_ID, `chain id ${Number(chainId)}, expected ${CHAIN_ID}`);
  assert(Number(head) === 0, `anvil must be fresh (head is block ${Number(head)}); start it as described at the top of scenario.mjs`);
  const genesis = await rpc('eth_getBlockByNumber', ['0x0', false]);
  assert(Number(genesis.timestamp) === GENESIS_TIMESTAMP, 'anvil must be started with --timestamp 1655942400');
  await rpc('evm_setAutomine', [false]);

  const t0 = Date.now();
  const { artifacts, solcVersion } = compile();
  console.log(`compiled ${Object.keys(artifacts).length} contracts with solc ${solcVersion} in ${Date.now() - t0} ms`);
  const ctx = await scenario(artifacts);
  const anvilCommand = `anvil --port PORT ${ANVIL_ARGS.map((x) => (/\s/.test(x) ? `"${x}"` : x)).join(' ')}`;
  // the ground truth describes the scenario alone: build it before any bulk block changes the ledger
  const truth = groundTruth(ctx, { anvilVersion: clientVersion, anvilCommand, solcVersion });
  const bulkInfo = await bulk(artifacts, args.bulkBlocks, ctx);
  if (bulkInfo) {
    console.log(`bulk: ${bulkInfo.blocks} blocks, ${bulkInfo.transactions} transactions in ${bulkInfo.seconds.toFixed(1)} s`);
    delete bulkInfo.seconds; // keep the file deterministic
  }
  truth.bulk = bulkInfo;
  fs.writeFileSync(args.out, `${JSON.stringify(truth, null, 2)}\n`);
  console.log(`wrote ${args.out}: blocks ${truth.scenario_blocks.first}..${truth.scenario_blocks.last}, stolen ${truth.heist.stolen.ETH} wei + ${truth.heist.stolen.TUSD} TUSD units`);
}

main().catch((e) => {
  console.error(e.stack ?? e);
  process.exit(1);
});
