//! The exposure pass against hand-checked chains (a peel chain, a CoinJoin, a bridge deposit, a
//! swap) and against the tracer: on random chains, an address's received exposure to each
//! category is what a backward haircut trace from it attributes to that category's sources.

use proptest::prelude::*;
use std::collections::BTreeMap;
use tracehound_screen::exposure::{account_exposure, utxo_exposure, utxo_exposure_within, Budget, Entry, Movements, Options, NO_CATEGORY, TOTAL};
use tracehound_screen::risk::category_id;
use tracehound_screen::Flow;
use tracehound_trace::account::{self, Movement, Services};
use tracehound_trace::mem::{random_chain, MemGraph, MemTx};
use tracehound_trace::utxo::{trace, Names, Seed, Sinks};
use tracehound_trace::{Direction, Fees, Limits, Model, Sink};

struct Ids;
impl Names for Ids {
    fn address(&self, a: u32) -> String {
        format!("a{a}")
    }
    fn tx(&self, t: u32) -> String {
        format!("t{t}")
    }
}

fn cat(name: &str) -> u8 {
    category_id(name).unwrap()
}

/// (direct, indirect) of `address` to `category` in `flow`.
fn get(entries: &[Entry], address: u32, category: &str, flow: Flow) -> (u128, u128) {
    entries.iter().find(|e| e.address == address && e.category == cat(category) && e.flow == flow).map(|e| (e.direct, e.indirect)).unwrap_or((0, 0))
}

fn sources(n: usize, tagged: &[(u32, &str)]) -> Vec<u8> {
    let mut s = vec![NO_CATEGORY; n];
    for &(a, c) in tagged {
        // An address tagged twice counts as its first tag, as a trace's sinks do.
        if s[a as usize] == NO_CATEGORY {
            s[a as usize] = cat(c);
        }
    }
    s
}

const UNLIMITED: Options = Options { horizon: None };

#[test]
fn peel_chain_passes_the_whole_loot_on_hop_by_hop() {
    // Thief T (0) got 1,000 from the hack; it peels 100 to each of P1..P3 (1..3) and passes the
    // rest on through its own change addresses C1..C3 (4..6); fee 0. P3 is the end of the chain.
    let g = MemGraph::build(
        &[
            MemTx { inputs: vec![], outputs: vec![(0, 1_000)] },
            MemTx { inputs: vec![(0, 0)], outputs: vec![(1, 100), (4, 900)] },
            MemTx { inputs: vec![(1, 1)], outputs: vec![(2, 100), (5, 800)] },
            MemTx { inputs: vec![(2, 1)], outputs: vec![(3, 100), (6, 700)] },
        ],
        &[],
    );
    let e = utxo_exposure(g.graph(), &sources(7, &[(0, "stolen_funds")]), &UNLIMITED);
    assert_eq!(get(&e, 1, "stolen_funds", Flow::Received), (100, 0));
    assert_eq!(get(&e, 4, "stolen_funds", Flow::Received), (900, 0));
    assert_eq!(get(&e, 2, "stolen_funds", Flow::Received), (0, 100));
    assert_eq!(get(&e, 3, "stolen_funds", Flow::Received), (0, 100));
    assert_eq!(get(&e, 6, "stolen_funds", Flow::Received), (0, 700));
    // Sent: no source downstream, nothing sent to a category.
    assert!(e.iter().filter(|x| x.category != TOTAL).all(|x| x.flow == Flow::Received));
    // A horizon of 1 keeps the direct exposure only.
    let e1 = utxo_exposure(g.graph(), &sources(7, &[(0, "stolen_funds")]), &Options { horizon: Some(1) });
    assert_eq!(get(&e1, 1, "stolen_funds", Flow::Received), (100, 0));
    assert_eq!(get(&e1, 2, "stolen_funds", Flow::Received), (0, 0));
    // Horizon 2: the second hop counts, the third not.
    let e2 = utxo_exposure(g.graph(), &sources(7, &[(0, "stolen_funds")]), &Options { horizon: Some(2) });
    assert_eq!(get(&e2, 2, "stolen_funds", Flow::Received), (0, 100));
    assert_eq!(get(&e2, 3, "stolen_funds", Flow::Received), (0, 0));
}

