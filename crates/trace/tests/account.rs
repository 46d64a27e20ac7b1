//! Account-chain tracing on a hand-checked history: pools, gas fees, an exchange and a swap.

use tracehound_trace::account::{route_fees, trace, FeePayout, Movement, Seed, Services};
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
fn followed_fees_burn_the_base_fee_and_pay_the_rest_to_the_fee_recipient() {
    // t3's fee of 4: 3 burned (base fee), 1 to the block's fee recipient M.
    let payouts = std::collections::HashMap::from([("t3".to_string(), FeePayout { recipient: "M".into(), burned: 3 })]);
    let routed = route_fees(&history(), &payouts);
    assert_eq!(routed.len(), history().len() + 1);
    assert_eq!((routed[5].to.as_str(), routed[5].amount, routed[6].to.as_str(), routed[6].amount), ("", 3, "M", 1));
    let t = trace("test", &routed, &[Seed::Transaction("s1".into())], &services(), Model::Fifo, Direction::Forward, &Limits::default()).unwrap();
    let eth = flow(&t, "ETH");
    assert_eq!(eth.accounting.fees, 3);
    assert_eq!((eth.accounting.held_total, eth.accounting.held[0].address.as_str()), (1, "M"));
    assert_eq!(eth.accounting.sinks[0].amount, 96);
    assert_eq!(eth.accounting.total(), 100);
    assert!(eth.edges.iter().any(|e| e.to == "M" && e.amount == 1 && e.hop == 1));
    // A fee of the seed transaction itself is not stolen funds: routed to M, it stays outside.
    let mut with_seed_fee = history();
    with_seed_fee.insert(2, mv(2, "s1", -1, "V", "", "ETH", 2));
    let payouts = std::collections::HashMap::from([("s1".to_string(), FeePayout { recipient: "M".into(), burned: 1 })]);
    let t = trace(
        "test",
        &route_fees(&with_seed_fee, &payouts),
        &[Seed::Transaction("s1".into())],
        &services(),
        Model::Fifo,
        Direction::Forward,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(flow(&t, "ETH").seed_amount, 100);
    assert!(!flow(&t, "ETH").seeds.contains(&"M".to_string()));
    // A fee burned in full (the recipient is paid nothing) and a fee without a payout stay fees.
    let all_burned = std::collections::HashMap::from([("t3".to_string(), FeePayout { recipient: "M".into(), burned: 9 })]);
    assert_eq!(route_fees(&history(), &all_burned), history());
    assert_eq!(route_fees(&history(), &Default::default()), history());
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

/// The history with U as an exchange: money withdrawn from it is where funds come from.
fn services_with_exchange_u() -> Services {
    let mut s = services();
    s.sinks.insert("U".into(), Sink { category: "exchange".into(), name: "Exchange U".into() });
    s
}

#[test]
fn backward_haircut_splits_by_the_balance_at_each_credit() {
    // X received 200 ETH from L. L's balance was 400 after U's 300 arrived: 300/400 of the 200
    // (150) came from U, an exchange; the other 50 from V's 100, which G gave V, and G's funds
    // precede the data (unresolved).
    let t =
        trace("test", &history(), &[Seed::Address("X".into())], &services_with_exchange_u(), Model::Haircut, Direction::Backward, &Limits::default()).unwrap();
    assert_eq!(t.len(), 1);
    let eth = flow(&t, "ETH");
    assert_eq!(eth.direction, Direction::Backward);
    assert_eq!(eth.seed_amount, 200);
    assert_eq!(eth.accounting.by_category("exchange"), 150);
    assert_eq!(eth.accounting.unresolved, 50);
    assert_eq!(eth.accounting.total(), 200);
    let edges: Vec<(&str, &str, u128, u32)> = eth.edges.iter().map(|e| (e.from.as_str(), e.to.as_str(), e.amount, e.hop)).collect();
    assert!(edges.contains(&("L", "X", 200, 1)), "{edges:?}");
    assert!(edges.contains(&("U", "L", 150, 2)), "{edges:?}");
    assert!(edges.contains(&("V", "L", 50, 2)), "{edges:?}");
    assert!(edges.contains(&("G", "V", 50, 3)), "{edges:?}");
}

#[test]
fn backward_fifo_follows_the_units() {
    // L's arrivals are units [0,100) from V and [100,400) from U; it sent the fee [0,4) and X's
    // 200 as [4,204): 96 from V, 104 from U.
    let t = trace("test", &history(), &[Seed::Address("X".into())], &services_with_exchange_u(), Model::Fifo, Direction::Backward, &Limits::default()).unwrap();
    let eth = flow(&t, "ETH");
    assert_eq!(eth.accounting.by_category("exchange"), 104);
    assert_eq!(eth.accounting.unresolved, 96);
    assert_eq!(eth.accounting.total(), 200);
    // The same question forward agrees: FIFO from V's 100 put 96 into X.
    let fwd = trace("test", &history(), &[Seed::Transaction("s1".into())], &services(), Model::Fifo, Direction::Forward, &Limits::default()).unwrap();
    assert_eq!(flow(&fwd, "ETH").accounting.sinks[0].amount, 96);
}

#[test]
fn backward_through_a_swap_and_limits() {
    // P's 30 ETH came from the swap S, which took 600 TUSD from L in the same transaction; L's
    // TUSD came from V, and V's from G (unresolved).
    let t = trace("test", &history(), &[Seed::Address("P".into())], &services(), Model::Haircut, Direction::Backward, &Limits::default()).unwrap();
    let eth = flow(&t, "ETH");
    assert_eq!((eth.seed_amount, eth.accounting.by_category("swap"), eth.accounting.total()), (30, 30, 30));
    let tusd = flow(&t, "TUSD into swap for ETH");
    assert_eq!((tusd.seed_amount, tusd.accounting.unresolved), (600, 600));
    assert!(tusd.edges.iter().any(|e| (e.from.as_str(), e.to.as_str(), e.amount) == ("V", "L", 600)));
    // One hop: L → X is hop 1; U (a sink) is reached at hop 2 anyway, V's share is stopped.
    let one = Limits { max_hops: 1, ..Limits::default() };
    let t = trace("test", &history(), &[Seed::Address("X".into())], &services_with_exchange_u(), Model::Haircut, Direction::Backward, &one).unwrap();
    let eth = flow(&t, "ETH");
    assert_eq!((eth.accounting.by_category("exchange"), eth.accounting.hop_limit, eth.accounting.total()), (150, 50, 200));
    // Dust: V's 50 is below 60.
    let dust = Limits { min_amount: 60, ..Limits::default() };
    let t = trace("test", &history(), &[Seed::Address("X".into())], &services_with_exchange_u(), Model::Haircut, Direction::Backward, &dust).unwrap();
    assert_eq!(flow(&t, "ETH").accounting.below_threshold, 50);
    // Poison: every payer of a tainted pool, in full.
    let t =
        trace("test", &history(), &[Seed::Address("X".into())], &services_with_exchange_u(), Model::Poison, Direction::Backward, &Limits::default()).unwrap();
    let eth = flow(&t, "ETH");
    assert_eq!((eth.accounting.by_category("exchange"), eth.accounting.unresolved), (300, 100));
    // A seed that received nothing.
    let e = trace("test", &history(), &[Seed::Address("nobody".into())], &services(), Model::Fifo, Direction::Backward, &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("received nothing"), "{e}");
}

mod backward_conservation {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over random histories of five addresses, two assets and a swap, a backward trace
        /// accounts for exactly its seed amount under haircut and FIFO, and every flow's does.
        #[test]
        fn backward_accounting_sums_to_the_seed(
            moves in proptest::collection::vec((0usize..6, 0usize..6, 0usize..2, 1u128..1_000_000), 1..60),
            seed in 0usize..5,
            hops in 1u32..6,
            dust in 0u128..1000,
        ) {
            let names = ["A", "B", "C", "D", "E", "S"];
            let mut history = vec![];
            for (i, (f, t, asset, amount)) in moves.into_iter().enumerate() {
                if f == t { continue; }
                history.push(mv(i as u64 / 2, &format!("t{}", i / 2), (i % 2) as i64, names[f], names[t], ["ETH", "TOK"][asset], amount));
            }
            let mut s = Services::default();
            s.swaps.insert("S".into(), "Swap".into());
            s.sinks.insert("E".into(), Sink { category: "exchange".into(), name: "E".into() });
            let limits = Limits { max_hops: hops, min_amount: dust, ..Limits::default() };
            for model in [Model::Haircut, Model::Fifo] {
                if let Ok(traces) = trace("p", &history, &[Seed::Address(names[seed].into())], &s, model, Direction::Backward, &limits) {
                    for t in traces {
                        prop_assert_eq!(t.accounting.total(), t.seed_amount, "{} {:?}", model, t.flow);
                    }
                }
            }
        }
    }
}
