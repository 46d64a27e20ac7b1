//! Account-chain tracing on a hand-checked history: pools, gas fees, an exchange and a swap.

use tracehound_trace::account::{trace, Movement, Seed, Services};
use tracehound_trace::{Direction, Limits, Model, Sink, Trace};

fn mv(block: u64, tx: &str, position: i64, from: &str, to: &str, asset: &str, amount: u128) -> Movement {
    Movement { block, time: 1_655_942_400 + block * 12, tx_index: 0, position, tx: tx.into(), from: from.into(), to: to.into(), asset: asset.into(), amount }
}

/// V (victim) is drained into L in `s1`: 100 ETH and 1000 TUSD. A user U pays L 300 ETH. L pays a
/// gas fee of 4 and sends 200 ETH to the exchange X, then swaps 600 TUSD for 30 ETH paid to P.
fn history() -> Vec<Movement> {
    vec![
        mv(1, "u0", 0, "G", "V", "ETH", 100),
        mv(1, "u0", 1, "G", "V", "TUSD", 1000),
        mv(2, "s1", 0, "V", "L", "ETH", 100),
        mv(2, "s1", 1, "V", "L", "TUSD", 1000),
        mv(3, "t2", 0, "U", "L", "ETH", 300),
        mv(4, "t3", -1, "L", "", "ETH", 4),
        mv(4, "t3", 0, "L", "X", "ETH", 200),
        mv(5, "t4", 0, "L", "S", "TUSD", 600),
        mv(5, "t4", 1, "S", "P", "ETH", 30),
    ]
}

fn services() -> Services {
    let mut s = Services::default();
    s.sinks.insert("X".into(), Sink { category: "exchange".into(), name: "Exchange X".into() });
    s.swaps.insert("S".into(), "Swap S".into());
    s
}

fn flow<'a>(traces: &'a [Trace], name: &str) -> &'a Trace {
    traces.iter().find(|t| t.flow.as_deref() == Some(name)).unwrap_or_else(|| panic!("no flow {name}"))
}

#[test]
fn haircut_pools_fees_exchange_and_swap() {
    let t = trace("test", &history(), &[Seed::Transaction("s1".into())], &services(), Model::Haircut, Direction::Forward, &Limits::default()).unwrap();
    assert_eq!(t.len(), 3);
    // ETH: L holds 100 of 400. The fee of 4 carries 1; then 200 of 396 carry 99·200/396 = 50.
    let eth = flow(&t, "ETH");
    assert_eq!(eth.seed_amount, 100);
    assert_eq!(eth.accounting.fees, 1);
    assert_eq!(eth.accounting.sinks[0].amount, 50);
    assert_eq!(eth.accounting.held_total, 49);
    assert_eq!(eth.accounting.held[0].address, "L");
    assert_eq!(eth.accounting.held[0].value, 196);
    assert_eq!(eth.accounting.total(), 100);
    // TUSD: 600 into the swap, 400 held; the swap's 30 ETH payout is a derived flow, all tainted.
    let tusd = flow(&t, "TUSD");
    assert_eq!((tusd.accounting.by_category("swap"), tusd.accounting.held_total), (600, 400));
    let derived = flow(&t, "ETH from swap of TUSD");
    assert_eq!(derived.seed_amount, 30);
    assert_eq!(derived.accounting.held[0].address, "P");
    assert_eq!(derived.accounting.total(), 30);
}

#[test]
fn fifo_takes_the_oldest_lots_first() {
    // Seeded by address from block 3 on: only U's 300 ETH is tainted. L's older 100 clean ETH
    // goes out first: the fee (4) and 96 of the 200 to X are clean, 104 tainted.
    let since = Limits { since_time: Some(1_655_942_400 + 36), ..Limits::default() };
    let t = trace("test", &history(), &[Seed::Address("L".into())], &services(), Model::Fifo, Direction::Forward, &since).unwrap();
    let eth = flow(&t, "ETH");
    assert_eq!(eth.seed_amount, 300);
    assert_eq!(eth.accounting.fees, 0);
    assert_eq!(eth.accounting.sinks[0].amount, 104);
    assert_eq!(eth.accounting.held_total, 196);
    assert_eq!(eth.accounting.held[0].value, 196);
    // A window that ends before anything moves: everything seeded is still held.
    let window = Limits { since_time: Some(1_655_942_400 + 24), until_time: Some(1_655_942_400 + 36), ..Limits::default() };
    let t = trace("test", &history(), &[Seed::Address("L".into())], &services(), Model::Fifo, Direction::Forward, &window).unwrap();
    assert_eq!((flow(&t, "ETH").seed_amount, flow(&t, "ETH").accounting.held_total), (400, 400));
}

#[test]
fn fifo_fee_and_exchange() {
    let t = trace("test", &history(), &[Seed::Transaction("s1".into())], &services(), Model::Fifo, Direction::Forward, &Limits::default()).unwrap();
    let eth = flow(&t, "ETH");
    assert_eq!(eth.accounting.fees, 4);
    assert_eq!(eth.accounting.sinks[0].amount, 96);
    assert_eq!(eth.accounting.held_total, 0);
    assert_eq!(eth.accounting.total(), 100);
    assert_eq!(flow(&t, "ETH from swap of TUSD").seed_amount, 30);
}

#[test]
fn hops_and_dust_are_accounted() {
    // A sink is reached whatever the amount; P's 30 ETH from the swap is dust below 60.
    let t = trace(
        "test",
        &history(),
        &[Seed::Transaction("s1".into())],
        &services(),
        Model::Haircut,
        Direction::Forward,
        &Limits { min_amount: 60, ..Limits::default() },
    )
    .unwrap();
    assert_eq!(flow(&t, "ETH").accounting.sinks[0].amount, 50);
    let derived = flow(&t, "ETH from swap of TUSD");
    assert_eq!(derived.accounting.below_threshold, 30);
    assert_eq!(derived.accounting.total(), 30);
    // One hop: L's sends are hop 1, so the exchange is still reached; nothing goes further.
    let t = trace(
        "test",
        &history(),
        &[Seed::Transaction("s1".into())],
        &services(),
        Model::Haircut,
        Direction::Forward,
        &Limits { max_hops: 0, ..Limits::default() },
    )
    .unwrap();
    assert_eq!(flow(&t, "ETH").accounting.hop_limit, 0, "sinks come before the hop limit");
    let e = trace("test", &history(), &[Seed::Transaction("nope".into())], &services(), Model::Haircut, Direction::Forward, &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("received nothing"), "{e}");
}