#[test]
fn coinjoin_spreads_the_taint_over_its_equal_outputs() {
    // Five participants (0..4) put 1,000 each into a CoinJoin with five 990 outputs to 5..9 and a
    // fee of 50. Participant 0's coin came from a mixer-tagged address (10); participant 1's from
    // a sanctioned one (11). Each output gets 1/5 of each: 990 × 1,000 / 5,000 = 198.
    let mut txs = vec![
        MemTx { inputs: vec![], outputs: vec![(10, 1_000)] },
        MemTx { inputs: vec![], outputs: vec![(11, 1_000)] },
        MemTx { inputs: vec![(0, 0)], outputs: vec![(0, 1_000)] },
        MemTx { inputs: vec![(1, 0)], outputs: vec![(1, 1_000)] },
    ];
    for a in 2..5 {
        txs.push(MemTx { inputs: vec![], outputs: vec![(a, 1_000)] });
    }
    txs.push(MemTx { inputs: vec![(2, 0), (3, 0), (4, 0), (5, 0), (6, 0)], outputs: (5..10).map(|a| (a, 990)).collect() });
    let g = MemGraph::build(&txs, &[]);
    let e = utxo_exposure(g.graph(), &sources(12, &[(10, "mixing_service"), (11, "sanctioned")]), &UNLIMITED);
    for a in 5..10 {
        assert_eq!(get(&e, a, "mixing_service", Flow::Received), (0, 198), "output to {a}");
        assert_eq!(get(&e, a, "sanctioned", Flow::Received), (0, 198), "output to {a}");
    }
    assert_eq!(get(&e, 0, "mixing_service", Flow::Received), (1_000, 0));
    assert_eq!(get(&e, 1, "sanctioned", Flow::Received), (1_000, 0));
    // The mixer sent 1,000 to participant 0 directly: sent exposure of nobody (the mixer is the
    // source; sent exposure is to sources downstream).
    assert!(e.iter().filter(|x| x.category != TOTAL).all(|x| x.flow == Flow::Received));
}

#[test]
fn sent_exposure_follows_the_value_forward_to_an_exchange() {
    // A (0) pays B (1) 600 and keeps 400; B pays 500 to the exchange X (2) and 100 to C (3);
    // fee 0. A sent 600 of its 1,000 to B, of which 5/6 reached X: 500 indirect. B sent 500
    // directly.
    let g = MemGraph::build(
        &[
            MemTx { inputs: vec![], outputs: vec![(0, 1_000)] },
            MemTx { inputs: vec![(0, 0)], outputs: vec![(1, 600), (0, 400)] },
            MemTx { inputs: vec![(1, 0)], outputs: vec![(2, 500), (3, 100)] },
        ],
        &[],
    );
    let e = utxo_exposure(g.graph(), &sources(4, &[(2, "exchange")]), &UNLIMITED);
    assert_eq!(get(&e, 1, "exchange", Flow::Sent), (500, 0));
    assert_eq!(get(&e, 0, "exchange", Flow::Sent), (0, 500));
    assert_eq!(get(&e, 3, "exchange", Flow::Sent), (0, 0));
}

/// Movements for the account-chain tests.
struct Mv(Vec<(u32, u32, u32, u128)>);
impl Movements for Mv {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn ends(&self, i: usize) -> (u32, u32, u32) {
        (self.0[i].0, self.0[i].1, self.0[i].2)
    }
    fn amount(&self, i: usize) -> u128 {
        self.0[i].3
    }
}

const FEE: u32 = u32::MAX;

