//! `tracehound demo`: a whole investigation on bundled machinery — simulate a chain with a
//! heist, ingest it from its block files, and follow the stolen coins with SQL.

use crate::block_on;
use crate::progress::IngestProgress;
use anyhow::{Context, Result};
use std::path::Path;
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_tables::sql::{query, session, write_results, OutputFormat};
use tracehound_tables::Store;

fn values_list(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(a, b)| format!("('{a}', '{b}')")).collect::<Vec<_>>().join(", ")
}

pub fn run(data_dir: &Path, blocks: u64, seed: u64) -> Result<()> {
    let sim_dir = data_dir.join("demo-chain");
    println!("1. Simulating a regtest chain of {blocks} blocks with exchanges, CoinJoins and a heist -> {}", sim_dir.display());
    let cfg = tracehound_simulate::SimConfig { blocks, seed, ..Default::default() };
    let truth = tracehound_simulate::simulate(&cfg, &sim_dir).context("simulating the demo chain")?;
    let heist = truth.heist.clone().context("the demo chain is too short for a heist: use --blocks 150 or more")?;
    println!(
        "   {} transactions, {} stale blocks, heist of {} sat from {} at height {}\n",
        truth.transactions, truth.stale_blocks, heist.stolen_sat, heist.victim, heist.height
    );

    println!("2. Ingesting its blk*.dat files into {}", data_dir.display());
    {
        let mut store = Store::open_for_write(data_dir)?;
        let p = IngestProgress::new();
        let r = ingest_blk_files(&mut store, &BlkOptions::new(sim_dir.join("blocks")), &|e| p.handle(e));
        p.finish();
        let r = r?;
        if r.blocks == 0 {
            println!("   already ingested (tip {})\n", r.tip.unwrap_or(0));
        } else {
            println!(
                "   {} blocks, {} transactions, {} inputs (all resolved: {}), {} outputs, {} stale blocks skipped\n",
                r.blocks,
                r.transactions,
                r.inputs,
                r.unresolved_inputs == 0,
                r.outputs,
                r.stale_blocks
            );
        }
    }

    let store = Store::open(data_dir)?;
    let attacker = &truth.wallets[heist.attacker_wallet as usize];
    let attacker_addrs: Vec<String> = attacker.addresses.iter().map(|a| format!("'{a}'")).collect();
    let mut deposit_pairs: Vec<(String, String)> = heist.deposits.iter().map(|d| (d.address.clone(), d.exchange.clone())).collect();
    deposit_pairs.sort();
    deposit_pairs.dedup();
    let steps = [
        ("3. The chain, from the tables", "SELECT count(*) AS blocks, max(number) AS tip, sum(transaction_count) AS transactions, sum(size) AS bytes FROM blocks".to_string()),
        ("4. The theft transaction", format!("SELECT hash, block_number, input_count, output_count, input_value, output_value, fee FROM transactions WHERE hash = '{}'", heist.txid)),
        ("5. Who took the coins (outputs of the theft)", format!("SELECT index, value, type, addresses FROM outputs WHERE transaction_hash = '{}'", heist.txid)),
        ("6. Where the loot went next (transactions spending it)", format!("SELECT i.transaction_hash AS spending_tx, t.block_number, t.output_count, t.output_value FROM inputs i JOIN transactions t ON t.hash = i.transaction_hash WHERE i.spent_transaction_hash = '{}'", heist.txid)),
        ("7. Stolen coins deposited at exchanges (attacker's deposit addresses)", format!("WITH deposit(address, exchange) AS (VALUES {}) SELECT d.exchange, count(*) AS deposits, sum(o.value) AS sat FROM outputs o JOIN deposit d ON d.address = o.addresses[1] GROUP BY d.exchange ORDER BY sat DESC", values_list(&deposit_pairs))),
        ("8. Stolen coins still held by the attacker (unspent outputs)", format!("SELECT count(*) AS outputs, sum(o.value) AS sat FROM outputs o LEFT JOIN inputs i ON i.spent_transaction_hash = o.transaction_hash AND i.spent_output_index = o.index WHERE o.addresses[1] IN ({}) AND i.transaction_hash IS NULL", attacker_addrs.join(", "))),
    ];
    let mut results = vec![];
    block_on(async {
        let ctx = session(&store, None).await?;
        for (title, sql) in &steps {
            println!("{title}\n   tracehound sql \"{}\"", if sql.len() > 160 { format!("{}…", &sql[..160]) } else { sql.clone() });
            let batches = query(&ctx, sql).await?;
            write_results(&batches, OutputFormat::Table, &mut std::io::stdout())?;
            results.push(batches);
        }
        Ok::<_, tracehound_tables::Error>(())
    })?;
    let deposited: u64 = heist.deposited_by_exchange.values().sum();
    println!(
        "Ground truth of the simulator: stolen {} sat = deposited {} + fees {} + still held {} ({} sat unaccounted).",
        heist.stolen_sat,
        deposited,
        heist.fees_sat,
        heist.held_sat,
        heist.unaccounted()
    );
    println!("Explore further: tracehound --data-dir {} sql \"SELECT type, count(*), sum(value) FROM outputs GROUP BY type\"", data_dir.display());
    Ok(())
}
