//! The economy of the simulated chain and the ground truth it records.

use crate::writer::{BackgroundWriter, BlkWriter};
use crate::Error;
use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tracehound_core::script::classify;
use tracehound_core::UtxoChain;

/// Settings of a simulated chain.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Blocks after the genesis block.
    pub blocks: u64,
    /// Random seed: the same seed gives byte-identical files.
    pub seed: u64,
    /// Average transactions per block (besides the coinbase).
    pub txs_per_block: u32,
    /// User wallets (0: one per 20 expected transactions, at least 200).
    pub users: u32,
    /// Exchanges (at least 2; the first is the heist's victim).
    pub exchanges: u32,
    /// XOR-obfuscate the block files like Bitcoin Core 28+.
    pub xor: bool,
    /// Write a stale block (a competing block at the same height) every this many blocks (0: never).
    pub stale_every: u64,
    /// Store about one block in this many after its child, out of height order (0: never).
    pub out_of_order_every: u64,
    /// Height of the heist (0: two fifths into the chain; needs at least 150 blocks).
    pub heist_at: u64,
    /// Start a new `blk*.dat` file past this size (Bitcoin Core: 128 MiB).
    pub max_file_bytes: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            blocks: 2000,
            seed: 7,
            txs_per_block: 50,
            users: 0,
            exchanges: 4,
            xor: false,
            stale_every: 150,
            out_of_order_every: 40,
            heist_at: 0,
            max_file_bytes: 128 << 20,
        }
    }
}

/// Who owns which addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WalletTruth {
    /// Wallet id.
    pub id: u32,
    /// `user`, `miner`, `exchange` or `attacker`.
    pub kind: String,
    /// Name (exchanges and miners have one).
    pub name: String,
    /// Every address of the wallet, in creation order.
    pub addresses: Vec<String>,
}

/// A deposit of stolen coins at an exchange.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeistDeposit {
    /// Exchange name.
    pub exchange: String,
    /// The deposit address.
    pub address: String,
    /// Transaction.
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Satoshi deposited.
    pub value_sat: u64,
}

/// Stolen coins still held by the attacker at the chain's tip.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeldOutput {
    /// Transaction.
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Attacker address.
    pub address: String,
    /// Satoshi.
    pub value_sat: u64,
}

/// Where every stolen satoshi went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heist {
    /// Height of the theft.
    pub height: u64,
    /// The theft transaction; its output 0 holds all the loot.
    pub txid: String,
    /// Victim exchange.
    pub victim: String,
    /// Victim's hot-wallet address.
    pub victim_address: String,
    /// The attacker's wallet id.
    pub attacker_wallet: u32,
    /// Satoshi stolen (value of the theft output).
    pub stolen_sat: u64,
    /// Deposits at exchanges.
    pub deposits: Vec<HeistDeposit>,
    /// Deposited satoshi per exchange.
    pub deposited_by_exchange: BTreeMap<String, u64>,
    /// Fees the attacker paid.
    pub fees_sat: u64,
    /// Outputs still held.
    pub held: Vec<HeldOutput>,
    /// Sum of `held`.
    pub held_sat: u64,
    /// Transactions of the peel chains.
    pub peel_chain_txids: Vec<String>,
    /// CoinJoins the attacker took part in.
    pub coinjoin_txids: Vec<String>,
}

impl Heist {
    /// stolen − deposited − fees − held: zero when every satoshi is accounted for.
    pub fn unaccounted(&self) -> i128 {
        self.stolen_sat as i128 - self.deposits.iter().map(|d| d.value_sat as i128).sum::<i128>() - self.fees_sat as i128 - self.held_sat as i128
    }
}

/// The ground truth of a simulated chain (`ground_truth.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Chain name (`bitcoin_regtest`).
    pub chain: String,
    /// Seed used.
    pub seed: u64,
    /// Height of the tip.
    pub tip_height: u64,
    /// Tip hash.
    pub tip_hash: String,
    /// Transactions on the best chain, coinbases included.
    pub transactions: u64,
    /// Stale blocks written.
    pub stale_blocks: u64,
    /// Blocks stored after their child.
    pub out_of_order_blocks: u64,
    /// Block files written.
    pub files: u32,
    /// Bytes written.
    pub bytes: u64,
    /// Files XOR-obfuscated.
    pub xor: bool,
    /// Every wallet.
    pub wallets: Vec<WalletTruth>,
    /// Exchange name → hot-wallet address.
    pub exchange_hot_wallets: BTreeMap<String, String>,
    /// Every CoinJoin transaction.
    pub coinjoins: Vec<String>,
    /// The heist, if the chain is long enough to hold one.
    pub heist: Option<Heist>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    User,
    Miner,
    Exchange,
    Attacker,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AddrType {
    P2pkh,
    P2wpkh,
    P2shP2wpkh,
    P2tr,
}

#[derive(Clone, Copy, Debug)]
struct Utxo {
    outpoint: OutPoint,
    value: u64,
    addr: u32,
    height: u64,
    coinbase: bool,
}