#[test]
fn bridge_deposit_and_swap_on_an_account_chain() {
    // Hacker H (0) drains 1,000 ETH (asset 0) into L (1). L pays 30 gas (fee), deposits 600 into
    // a bridge B (2), and swaps 300 ETH at a DEX D (3) for 900,000 USDT (asset 1) paid back to L.
    // Pools are per asset: the USDT L receives comes from the DEX, which had received 300 tainted
    // ETH; the DEX's USDT pool is clean, so the swap does not carry the taint across assets.
    let m = Mv(vec![
        (0, 1, 0, 1_000),
        (1, FEE, 0, 30),
        (1, 2, 0, 600),
        (1, 3, 0, 300),
        (4, 3, 1, 5_000_000), // the DEX's USDT liquidity, from a clean provider (4)
        (3, 1, 1, 900_000),
    ]);
    let e = account_exposure(&m, &sources(5, &[(0, "stolen_funds"), (2, "bridge")]), &UNLIMITED);
    let get_a = |a: u32, asset: u32, c: &str, f: Flow| {
        e.iter().find(|x| x.address == a && x.asset == asset && x.category == cat(c) && x.flow == f).map(|x| (x.direct, x.indirect)).unwrap_or((0, 0))
    };
    assert_eq!(get_a(1, 0, "stolen_funds", Flow::Received), (1_000, 0));
    // The bridge got H's funds through L: indirect.
    assert_eq!(get_a(2, 0, "stolen_funds", Flow::Received), (0, 600));
    assert_eq!(get_a(3, 0, "stolen_funds", Flow::Received), (0, 300));
    assert_eq!(get_a(1, 1, "stolen_funds", Flow::Received), (0, 0));
    // Sent: L deposited 600 into the bridge directly; H's 1,000 reached it through L: 600.
    assert_eq!(get_a(1, 0, "bridge", Flow::Sent), (600, 0));
    assert_eq!(get_a(0, 0, "bridge", Flow::Sent), (0, 600));
}

