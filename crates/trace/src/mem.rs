//! UTXO graphs held in memory: small hand-made or random chains for tests of everything that
//! walks a [`UtxoGraph`].

use crate::utxo::UtxoGraph;
use tracehound_graph::index::NONE;

/// A transaction of a [`MemGraph`]: inputs as (tx, vout) (empty: a coinbase), outputs as (address, value).
pub struct MemTx {
    /// Inputs as (transaction, vout); empty for a coinbase.
    pub inputs: Vec<(usize, usize)>,
    /// Outputs as (address id, value).
    pub outputs: Vec<(u32, u64)>,
}

/// A UTXO graph in memory, with the arrays of [`UtxoGraph`].
#[derive(Debug, Default)]
pub struct MemGraph {
    /// See [`UtxoGraph`].
    pub tx_height: Vec<u32>,
    /// See [`UtxoGraph`].
    pub tx_time: Vec<u32>,
    /// See [`UtxoGraph`].
    pub tx_in_start: Vec<u64>,
    /// See [`UtxoGraph`].
    pub tx_out_start: Vec<u64>,
    /// See [`UtxoGraph`].
    pub out_value: Vec<u64>,
    /// See [`UtxoGraph`].
    pub out_addr: Vec<u32>,
    /// See [`UtxoGraph`].
    pub out_spender: Vec<u64>,
    /// See [`UtxoGraph`].
    pub in_prevout: Vec<u64>,
    /// See [`UtxoGraph`].
    pub in_tx: Vec<u32>,
    /// See [`UtxoGraph`].
    pub out_tx: Vec<u32>,
}

impl MemGraph {
    /// One block per transaction, except that a transaction right after a coinbase shares its block
    /// when `same_block` says so.
    pub fn build(txs: &[MemTx], same_block: &[bool]) -> MemGraph {
        let mut m = MemGraph { tx_in_start: vec![0], tx_out_start: vec![0], ..Default::default() };
        let mut height = 0u32;
        for (t, tx) in txs.iter().enumerate() {
            if t > 0 && !same_block.get(t).copied().unwrap_or(false) {
                height += 1;
            }
            m.tx_height.push(height);
            m.tx_time.push(1_600_000_000 + height * 600);
            if tx.inputs.is_empty() {
                m.in_prevout.push(NONE);
            }
            for &(pt, pv) in &tx.inputs {
                let o = m.tx_out_start[pt] + pv as u64;
                assert_eq!(m.out_spender[o as usize], NONE, "double spend in the test graph");
                m.out_spender[o as usize] = m.in_prevout.len() as u64;
                m.in_prevout.push(o);
            }
            for &(a, v) in &tx.outputs {
                m.out_addr.push(a);
                m.out_value.push(v);
                m.out_spender.push(NONE);
            }
            m.tx_in_start.push(m.in_prevout.len() as u64);
            m.tx_out_start.push(m.out_value.len() as u64);
            m.in_tx.resize(m.in_prevout.len(), t as u32);
            m.out_tx.resize(m.out_value.len(), t as u32);
        }
        m
    }

    /// The graph's arrays.
    pub fn graph(&self) -> UtxoGraph<'_> {
        UtxoGraph {
            tx_height: &self.tx_height,
            tx_time: &self.tx_time,
            tx_in_start: &self.tx_in_start,
            tx_out_start: &self.tx_out_start,
            out_value: &self.out_value,
            out_addr: &self.out_addr,
            out_spender: &self.out_spender,
            in_prevout: &self.in_prevout,
            in_tx: &self.in_tx,
            out_tx: &self.out_tx,
            addr_out_start: &[],
            addr_outs: &[],
        }
    }

    /// Output id of `vout` of transaction `t`.
    pub fn output(&self, t: usize, v: usize) -> u64 {
        self.tx_out_start[t] + v as u64
    }
}

/// A random chain over 12 addresses: coinbases and spends of random unspent outputs, each
/// `(kind, inputs, outputs, r)` of `spec` one transaction (kind % 4 == 0: a coinbase).
pub fn random_chain(spec: &[(u8, u8, u8, u16)]) -> MemGraph {
    let mut txs: Vec<MemTx> = vec![];
    let mut utxos: Vec<(usize, usize, u64)> = vec![];
    for (i, &(kind, n_in, n_out, r)) in spec.iter().enumerate() {
        if kind % 4 == 0 || utxos.is_empty() {
            txs.push(MemTx { inputs: vec![], outputs: vec![((r % 12) as u32, 1_000 + r as u64 * 7)] });
            utxos.push((txs.len() - 1, 0, 1_000 + r as u64 * 7));
            continue;
        }
        let n_in = 1 + (n_in as usize % 3).min(utxos.len() - 1);
        let mut inputs = vec![];
        let mut sum = 0;
        for k in 0..n_in {
            let pick = (r as usize * (k + 3) + i) % utxos.len();
            let (t, v, val) = utxos.swap_remove(pick);
            inputs.push((t, v));
            sum += val;
        }
        let fee = sum * (r as u64 % 5) / 100;
        let n_out = 1 + n_out as usize % 4;
        let mut outputs = vec![];
        let mut left = sum - fee;
        for k in 0..n_out {
            let v = if k == n_out - 1 { left } else { left * ((r as u64 + k as u64 * 13) % 60 + 10) / 100 };
            left -= v;
            outputs.push((((r as usize + k * 5 + i) % 12) as u32, v));
        }
        let t = txs.len();
        for (k, o) in outputs.iter().enumerate() {
            utxos.push((t, k, o.1));
        }
        txs.push(MemTx { inputs, outputs });
    }
    MemGraph::build(&txs, &[])
}