struct Wallet {
    kind: Kind,
    name: String,
    addr_type: AddrType,
    addrs: Vec<u32>,
    utxos: Vec<Utxo>,
}

struct Exchange {
    wallet: u32,
    hot: u32,
}

#[derive(Clone, Copy, Debug)]
enum Route {
    Peel(u32),
    CoinJoin,
    Deposit(u32),
    Keep,
}

struct AttackerState {
    wallet: u32,
    heist: Heist,
    /// Loot outputs with what to do with them next.
    plans: Vec<(OutPoint, Route)>,
    split_done: bool,
    loot: Option<Utxo>,
}

const DUST: u64 = 546;
const FEE_RATE: u64 = 10; // sat/vB
const MATURITY: u64 = 100;

struct Sim {
    rng: ChaCha8Rng,
    chain: UtxoChain,
    wallets: Vec<Wallet>,
    addrs: Vec<(ScriptBuf, u32, AddrType)>,
    exchanges: Vec<Exchange>,
    miners: Vec<u32>,
    users: u32,
    first_user: u32,
    deposit_addrs: HashMap<(u32, u32), u32>,
    height: u64,
    block_txs: Vec<Transaction>,
    /// Txids of `block_txs`, computed once when each is built.
    block_txids: Vec<Txid>,
    block_fees: u64,
    coinjoins: Vec<String>,
    attacker: Option<AttackerState>,
    sig: [u8; 72],
    pubkey: [u8; 33],
}

fn estimate_fee(inputs: usize, outputs: usize) -> u64 {
    FEE_RATE * (11 + 68 * inputs as u64 + 31 * outputs as u64)
}

impl Sim {
    fn new_wallet(&mut self, kind: Kind, name: String) -> u32 {
        let addr_type = match self.rng.random_range(0..10) {
            0..=2 => AddrType::P2pkh,
            3..=6 => AddrType::P2wpkh,
            7..=8 => AddrType::P2shP2wpkh,
            _ => AddrType::P2tr,
        };
        self.wallets.push(Wallet { kind, name, addr_type, addrs: vec![], utxos: vec![] });
        (self.wallets.len() - 1) as u32
    }

    fn fresh_addr(&mut self, w: u32) -> u32 {
        let t = self.wallets[w as usize].addr_type;
        let mut h = [0u8; 32];
        self.rng.fill(&mut h);
        let script = match t {
            AddrType::P2pkh => Builder::new()
                .push_opcode(bitcoin::opcodes::all::OP_DUP)
                .push_opcode(bitcoin::opcodes::all::OP_HASH160)
                .push_slice(<[u8; 20]>::try_from(&h[..20]).unwrap())
                .push_opcode(bitcoin::opcodes::all::OP_EQUALVERIFY)
                .push_opcode(bitcoin::opcodes::all::OP_CHECKSIG)
                .into_script(),
            AddrType::P2wpkh => Builder::new().push_int(0).push_slice(<[u8; 20]>::try_from(&h[..20]).unwrap()).into_script(),
            AddrType::P2shP2wpkh => Builder::new()
                .push_opcode(bitcoin::opcodes::all::OP_HASH160)
                .push_slice(<[u8; 20]>::try_from(&h[..20]).unwrap())
                .push_opcode(bitcoin::opcodes::all::OP_EQUAL)
                .into_script(),
            AddrType::P2tr => Builder::new().push_int(1).push_slice(h).into_script(),
        };
        self.addrs.push((script, w, t));
        let id = (self.addrs.len() - 1) as u32;
        self.wallets[w as usize].addrs.push(id);
        id
    }

    /// A fresh address most of the time, else one the wallet already used.
    fn receive_addr(&mut self, w: u32, reuse_percent: u32) -> u32 {
        let n = self.wallets[w as usize].addrs.len();
        if n > 0 && self.rng.random_range(0..100) < reuse_percent {
            self.wallets[w as usize].addrs[self.rng.random_range(0..n)]
        } else {
            self.fresh_addr(w)
        }
    }

    fn deposit_addr(&mut self, user: u32, ex: u32) -> u32 {
        if let Some(a) = self.deposit_addrs.get(&(user, ex)) {
            return *a;
        }
        let a = self.fresh_addr(self.exchanges[ex as usize].wallet);
        self.deposit_addrs.insert((user, ex), a);
        a
    }

    /// Takes UTXOs of `w` (newest first) until `target` is reached.
    fn select(&mut self, w: u32, target: u64, max_inputs: usize, filter: impl Fn(&Utxo) -> bool) -> Option<Vec<Utxo>> {
        let height = self.height;
        let wallet = &mut self.wallets[w as usize];
        let mut picked = vec![];
        let mut sum = 0;
        for i in (0..wallet.utxos.len()).rev() {
            let u = &wallet.utxos[i];
            if (u.coinbase && u.height + MATURITY > height) || !filter(u) {
                continue;
            }
            picked.push(i);
            sum += u.value;
            if sum >= target || picked.len() >= max_inputs {
                break;
            }
        }
        if sum < target {
            return None;
        }
        picked.sort_unstable_by(|a, b| b.cmp(a));
        Some(picked.into_iter().map(|i| wallet.utxos.swap_remove(i)).collect())
    }