fn all_categories_sinks(sources: &[u8]) -> Sinks {
    let mut s = Sinks::default();
    for (a, &c) in sources.iter().enumerate() {
        if c != NO_CATEGORY {
            let name = tracehound_screen::risk::category_name(c);
            s.add(Sink { category: name.into(), name: name.into() }, [a as u32]);
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_memory_budget_spills_and_changes_nothing(
        spec in proptest::collection::vec((0u8..255, 0u8..255, 0u8..255, 0u16..60000), 2..300),
        tagged in proptest::collection::vec((0u32..12, 0u8..3), 1..5),
        bytes in 0u64..4096,
    ) {
        let g: MemGraph = random_chain(&spec);
        let names = ["stolen_funds", "mixing_service", "exchange"];
        let tagged: Vec<(u32, &str)> = tagged.iter().map(|&(a, c)| (a, names[c as usize])).collect();
        let src = sources(12, &tagged);
        let whole = utxo_exposure(g.graph(), &src, &UNLIMITED);
        let dir = tempfile::tempdir().unwrap();
        let scratch = tracehound_memory::Scratch::new(dir.path(), "exposure").unwrap();
        let mut bounded = vec![];
        let spilled = utxo_exposure_within(g.graph(), &src, &UNLIMITED, Some(Budget { bytes, scratch: &scratch }), &mut |e| bounded.push(e)).unwrap();
        prop_assert_eq!(&bounded, &whole);
        if spec.len() > 200 && whole.len() > 100 {
            prop_assert!(spilled > 0, "{} entries within {} bytes spilled nothing", whole.len(), bytes);
        }
        drop(scratch);
        prop_assert_eq!(std::fs::read_dir(dir.path().join("scratch")).map(|d| d.count()).unwrap_or(0), 0, "scratch files are removed");
    }

    #[test]
    fn received_exposure_is_what_a_backward_haircut_trace_attributes(
        spec in proptest::collection::vec((0u8..255, 0u8..255, 0u8..255, 0u16..60000), 2..80),
        tagged in proptest::collection::vec((0u32..12, 0u8..3), 0..4),
    ) {
        let g: MemGraph = random_chain(&spec);
        let names = ["stolen_funds", "mixing_service", "exchange"];
        let tagged: Vec<(u32, &str)> = tagged.iter().map(|&(a, c)| (a, names[c as usize])).collect();
        let src = sources(12, &tagged);
        let e = utxo_exposure(g.graph(), &src, &UNLIMITED);
        let sinks = all_categories_sinks(&src);
        let limits = Limits { max_hops: 10_000, max_nodes: usize::MAX, ..Limits::default() };
        let opts = tracehound_trace::utxo::Options { model: Model::Haircut, direction: Direction::Backward, fees: Fees::Drop, limits };
        for a in 0..12u32 {
            if !g.out_addr.contains(&a) {
                continue;
            }
            let t = trace(g.graph(), &Ids, "test", &[Seed::Address(a)], &sinks, &opts).unwrap();
            // Each exact split rounds every part by less than one unit, and an error is never
            // amplified (shares are ≤ 1): the two differ by at most one unit per transaction
            // in the address's history.
            let txs: std::collections::BTreeSet<&str> = t.edges.iter().map(|x| x.tx.as_str()).collect();
            let tolerance = txs.len() as u128 + 1;
            for c in names {
                let (d, i) = get(&e, a, c, Flow::Received);
                let traced = t.accounting.by_category(c);
                prop_assert!(d + i <= traced + tolerance && traced <= d + i + tolerance, "address {a} {c}: exposure {d}+{i}, trace {traced} (±{tolerance})");
            }
        }
    }

    #[test]
    fn account_received_exposure_is_what_a_backward_haircut_trace_attributes(
        moves in proptest::collection::vec((0u32..8, 0u32..9, 0u32..2, 1u128..5_000), 1..60),
        tagged in proptest::collection::vec((0u32..8, 0u8..2), 0..3),
    ) {
        let names = ["sanctioned", "exchange"];
        let tagged: Vec<(u32, &str)> = tagged.iter().map(|&(a, c)| (a, names[c as usize])).collect();
        let src = sources(8, &tagged);
        // Receiver 8 stands for a gas fee (no receiver).
        let mv = Mv(moves.iter().map(|&(f, t, asset, a)| (f, if t == 8 { FEE } else { t }, asset, a)).collect());
        let e = account_exposure(&mv, &src, &UNLIMITED);
        let movements: Vec<Movement> = mv.0.iter().enumerate().map(|(i, &(f, t, asset, amount))| Movement {
            block: i as u64, time: i as u64, tx_index: 0, position: 0, tx: format!("0x{i:064x}"),
            from: format!("0x{f:040x}"), to: if t == FEE { String::new() } else { format!("0x{t:040x}") },
            asset: if asset == 0 { "ETH".into() } else { "0x00000000000000000000000000000000000000aa".into() }, amount,
        }).collect();
        let mut services = Services::default();
        for &(a, c) in &tagged {
            services.sinks.entry(format!("0x{a:040x}")).or_insert(Sink { category: c.into(), name: c.into() });
        }
        let limits = Limits { max_hops: 10_000, max_nodes: usize::MAX, ..Limits::default() };
        for a in 0..8u32 {
            let seed = account::Seed::Address(format!("0x{a:040x}"));
            let Ok(traces) = account::trace("test", &movements, &[seed], &services, Model::Haircut, Direction::Backward, &limits) else { continue };
            for t in traces {
                let asset = if t.asset == "ETH" { 0 } else { 1 };
                let tolerance = t.edges.len() as u128 + 1;
                for c in names {
                    let x = e.iter().find(|x| x.address == a && x.asset == asset && x.category == cat(c) && x.flow == Flow::Received);
                    let ours = x.map(|x| x.direct + x.indirect).unwrap_or(0);
                    let traced = t.accounting.by_category(c);
                    prop_assert!(ours <= traced + tolerance && traced <= ours + tolerance, "address {a} asset {asset} {c}: exposure {ours}, trace {traced} (±{tolerance}) {:?}", t.accounting);
                }
            }
        }
    }
}

#[test]
fn totals_per_category_never_exceed_what_was_received() {
    let g = random_chain(&(0..200u16).map(|i| ((i % 7) as u8, (i % 5) as u8, (i % 3) as u8, i.wrapping_mul(7919))).collect::<Vec<_>>());
    let src = sources(12, &[(3, "scam"), (7, "exchange")]);
    let e = utxo_exposure(g.graph(), &src, &UNLIMITED);
    let mut received: BTreeMap<u32, u128> = BTreeMap::new();
    for (o, &a) in g.out_addr.iter().enumerate() {
        *received.entry(a).or_default() += g.out_value[o] as u128;
    }
    let mut by: BTreeMap<u32, u128> = BTreeMap::new();
    for x in e.iter().filter(|x| x.flow == Flow::Received && x.category != TOTAL) {
        assert!(x.direct + x.indirect <= received[&x.address]);
        *by.entry(x.address).or_default() += x.direct + x.indirect;
    }
    for (a, v) in by {
        assert!(v <= received[&a], "address {a}: exposure {v} > received {}", received[&a]);
    }
    // The totals are what each address received and sent.
    for x in e.iter().filter(|x| x.category == TOTAL && x.flow == Flow::Received) {
        assert_eq!(x.direct, received[&x.address]);
    }
}