    fn unlock(&self, addr: u32) -> (ScriptBuf, Witness) {
        let sig = &self.sig[..];
        let pk = &self.pubkey[..];
        match self.addrs[addr as usize].2 {
            AddrType::P2pkh => (Builder::new().push_slice(PushBytesBuf::try_from(sig.to_vec()).unwrap()).push_slice(self.pubkey).into_script(), Witness::new()),
            AddrType::P2wpkh => (ScriptBuf::new(), Witness::from_slice(&[sig, pk])),
            AddrType::P2shP2wpkh => {
                let mut redeem = vec![0x00, 0x14];
                redeem.extend_from_slice(&self.pubkey[1..21]);
                (Builder::new().push_slice(PushBytesBuf::try_from(redeem).unwrap()).into_script(), Witness::from_slice(&[sig, pk]))
            }
            AddrType::P2tr => (ScriptBuf::new(), Witness::from_slice(&[&sig[..64]])),
        }
    }

    /// Builds a transaction spending `inputs` to `outputs` (address, value), credits the
    /// receiving wallets, and queues it in the block (see [`Sim::last_tx`]). Outputs are written
    /// in the given order.
    fn emit(&mut self, inputs: &[Utxo], outputs: &[(u32, u64)]) -> Txid {
        let input: Vec<TxIn> = inputs
            .iter()
            .map(|u| {
                let (script_sig, witness) = self.unlock(u.addr);
                TxIn { previous_output: u.outpoint, script_sig, sequence: Sequence(0xffff_fffd), witness }
            })
            .collect();
        let output = outputs.iter().map(|(a, v)| TxOut { value: Amount::from_sat(*v), script_pubkey: self.addrs[*a as usize].0.clone() }).collect();
        let tx = Transaction { version: TxVersion::TWO, lock_time: LockTime::ZERO, input, output };
        let txid = tx.compute_txid();
        let fee = inputs.iter().map(|u| u.value).sum::<u64>() - outputs.iter().map(|o| o.1).sum::<u64>();
        self.block_fees += fee;
        for (vout, (a, v)) in outputs.iter().enumerate() {
            let w = self.addrs[*a as usize].1;
            self.wallets[w as usize].utxos.push(Utxo {
                outpoint: OutPoint { txid, vout: vout as u32 },
                value: *v,
                addr: *a,
                height: self.height,
                coinbase: false,
            });
        }
        self.block_txs.push(tx);
        self.block_txids.push(txid);
        txid
    }

    /// The transaction [`Sim::emit`] built last.
    fn last_tx(&self) -> &Transaction {
        self.block_txs.last().expect("a transaction was emitted")
    }

    /// Pays `payments` from wallet `w`, with change to `change_addr`; `None` without funds.
    fn pay(&mut self, w: u32, payments: &[(u32, u64)], change_addr: Option<u32>) -> Option<Txid> {
        let total: u64 = payments.iter().map(|p| p.1).sum();
        let inputs = self.select(w, total + estimate_fee(3, payments.len() + 1), 20, |_| true)?;
        let fee = estimate_fee(inputs.len(), payments.len() + 1);
        let sum: u64 = inputs.iter().map(|u| u.value).sum();
        if sum < total + fee {
            self.wallets[w as usize].utxos.extend(inputs);
            return None;
        }
        let mut outs = payments.to_vec();
        let change = sum - total - fee;
        if change > DUST {
            let ca = change_addr.unwrap_or_else(|| self.fresh_addr(w));
            let pos = self.rng.random_range(0..=outs.len());
            outs.insert(pos, (ca, change));
        }
        // Dust change is left to the miner as fee.
        Some(self.emit(&inputs, &outs))
    }

    fn random_user(&mut self, min_balance_hint: bool) -> u32 {
        let first_user = self.first_user;
        for _ in 0..8 {
            let u = first_user + self.rng.random_range(0..self.users);
            if !min_balance_hint || !self.wallets[u as usize].utxos.is_empty() {
                return u;
            }
        }
        first_user + self.rng.random_range(0..self.users)
    }

    fn round_amount(&mut self) -> u64 {
        let unit = [100_000u64, 1_000_000, 10_000_000, 50_000_000][self.rng.random_range(0..4)];
        unit * self.rng.random_range(1..20)
    }

    fn random_amount(&mut self) -> u64 {
        self.rng.random_range(10_000..200_000_000)
    }

    fn step_user_payment(&mut self) {
        let from = self.random_user(true);
        let to = self.random_user(false);
        let amount = if self.rng.random_bool(0.6) { self.round_amount() } else { self.random_amount() };
        let dest = self.receive_addr(to, 25);
        let change = if self.rng.random_bool(0.85) { None } else { Some(self.receive_addr(from, 100)) };
        self.pay(from, &[(dest, amount)], change);
    }

    fn step_deposit(&mut self) {
        let from = self.random_user(true);
        let ex = self.rng.random_range(0..self.exchanges.len() as u32);
        let dest = self.deposit_addr(from, ex);
        let amount = if self.rng.random_bool(0.5) { self.round_amount() } else { self.random_amount() };
        self.pay(from, &[(dest, amount)], None);
    }

    /// An exchange sweeps deposit-address coins into its hot wallet; half of the sweeps also
    /// consolidate a hot-wallet coin (which links the hot wallet to the deposit addresses).
    fn step_sweep(&mut self, ex: u32) {
        let Exchange { wallet, hot } = self.exchanges[ex as usize];
        let consolidate = self.rng.random_bool(0.5);
        let utxos = &mut self.wallets[wallet as usize].utxos;
        let mut deposits: Vec<usize> = (0..utxos.len()).filter(|&i| utxos[i].addr != hot).take(30).collect();
        if deposits.len() < 2 {
            return;
        }
        if let Some(h) = (0..utxos.len()).find(|&i| utxos[i].addr == hot).filter(|_| consolidate) {
            deposits.push(h);
            deposits.sort_unstable();
        }
        let inputs: Vec<Utxo> = deposits.iter().rev().map(|&i| utxos.swap_remove(i)).collect();
        let sum: u64 = inputs.iter().map(|u| u.value).sum();
        let fee = estimate_fee(inputs.len(), 1);
        if sum <= fee + DUST {
            self.wallets[wallet as usize].utxos.extend(inputs);
            return;
        }
        self.emit(&inputs, &[(hot, sum - fee)]);
    }

    fn step_withdrawal(&mut self) {
        let ex = self.rng.random_range(0..self.exchanges.len() as u32);
        let Exchange { wallet, hot } = self.exchanges[ex as usize];
        let n = self.rng.random_range(1..6);
        let mut payments = vec![];
        for _ in 0..n {
            let u = self.random_user(false);
            let a = self.receive_addr(u, 10);
            let amount = self.random_amount();
            payments.push((a, amount));
        }
        let total: u64 = payments.iter().map(|p| p.1).sum();
        let Some(inputs) = self.select(wallet, total + estimate_fee(5, n + 1), 10, |u| u.addr == hot) else { return };
        let sum: u64 = inputs.iter().map(|u| u.value).sum();
        let fee = estimate_fee(inputs.len(), n + 1);
        if sum < total + fee {
            self.wallets[wallet as usize].utxos.extend(inputs);
            return;
        }
        let change = sum - total - fee;
        if change > DUST {
            payments.push((hot, change));
        }
        self.emit(&inputs, &payments);
    }

    fn step_miner_payout(&mut self) {
        let m = self.miners[self.rng.random_range(0..self.miners.len())];
        let n = self.rng.random_range(5..40);
        let mut payments = vec![];
        for _ in 0..n {
            if self.rng.random_bool(0.25) {
                let ex = self.rng.random_range(0..self.exchanges.len());
                payments.push((self.exchanges[ex].hot, self.rng.random_range(100_000_000..1_000_000_000)));
            } else {
                let u = self.random_user(false);
                let a = self.receive_addr(u, 20);
                payments.push((a, self.rng.random_range(1_000_000..100_000_000)));
            }
        }
        let change = self.wallets[m as usize].addrs[0];
        self.pay(m, &payments, Some(change));
    }

    /// A CoinJoin of users (plus `extra`, an attacker UTXO); returns its txid and the extra's
    /// outputs (the transaction is [`Sim::last_tx`]).
    fn coinjoin(&mut self, extra: Option<Utxo>) -> Option<(Txid, Vec<(u32, u64)>)> {
        let denom = [1_000_000u64, 10_000_000, 50_000_000][self.rng.random_range(0..3)];
        let fee_each = estimate_fee(1, 2);
        let mut parts: Vec<(u32, Vec<Utxo>)> = vec![];
        for _ in 0..40 {
            if parts.len() >= self.rng.random_range(5..10) {
                break;
            }
            let u = self.random_user(true);
            if parts.iter().any(|p| p.0 == u) {
                continue;
            }
            if let Some(ins) = self.select(u, denom + fee_each + DUST, 3, |_| true) {
                parts.push((u, ins));
            }
        }
        if parts.len() < 3 {
            for (u, ins) in parts {
                self.wallets[u as usize].utxos.extend(ins);
            }
            return None;
        }
        let mut inputs = vec![];
        let mut denoms = vec![];
        let mut changes = vec![];
        for (u, ins) in &parts {
            let sum: u64 = ins.iter().map(|x| x.value).sum();
            inputs.extend(ins.iter().copied());
            let a = self.fresh_addr(*u);
            denoms.push((a, denom));
            let c = self.fresh_addr(*u);
            changes.push((c, sum - denom - fee_each));
        }
        let mut extra_outs = vec![];
        if let Some(x) = extra {
            let w = self.addrs[x.addr as usize].1;
            let k = ((x.value.saturating_sub(fee_each * 4)) / denom).min(8);
            for _ in 0..k {
                let a = self.fresh_addr(w);
                denoms.push((a, denom));
                extra_outs.push((a, denom));
            }
            let change = x.value - k * denom - fee_each * 4;
            let c = self.fresh_addr(w);
            changes.push((c, change));
            extra_outs.push((c, change));
            inputs.push(x);
        }
        // Equal outputs first, then changes, both shuffled: the layout of Wasabi-style rounds.
        for i in (1..denoms.len()).rev() {
            let j = self.rng.random_range(0..=i);
            denoms.swap(i, j);
        }
        let mut outs = denoms;
        outs.extend(changes);
        let txid = self.emit(&inputs, &outs);
        self.coinjoins.push(txid.to_string());
        Some((txid, extra_outs))
    }

    fn block_activity(&mut self, n: u32) {
        if self.height <= MATURITY {
            return;
        }
        for _ in 0..n {
            match self.rng.random_range(0..100) {
                0..=49 => self.step_user_payment(),
                50..=66 => self.step_deposit(),
                67..=76 => self.step_withdrawal(),
                77..=84 => {
                    let ex = self.rng.random_range(0..self.exchanges.len() as u32);
                    self.step_sweep(ex)
                }
                85..=94 => self.step_miner_payout(),
                _ => {
                    if self.rng.random_bool(0.3) {
                        self.coinjoin(None);
                    } else {
                        self.step_user_payment()
                    }
                }
            }
        }
    }

    fn addr_string(&self, a: u32) -> String {
        classify(&self.addrs[a as usize].0, &self.chain.address_params()).addresses.remove(0)
    }

    fn start_heist(&mut self) -> bool {
        let Exchange { wallet, hot } = self.exchanges[0];
        let Some(inputs) = self.select(wallet, 1, 60, |u| u.addr == hot) else { return false };
        // Drain every hot-wallet coin the attacker can reach in one transaction.
        let mut inputs = inputs;
        let more: Vec<usize> =
            (0..self.wallets[wallet as usize].utxos.len()).filter(|&i| self.wallets[wallet as usize].utxos[i].addr == hot).take(59).collect();
        for i in more.into_iter().rev() {
            inputs.push(self.wallets[wallet as usize].utxos.swap_remove(i));
        }
        let sum: u64 = inputs.iter().map(|u| u.value).sum();
        let fee = estimate_fee(inputs.len(), 1);
        if sum < fee + 100_000_000 {
            self.wallets[wallet as usize].utxos.extend(inputs);
            return false;
        }
        let attacker = self.new_wallet(Kind::Attacker, "attacker".into());
        self.wallets[attacker as usize].addr_type = AddrType::P2wpkh;
        let a0 = self.fresh_addr(attacker);
        let txid = self.emit(&inputs, &[(a0, sum - fee)]);
        let loot = *self.wallets[attacker as usize].utxos.last().expect("loot output");
        let heist = Heist {
            height: self.height,
            txid: txid.to_string(),
            victim: self.wallets[wallet as usize].name.clone(),
            victim_address: self.addr_string(hot),
            attacker_wallet: attacker,
            stolen_sat: sum - fee,
            deposits: vec![],
            deposited_by_exchange: BTreeMap::new(),
            fees_sat: 0,
            held: vec![],
            held_sat: 0,
            peel_chain_txids: vec![],
            coinjoin_txids: vec![],
        };
        self.attacker = Some(AttackerState { wallet: attacker, heist, plans: vec![], split_done: false, loot: Some(loot) });
        true
    }

    fn take_attacker_utxo(&mut self, op: OutPoint) -> Option<Utxo> {
        let w = self.attacker.as_ref()?.wallet;
        let utxos = &mut self.wallets[w as usize].utxos;
        let i = utxos.iter().position(|u| u.outpoint == op)?;
        Some(utxos.swap_remove(i))
    }

    fn heist_step(&mut self) {
        let Some(mut st) = self.attacker.take() else { return };
        let w = st.wallet;
        if !st.split_done {
            let loot = st.loot.take().expect("loot");
            let op = loot.outpoint;
            self.attacker = Some(st);
            let loot = self.take_attacker_utxo(op).expect("loot is held");
            let weights: Vec<u64> = (0..8).map(|_| self.rng.random_range(5..20)).collect();
            let total_w: u64 = weights.iter().sum();
            let fee = estimate_fee(1, 8);
            let spendable = loot.value - fee;
            let mut outs = vec![];
            let mut left = spendable;
            for (i, wt) in weights.iter().enumerate() {
                let v = if i == 7 { left } else { spendable * wt / total_w };
                left -= v;
                let a = self.fresh_addr(w);
                outs.push((a, v));
            }
            let txid = self.emit(&[loot], &outs);
            let mut st = self.attacker.take().expect("state");
            st.heist.fees_sat += fee;
            let routes = [Route::Peel(8), Route::Peel(8), Route::CoinJoin, Route::CoinJoin, Route::Deposit(1), Route::Deposit(2), Route::Keep, Route::Keep];
            st.plans = routes.iter().enumerate().map(|(i, r)| (OutPoint { txid, vout: i as u32 }, *r)).collect();
            st.split_done = true;
            self.attacker = Some(st);
            return;
        }
        let plans = std::mem::take(&mut st.plans);
        self.attacker = Some(st);
        let mut next = vec![];
        for (op, route) in plans {
            match route {
                Route::Keep => next.push((op, route)),
                Route::Deposit(ex) => {
                    let Some(u) = self.take_attacker_utxo(op) else { continue };
                    let ex = ex % self.exchanges.len() as u32;
                    let dest = self.deposit_addr(w, ex);
                    let fee = estimate_fee(1, 1);
                    let txid = self.emit(&[u], &[(dest, u.value - fee)]);
                    self.record_deposit(txid, 0, ex, fee);
                }
                Route::Peel(0) => next.push((op, Route::Keep)),
                Route::Peel(n) => {
                    let Some(u) = self.take_attacker_utxo(op) else { continue };
                    let ex = self.rng.random_range(0..self.exchanges.len() as u32);
                    let dest = self.deposit_addr(w, ex);
                    let peel = u.value * self.rng.random_range(2..7) / 100;
                    let fee = estimate_fee(1, 2);
                    let rest_addr = self.fresh_addr(w);
                    let txid = self.emit(&[u], &[(dest, peel), (rest_addr, u.value - peel - fee)]);
                    self.record_deposit(txid, 0, ex, fee);
                    self.attacker.as_mut().expect("state").heist.peel_chain_txids.push(txid.to_string());
                    next.push((OutPoint { txid, vout: 1 }, Route::Peel(n - 1)));
                }
                Route::CoinJoin => {
                    let Some(u) = self.take_attacker_utxo(op) else { continue };
                    match self.coinjoin(Some(u)) {
                        Some((txid, outs)) => {
                            let vouts: Vec<u32> = outs
                                .iter()
                                .map(|(a, _)| {
                                    let script = &self.addrs[*a as usize].0;
                                    self.last_tx().output.iter().position(|o| &o.script_pubkey == script).expect("output") as u32
                                })
                                .collect();
                            let out_sum: u64 = outs.iter().map(|o| o.1).sum();
                            let st = self.attacker.as_mut().expect("state");
                            st.heist.fees_sat += u.value - out_sum;
                            st.heist.coinjoin_txids.push(txid.to_string());
                            // Half of the mixed coins go to an exchange next, the rest is kept.
                            for (k, vout) in vouts.into_iter().enumerate() {
                                let route = if k % 2 == 0 { Route::Deposit(3 + k as u32) } else { Route::Keep };
                                next.push((OutPoint { txid, vout }, route));
                            }
                        }
                        None => {
                            self.wallets[w as usize].utxos.push(u);
                            next.push((op, Route::CoinJoin));
                        }
                    }
                }
            }
        }
        self.attacker.as_mut().expect("state").plans = next;
    }

    /// Records output `vout` of [`Sim::last_tx`] (`txid`) as a heist deposit at exchange `ex`.
    fn record_deposit(&mut self, txid: Txid, vout: u32, ex: u32, fee: u64) {
        let txid = txid.to_string();
        let out = &self.last_tx().output[vout as usize];
        let value = out.value.to_sat();
        let address = classify(&out.script_pubkey, &self.chain.address_params()).addresses.remove(0);
        let exchange = self.wallets[self.exchanges[ex as usize].wallet as usize].name.clone();
        let st = self.attacker.as_mut().expect("state");
        st.heist.fees_sat += fee;
        *st.heist.deposited_by_exchange.entry(exchange.clone()).or_default() += value;
        st.heist.deposits.push(HeistDeposit { exchange, address, txid, vout, value_sat: value });
    }
}

fn subsidy(height: u64) -> u64 {
    let halvings = height / 210_000;
    if halvings >= 64 {
        0
    } else {
        (50 * 100_000_000u64) >> halvings
    }
}

fn bip34_script(height: u64, extra: u32) -> ScriptBuf {
    Builder::new().push_int(height as i64).push_slice(extra.to_le_bytes()).into_script()
}

fn mine(header: &mut Header) {
    let target = header.target();
    while !target.is_met_by(header.block_hash()) {
        header.nonce = header.nonce.wrapping_add(1);
    }
}

/// Builds and mines a block of `txs` (whose txids are `txids`) after a coinbase paying `payout`;
/// returns it with the coinbase's txid.
fn make_block(prev: BlockHash, time: u32, height: u64, payout: TxOut, extra: u32, mut txs: Vec<Transaction>, txids: &[Txid]) -> (Block, Txid) {
    let coinbase = Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: bip34_script(height, extra),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[0u8; 32]]),
        }],
        output: vec![payout],
    };
    txs.insert(0, coinbase);
    let header = Header {
        version: Version::from_consensus(0x2000_0000),
        prev_blockhash: prev,
        merkle_root: TxMerkleNode::all_zeros(),
        time,
        bits: CompactTarget::from_consensus(0x207f_ffff),
        nonce: 0,
    };
    let mut block = Block { header, txdata: txs };
    let witness_root = block.witness_root().expect("has coinbase");
    let commitment = Block::compute_witness_commitment(&witness_root, &[0u8; 32]);
    let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    script.extend_from_slice(commitment.as_byte_array());
    block.txdata[0].output.push(TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::from_bytes(script) });
    // The merkle root from the txids computed as the transactions were built, not hashed again.
    let coinbase_txid = block.txdata[0].compute_txid();
    let leaves = std::iter::once(coinbase_txid).chain(txids.iter().copied()).map(|t| TxMerkleNode::from_raw_hash(t.to_raw_hash()));
    block.header.merkle_root = bitcoin::merkle_tree::calculate_root(leaves).expect("has transactions");
    debug_assert_eq!(Some(block.header.merkle_root), block.compute_merkle_root());
    mine(&mut block.header);
    (block, coinbase_txid)
}

/// Encodes addresses on a thread of its own while the chain is built: base58/bech32 encoding of
/// every address for the ground truth would otherwise take about a third of the main thread.
struct AddressNames {
    scripts: Option<std::sync::mpsc::Sender<Vec<ScriptBuf>>>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
    sent: usize,
}

impl AddressNames {
    /// Starts the encoding thread for addresses of `chain`.
    fn start(chain: UtxoChain) -> AddressNames {
        let (scripts, queue) = std::sync::mpsc::channel::<Vec<ScriptBuf>>();
        let params = chain.address_params();
        let thread = std::thread::spawn(move || {
            let mut names = vec![];
            for batch in queue {
                names.extend(batch.iter().map(|s| classify(s, &params).addresses.remove(0)));
            }
            names
        });
        AddressNames { scripts: Some(scripts), thread: Some(thread), sent: 0 }
    }

    /// Queues the addresses created since the last call.
    fn send_new(&mut self, addrs: &[(ScriptBuf, u32, AddrType)]) {
        let batch = addrs[self.sent..].iter().map(|a| a.0.clone()).collect();
        self.sent = addrs.len();
        if let Some(s) = &self.scripts {
            s.send(batch).expect("address thread runs until finish");
        }
    }

    /// Every address's string, indexed by address id.
    fn finish(mut self, addrs: &[(ScriptBuf, u32, AddrType)]) -> Vec<String> {
        self.send_new(addrs);
        self.scripts.take();
        self.thread.take().expect("started").join().expect("address thread")
    }
}

/// Writes a simulated chain to `out/blocks/` and its ground truth to `out/ground_truth.json`.
pub fn simulate(cfg: &SimConfig, out: &Path) -> Result<GroundTruth, Error> {
    if cfg.exchanges < 2 {
        return Err(Error::Config("at least 2 exchanges are needed".into()));
    }
    let chain = UtxoChain::BitcoinRegtest;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut sig = [0u8; 72];
    rng.fill(&mut sig[..]);
    sig[0] = 0x30;
    sig[1] = 0x45;
    sig[71] = 0x01;
    let mut pubkey = [0u8; 33];
    rng.fill(&mut pubkey[..]);
    pubkey[0] = 0x02;
    let users = if cfg.users > 0 { cfg.users } else { ((cfg.blocks * cfg.txs_per_block as u64 / 20) as u32).clamp(200, 500_000) };
    let mut sim = Sim {
        rng,
        chain,
        wallets: vec![],
        addrs: vec![],
        exchanges: vec![],
        miners: vec![],
        users,
        first_user: 0,
        deposit_addrs: HashMap::new(),
        height: 0,
        block_txs: vec![],
        block_txids: vec![],
        block_fees: 0,
        coinjoins: vec![],
        attacker: None,
        sig,
        pubkey,
    };
    let exchange_names = ["Bitfront", "Coinvault", "Krakenly", "Hashbase", "Satoshex", "Blockmart", "Tradewell", "Orbitex"];
    for i in 0..cfg.exchanges {
        let name = exchange_names.get(i as usize).map(|s| s.to_string()).unwrap_or(format!("Exchange{i}"));
        let w = sim.new_wallet(Kind::Exchange, name);
        let hot = sim.fresh_addr(w);
        sim.exchanges.push(Exchange { wallet: w, hot });
    }
    for i in 0..5 {
        let w = sim.new_wallet(Kind::Miner, format!("Pool{i}"));
        sim.fresh_addr(w);
        sim.miners.push(w);
    }
    sim.first_user = sim.wallets.len() as u32;
    for i in 0..users {
        sim.new_wallet(Kind::User, format!("user{i}"));
    }
    let heist_at = if cfg.heist_at > 0 { cfg.heist_at } else { cfg.blocks * 2 / 5 };
    let heist_possible = cfg.blocks >= 150 && heist_at > MATURITY && heist_at < cfg.blocks;

    let blocks_dir = out.join("blocks");
    let mut writer =
        BackgroundWriter::start(BlkWriter::new(&blocks_dir, chain.magic().expect("regtest"), cfg.xor.then(|| sim.rng.random()), cfg.max_file_bytes)?);
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    let mut prev = genesis.block_hash();
    writer.write(genesis)?;
    let mut time = 1_640_995_200u32; // 2022-01-01
    let mut transactions = 1u64;
    let mut stale = 0u64;
    let mut out_of_order = 0u64;
    let mut held_back: Option<Block> = None;
    let mut names = AddressNames::start(chain);
    for h in 1..=cfg.blocks {
        sim.height = h;
        time += sim.rng.random_range(300..900);
        let n = sim.rng.random_range(cfg.txs_per_block / 2..=cfg.txs_per_block * 3 / 2);
        sim.block_activity(n);
        if heist_possible && h >= heist_at {
            if sim.attacker.is_none() {
                sim.start_heist();
            } else {
                sim.heist_step();
            }
        }
        let miner = sim.miners[sim.rng.random_range(0..sim.miners.len())];
        let miner_addr = sim.wallets[miner as usize].addrs[0];
        let txs = std::mem::take(&mut sim.block_txs);
        let txids = std::mem::take(&mut sim.block_txids);
        let value = subsidy(h) + std::mem::take(&mut sim.block_fees);
        let payout = TxOut { value: Amount::from_sat(value), script_pubkey: sim.addrs[miner_addr as usize].0.clone() };
        let (block, cb_txid) = make_block(prev, time, h, payout, sim.rng.random(), txs, &txids);
        sim.wallets[miner as usize].utxos.push(Utxo { outpoint: OutPoint { txid: cb_txid, vout: 0 }, value, addr: miner_addr, height: h, coinbase: true });
        transactions += block.txdata.len() as u64;
        let stale_block = (cfg.stale_every > 0 && h % cfg.stale_every == 0 && h + 2 < cfg.blocks).then(|| {
            let other = sim.miners[sim.rng.random_range(0..sim.miners.len())];
            let script = sim.addrs[sim.wallets[other as usize].addrs[0] as usize].0.clone();
            make_block(prev, time + 1, h, TxOut { value: Amount::from_sat(subsidy(h)), script_pubkey: script }, sim.rng.random(), vec![], &[]).0
        });
        prev = block.block_hash();
        names.send_new(&sim.addrs);
        if let Some(s) = stale_block {
            writer.write(s)?;
            stale += 1;
        }
        let hold = cfg.out_of_order_every > 0 && held_back.is_none() && h + 1 < cfg.blocks && sim.rng.random_range(0..cfg.out_of_order_every) == 0;
        if hold {
            held_back = Some(block);
            out_of_order += 1;
        } else {
            writer.write(block)?;
            if let Some(b) = held_back.take() {
                writer.write(b)?;
            }
        }
    }
    if let Some(b) = held_back.take() {
        writer.write(b)?;
    }
    let (files, bytes) = writer.finish()?;
    let mut names = names.finish(&sim.addrs);

    let heist = sim.attacker.take().map(|st| {
        let mut h = st.heist;
        let mut held: Vec<Utxo> = sim.wallets[st.wallet as usize].utxos.clone();
        held.sort_by_key(|u| (u.height, u.outpoint));
        h.held = held
            .iter()
            .map(|u| HeldOutput { txid: u.outpoint.txid.to_string(), vout: u.outpoint.vout, address: sim.addr_string(u.addr), value_sat: u.value })
            .collect();
        h.held_sat = held.iter().map(|u| u.value).sum();
        h
    });
    let kind_name = |k: Kind| match k {
        Kind::User => "user",
        Kind::Miner => "miner",
        Kind::Exchange => "exchange",
        Kind::Attacker => "attacker",
    };
    let exchange_hot_wallets = sim.exchanges.iter().map(|e| (sim.wallets[e.wallet as usize].name.clone(), names[e.hot as usize].clone())).collect();
    let wallets = sim
        .wallets
        .iter()
        .enumerate()
        .map(|(i, w)| WalletTruth {
            id: i as u32,
            kind: kind_name(w.kind).into(),
            name: w.name.clone(),
            addresses: w.addrs.iter().map(|a| std::mem::take(&mut names[*a as usize])).collect(),
        })
        .collect();
    let truth = GroundTruth {
        chain: chain.name().into(),
        seed: cfg.seed,
        tip_height: cfg.blocks,
        tip_hash: prev.to_string(),
        transactions,
        stale_blocks: stale,
        out_of_order_blocks: out_of_order,
        files,
        bytes,
        xor: cfg.xor,
        wallets,
        exchange_hot_wallets,
        coinjoins: sim.coinjoins,
        heist,
    };
    let path = out.join("ground_truth.json");
    let f = std::fs::File::create(&path).map_err(|e| Error::Io { path: path.clone(), source: e })?;
    serde_json::to_writer(std::io::BufWriter::new(f), &truth).map_err(|e| Error::Io { path, source: e.into() })?;
    Ok(truth)
}
