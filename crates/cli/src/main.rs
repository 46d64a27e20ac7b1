//! `tracehound`: ingest chains into columnar tables, query them with SQL, export and simulate.

mod chains;
mod demo;
mod entities;
mod evm;
mod incidents;
mod labels;
mod progress;
mod screening;
mod serve;
mod trace;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use progress::IngestProgress;
use std::path::{Path, PathBuf};
use tracehound_core::UtxoChain;
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_ingest::bitcoin::rpc::{ingest_rpc, RpcOptions};
use tracehound_ingest::bitcoin::IngestReport;
use tracehound_tables::export::{export_table, ExportFormat};
use tracehound_tables::format::{write_results, OutputFormat};
use tracehound_tables::Store;

/// Open-source crypto-crime intelligence: follow stolen funds on-chain, with SQL over real chain data.
#[derive(Parser)]
#[command(name = "tracehound", version, about, long_about = None, after_help = "Start with `tracehound demo`: it simulates a chain with a heist, ingests it and follows the loot with SQL.\nData lives in --data-dir (env TRACEHOUND_DATA_DIR, default ./tracehound-data).")]
struct Cli {
    /// Data directory: Parquet tables and their manifest.
    #[arg(long, global = true, env = "TRACEHOUND_DATA_DIR", default_value = "tracehound-data")]
    data_dir: PathBuf,
    /// Memory budget of every stage that grows with the chain (ingest's unspent outputs, the
    /// index builds, clustering): beyond it they spill to scratch files under the data
    /// directory. A size such as 4GiB or 512MiB; the default is half of this machine's memory.
    #[arg(long, global = true, env = "TRACEHOUND_MEMORY_LIMIT", default_value_t = MemoryLimit(tracehound_memory::default_limit()), value_parser = MemoryLimit::parse)]
    memory_limit: MemoryLimit,
    /// Say more: each stage's peak memory and the bytes it spilled.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// A `--memory-limit` in bytes, shown and read as a size (`4 GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit(pub u64);

impl MemoryLimit {
    fn parse(text: &str) -> std::result::Result<MemoryLimit, String> {
        let bytes = tracehound_memory::parse_size(text)?;
        if bytes < 16 << 20 {
            return Err(format!("{text:?}: at least 16MiB is needed"));
        }
        Ok(MemoryLimit(bytes))
    }
}

impl std::fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&tracehound_memory::format_size(self.0).replace(' ', ""))
    }
}

static SETTINGS: std::sync::OnceLock<(MemoryLimit, bool)> = std::sync::OnceLock::new();

/// The `--memory-limit` of this run, in bytes.
pub fn memory_limit() -> u64 {
    SETTINGS.get().map_or_else(tracehound_memory::default_limit, |s| s.0 .0)
}

/// Whether `-v` was given.
pub fn verbose() -> bool {
    SETTINGS.get().is_some_and(|s| s.1)
}

/// With `-v`, says on standard error what a stage used of its memory budget.
pub fn report_stage(m: &tracehound_memory::StageMemory) {
    if verbose() {
        eprintln!("{}", m.line());
    }
}

#[derive(Subcommand)]
enum Command {
    /// Read chain data into the tables (resumes where the last run stopped).
    #[command(subcommand)]
    Ingest(IngestCmd),
    /// Run SQL over the tables (each chain is a schema; the only or --chain chain needs no prefix).
    ///
    /// Example: tracehound sql "SELECT block_number, count(*) FROM transactions GROUP BY 1 ORDER BY 1 DESC LIMIT 5"
    Sql {
        /// The SQL statement.
        query: String,
        /// Chain whose tables answer to unqualified names (default: the only chain stored).
        #[arg(long)]
        chain: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
        format: SqlFormat,
        /// Same as --format json.
        #[arg(long)]
        json: bool,
    },
    /// Write a table to a file: csv, json (lines) or parquet.
    ///
    /// Example: tracehound export transactions --format json --out txs.jsonl
    Export {
        /// Table: blocks, transactions, inputs, outputs (UTXO); blocks, transactions, logs, traces, token_transfers, transfers (EVM); address_clusters, tags.
        table: String,
        /// Chain (default: the only chain stored).
        #[arg(long)]
        chain: Option<String>,
        /// File format.
        #[arg(long, value_enum, default_value_t = ExportFmt::Csv)]
        format: ExportFmt,
        /// Output file (`-` for standard output).
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// Row layout: tracehound's tables, bitcoin-etl's (UTXO; json only) or ethereum-etl's (EVM; csv or json, adds the table `receipts`).
        #[arg(long, value_enum, default_value_t = Layout::Tables)]
        layout: Layout,
    },
    /// Follow a node's head: ingest new blocks as they are confirmed, rolling back reorganized ones.
    #[command(subcommand)]
    Sync(SyncCmd),
    /// Import rows from outside a node (explorer CSV exports).
    #[command(subcommand)]
    Import(ImportDataCmd),
    /// What is stored: chains, heights, rows and bytes per table.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a realistic synthetic chain with ground truth.
    #[command(subcommand)]
    Simulate(SimulateCmd),
    /// Build or extend the graph index (memory-mapped arrays for traversal) from the tables.
    ///
    /// Runs by itself when a command needs the index; a stale or damaged index is rebuilt.
    Index {
        /// Chain (default: the only chain stored).
        #[arg(long)]
        chain: Option<String>,
        /// Read every byte of the index (and clusters) again and check it, even if it was
        /// checked since it was written (files are checked in full once, then trusted until they
        /// change: on a whole chain a full check reads hundreds of GB).
        #[arg(long)]
        verify: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cluster addresses into entities: multi-input (CoinJoins skipped), optional change heuristics.
    ///
    /// Writes the table address_clusters (chain, address, address_id, cluster_id, cluster_size).
    /// Example: tracehound cluster --change-heuristics all --evaluate sim/ground_truth.json
    Cluster {
        /// Chain (default: the only chain stored).
        #[arg(long)]
        chain: Option<String>,
        /// Change heuristics that merge: none, all, or a list of address_type, fresh_address,
        /// round_number, optimal_change, peeling_chain.
        #[arg(long, default_value = "none")]
        change_heuristics: String,
        /// A simulator ground_truth.json: report pairwise precision and recall against its wallets.
        #[arg(long)]
        evaluate: Option<PathBuf>,
        /// EVM chains: blocks within which a deposit address must forward what it received to
        /// its exchange (deposit-address heuristic).
        #[arg(long, default_value_t = 50_000)]
        deposit_window: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What is known of an address: activity, tags, and the entity (cluster) it belongs to.
    ///
    /// On a chain not ingested (labels imported, no chain data yet) only its tags are shown.
    ///
    /// Example: tracehound address bitcoin 1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3 --json
    Address {
        /// Chain (e.g. bitcoin, bitcoin_regtest).
        chain: String,
        /// The address.
        address: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// An entity (cluster): size, holdings, tags of its members and their conflicts.
    Entity {
        /// Chain.
        chain: String,
        /// Cluster id (the smallest address id in it), or any address of the cluster.
        cluster: String,
        /// List member addresses.
        #[arg(long)]
        addresses: bool,
        /// At most this many addresses are listed.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Why two addresses are one entity: the shortest chain of merges (transaction, rule) joining them.
    Explain {
        /// Chain.
        chain: String,
        /// First address.
        a: String,
        /// Second address.
        b: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Labels: import OFAC, GraphSense TagPacks and CSV lists, add tags, search.
    #[command(subcommand)]
    Labels(LabelsCmd),
    /// Actors (groups and services behind addresses) with country and categories.
    #[command(subcommand)]
    Actors(ActorsCmd),
    /// Follow the money: taint tracing from seeds, with an accounting of where every unit went.
    ///
    /// Seeds: addresses, outputs (txid:vout), transactions, or files of them (one per line).
    /// UTXO chains are traced over the graph index (transaction by transaction); EVM chains over the
    /// transfers table (every address a pool per asset; one accounting per asset, and per asset a
    /// swap turned stolen funds into). The trace stops at labelled services (--stop-at) and reports
    /// them as sinks; whatever limit stops it is accounted, never lost.
    ///
    /// Examples:
    ///   tracehound trace bitcoin_regtest --from <txid>:0 --model haircut --max-hops 8
    ///   tracehound trace ethereum --from 0x0d04... --since 2022-06-23 --stop-at exchange,bridge --format dot --out flow.dot
    ///   tracehound trace bitcoin --from <txid>:<vout> --model fifo --direction backward --json
    ///   tracehound trace ethereum --from 0x<deposit address> --direction backward   # where did it come from?
    Trace {
        /// Chain (as stored: bitcoin, bitcoin_regtest, ethereum, anvil, …).
        chain: String,
        /// Seeds: address, txid:vout, txid, or a file of them. Repeatable.
        #[arg(long, required = true, num_args = 1..)]
        from: Vec<String>,
        /// Taint model: haircut (proportional), fifo (first in, first out) or poison (all outputs in full).
        #[arg(long, default_value = "haircut")]
        model: String,
        /// forward (where the funds went) or backward (where they came from).
        #[arg(long, default_value = "forward")]
        direction: String,
        /// Transactions (UTXO) or transfers (accounts) to follow from the seeds.
        #[arg(long, default_value_t = 10)]
        max_hops: u32,
        /// Do not follow taint below this many base units (satoshi, wei): accounted as "below threshold".
        #[arg(long, default_value_t = 0)]
        min_amount: u128,
        /// Which side of an address seed is traced: received (what it received in the window:
        /// an attacker's loot) or sent (what it sent in the window: a drained victim's loss;
        /// forward only).
        #[arg(long, default_value = "received", value_parser = ["received", "sent"])]
        seed: String,
        /// Start: block height or date (YYYY-MM-DD). Address seeds count only what arrived (or, with --seed sent, left) since then.
        #[arg(long)]
        since: Option<String>,
        /// Trace the chain as of this block height or date: later spends count as still held.
        #[arg(long)]
        until: Option<String>,
        /// Outputs (UTXO) or address pools (accounts) to visit at most.
        #[arg(long, default_value_t = 1_000_000)]
        max_nodes: usize,
        /// Label categories where the trace stops (mixer = mixing_service; coinjoin = detected CoinJoins; none).
        #[arg(long, default_value = trace::DEFAULT_STOP_AT)]
        stop_at: String,
        /// Tainted fees: drop (accounted as fees) or follow (UTXO: into the block's coinbase outputs; EVM: the priority fee to the block's fee recipient, the burned base fee stays in fees).
        #[arg(long, default_value = "drop")]
        fees: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = trace::TraceFormat::Text)]
        format: trace::TraceFormat,
        /// Same as --format json.
        #[arg(long)]
        json: bool,
        /// Nodes of the flow graph: address, or entity (addresses grouped by their cluster; needs
        /// `tracehound cluster`). The accounting is the same either way.
        #[arg(long, default_value = "address", value_parser = ["address", "entity"])]
        nodes: String,
        /// Output file (`-` for standard output).
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
    /// Token metadata of an EVM chain (the `tokens` table: symbol, name, decimals).
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// The incident registry: bundled DPRK-attributed heists and your own cases; trace one.
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Daily USD prices used to value traced funds and restate reported amounts.
    #[command(subcommand)]
    Prices(PricesCmd),
    /// Statistics over the incident registry: stolen USD by actor, country, year, victim type.
    #[command(subcommand)]
    Report(ReportCmd),
    /// The exposure index: how much of what each address received came from, and of what it sent
    /// went to, each risk category (sanctioned, stolen_funds, mixing_service, …), directly and
    /// through intermediaries (haircut).
    #[command(subcommand)]
    Exposure(ExposureCmd),
    /// Screen addresses, outputs, transactions or deposits for exposure to sanctioned or stolen
    /// funds and other risk categories, under a risk policy.
    ///
    /// Each subject is an address, `txid:vout` (one output), a transaction hash (its outputs'
    /// funds) or `txhash/address` (a deposit: the funds that transaction paid that address). The
    /// result: risk level (none, low, medium, high, severe) and score 0-10, the exposures, the
    /// entity, tags with their sources, actor and country, and the rules that fired with their
    /// evidence. A subject never seen on the chain and not labelled is NO DATA, not low risk.
    /// The exposure index is brought up to date first (`tracehound exposure build`).
    ///
    /// Examples:
    ///   tracehound screen bitcoin 1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3
    ///   tracehound screen bitcoin_regtest --file deposits.txt --policy my-policy.yaml --json
    Screen {
        /// Chain (as stored: bitcoin, bitcoin_regtest, ethereum, anvil, …).
        chain: String,
        /// Subjects to screen.
        subjects: Vec<String>,
        /// A file of subjects, one per line (`#` comments).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Risk policy (YAML; see data/policies/default.yaml, the default).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print JSON (one array of results).
        #[arg(long)]
        json: bool,
    },
    /// Serve the data directory as a REST API (JSON under /v1, OpenAPI at /v1/openapi.json).
    ///
    /// One process answers for the same --data-dir the commands use, while `ingest` and `sync`
    /// write to it: every request reads what is committed then. Every route but /health needs an
    /// API key (`tracehound keys create`), sent as `X-API-Key: <key>` or `Authorization: Bearer
    /// <key>`. Keys travel in headers: to listen on anything but loopback, put TLS in front.
    ///
    /// Example: tracehound keys create --role viewer --name alice   (prints the key once)
    ///
    /// Then: tracehound serve --listen 127.0.0.1:8080
    ///
    /// And: curl -H "X-API-Key: $KEY" http://127.0.0.1:8080/v1/chains/bitcoin/addresses/1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3
    Serve(serve::ServeArgs),
    /// API keys of `tracehound serve`: create (shown once), list, revoke.
    #[command(subcommand)]
    Keys(serve::KeysCmd),
    /// The main job: simulate a chain with a heist, ingest it, and follow the stolen coins with SQL.
    Demo {
        /// Blocks to simulate.
        #[arg(long, default_value_t = 600)]
        blocks: u64,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum ExposureCmd {
    /// Build (or bring up to date) the exposure index of a chain, and the SQL tables `exposure`
    /// (chain, address, asset, category, flow, direct, indirect, flow_value, share) and
    /// `cluster_exposure` (the same per cluster_id, when the chain is clustered).
    ///
    /// Sources are the addresses tagged in the label store with a risk category (extended to
    /// their whole entity when the chain is clustered) and the incident registry's attacker and
    /// laundering addresses (stolen_funds). `screen` and `serve` run this by themselves; the
    /// index is rebuilt, with the reason printed, whenever the chain, labels or clusters changed.
    /// Example: tracehound exposure build --chain bitcoin
    Build {
        /// Chain (default: the only UTXO chain stored).
        #[arg(long)]
        chain: Option<String>,
        /// Count only funds within this many transactions of a source, 1-250 (default:
        /// unlimited). Screening keeps the horizon the index was last built with.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=250))]
        horizon: Option<u8>,
        /// Print the build report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokensCmd {
    /// Fill a chain's `tokens` table: the bundled list for major tokens, the node for the others.
    ///
    /// Every token address of token_transfers and transfers (imported rows included) gets a row;
    /// only tokens without one are asked from the node (eth_call of symbol(), name(), decimals(),
    /// as ethereum-etl's export_tokens). Without --rpc only the bundled list is used, e.g. for a
    /// chain that has only imported transfers. `ingest evm` does this by itself.
    /// Example: tracehound tokens refresh --chain ethereum --rpc http://127.0.0.1:8545
    Refresh {
        /// The chain (as stored: ethereum, bsc, …).
        #[arg(long)]
        chain: String,
        /// Node of that chain to ask for tokens the bundled list lacks.
        #[arg(long)]
        rpc: Option<String>,
        /// At most this many HTTP requests per second (for hosted endpoints).
        #[arg(long)]
        max_rps: Option<f64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum IncidentCmd {
    /// Every incident: bundled ones and those added with `incident add`.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One incident: amounts, attribution, seeds and sources.
    Show {
        /// Incident id (e.g. harmony_2022).
        id: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add your own case from a YAML file (format: `tracehound incident add --help`).
    ///
    /// Fields: id, name, date (YYYY[-MM[-DD]]), victim, victim_type, category, chains, assets,
    /// amount_native, amount_usd, actor, actor_name, country, aggregate, simulated (true for a case
    /// on a simulated chain, like the demo's heist: left out of statistics), sources (required), and
    /// seeds: a list of {chain, address | tx, role (attacker, attacker_contract, laundering, victim, …),
    /// label, source}.
    Add {
        /// The YAML file.
        file: PathBuf,
    },
    /// Trace an incident's stolen funds from its seeds over the ingested chains: cashed out
    /// (per exchange), mixed, bridged, still held, valued in USD at the time of each movement.
    Trace {
        /// Incident id.
        id: String,
        /// Taint model: haircut, fifo or poison.
        #[arg(long, default_value = "haircut")]
        model: String,
        /// Hops to follow.
        #[arg(long, default_value_t = 10)]
        max_hops: u32,
        /// Print as JSON (with every trace in full).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PricesCmd {
    /// Import daily prices: FRED CSV (DATE,CBBTCUSD), CoinMetrics community CSV (time,…,PriceUSD) or
    /// `date,asset,usd` rows. No price series ships with tracehound; USDT/USDC/DAI are $1 unless imported.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Asset of a FRED file whose series name does not say it (BTC, ETH, USDC, …).
        #[arg(long)]
        asset: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReportCmd {
    /// Incidents and stolen USD grouped by the given dimensions; aggregates listed apart.
    ///
    /// Simulated cases (the demo's heist, YAML `simulated: true`) are not real incidents: they are
    /// left out of every figure, and the output says how many were; --include-simulated counts them.
    ///
    /// Example: tracehound report stats --by country --by year --format html --out report.html
    Stats {
        /// Group by: actor, country, year, victim_type, category, attribution (repeatable; default year).
        #[arg(long)]
        by: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = incidents::ReportFormat::Table)]
        format: incidents::ReportFormat,
        /// Output file (`-` for standard output).
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// HTML only: also trace this incident and chart where its funds went (a simulated case's
        /// trace gets its own section).
        #[arg(long)]
        trace: Option<String>,
        /// Count simulated cases (the demo's heist) in the figures, like real incidents.
        #[arg(long)]
        include_simulated: bool,
        /// Count only incidents attributed at least this strongly: government, sanctions_monitor,
        /// company, researcher, suspected (strongest first).
        #[arg(long)]
        min_attribution: Option<String>,
        /// Count only incidents (and published totals) of this actor id, e.g. lazarusgroup.
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Subcommand)]
enum IngestCmd {
    /// From Bitcoin Core's block files (blk*.dat), the fast path.
    ///
    /// Reads the best chain (stale blocks skipped), XOR-obfuscated files (Core 28+), pruned data
    /// directories, and resolves every input to the output it spends. Safe while the node runs: a
    /// block still being written at the end of the newest file is left for the next run.
    Bitcoin {
        /// Bitcoin Core's data directory or its blocks/ folder.
        #[arg(long)]
        blocks_dir: PathBuf,
        /// Network, when not detected from the files (bitcoin, bitcoin_testnet, bitcoin_testnet4, bitcoin_signet, bitcoin_regtest).
        #[arg(long)]
        chain: Option<String>,
        /// Last height to ingest (default: the tip).
        #[arg(long)]
        to: Option<u64>,
        /// Skip corrupt records with a warning instead of stopping.
        #[arg(long)]
        skip_corrupt: bool,
        /// Blocks per committed chunk.
        #[arg(long, default_value_t = 1000)]
        chunk_blocks: u64,
        /// Transactions per committed chunk (whichever limit comes first).
        #[arg(long, default_value_t = 100_000)]
        chunk_transactions: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// From an EVM node's JSON-RPC: blocks, transactions with receipts, logs, traces, token transfers.
    ///
    /// Works with any node (geth, reth, erigon, nethermind, anvil, hosted endpoints); the chain is
    /// named from eth_chainId. Resumes after what is stored, rolls back reorganized blocks.
    /// Example: tracehound ingest evm --rpc http://127.0.0.1:8545 --from 0 --to latest
    Evm {
        #[command(flatten)]
        node: evm::EvmArgs,
        /// First block.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Last block, or `latest` (the head minus --confirmations).
        #[arg(long, default_value = "latest")]
        to: String,
        /// With --to latest: blocks behind the head not to read yet.
        #[arg(long, default_value_t = 0)]
        confirmations: u64,
    },
    /// From a node's JSON-RPC (Bitcoin Core; Litecoin, Dogecoin and Bitcoin Cash nodes).
    ///
    /// Reads getblockhash + getblock <hash> 2. Nodes without verbosity 2 (Dogecoin 1.14, early
    /// Bitcoin Cash releases) are detected on the first block and read with getblock <hash> true
    /// plus getrawtransaction <txid> 0 per transaction (start them with -txindex). Inputs that
    /// spend outputs from before --from are resolved with getrawtransaction.
    /// Example: tracehound ingest bitcoin-rpc --rpc http://user:pass@127.0.0.1:8332 --from 0 --to 1000
    BitcoinRpc {
        /// Node URL, e.g. http://user:pass@127.0.0.1:8332
        #[arg(long)]
        rpc: String,
        /// Bitcoin Core's .cookie file (when the URL has no user:password).
        #[arg(long)]
        cookie: Option<PathBuf>,
        /// Chain (default: detected — Litecoin and Dogecoin by their genesis block, Bitcoin Cash by
        /// the node's software in getnetworkinfo, Bitcoin's networks by getblockchaininfo).
        #[arg(long)]
        chain: Option<String>,
        /// First height.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Last height (default: the node's tip).
        #[arg(long)]
        to: Option<u64>,
        /// Blocks per batched request.
        #[arg(long, default_value_t = 10)]
        batch_size: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Retries of a failed request (exponential backoff).
        #[arg(long, default_value_t = 5)]
        retries: u32,
        /// Blocks per committed chunk.
        #[arg(long, default_value_t = 1000)]
        chunk_blocks: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SyncCmd {
    /// Follow an EVM node's head until interrupted (Ctrl-C or kill: every commit is atomic).
    ///
    /// Example: tracehound sync evm --rpc http://127.0.0.1:8545 --confirmations 12
    Evm {
        #[command(flatten)]
        node: evm::EvmArgs,
        /// First block when nothing is stored yet.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Blocks behind the head to wait for before reading a block.
        #[arg(long, default_value_t = 12)]
        confirmations: u64,
        /// Seconds between polls of the head.
        #[arg(long, default_value_t = 2.0)]
        poll: f64,
        /// Stop after this many polls (default: run until interrupted).
        #[arg(long)]
        rounds: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ImportDataCmd {
    /// Explorer CSV transfer lists into the transfers table (rows marked as imported).
    ///
    /// Columns are matched by header, case-insensitive: Etherscan-style exports (Txhash, Blockno,
    /// UnixTimestamp, From, To, Value, ContractAddress, TokenSymbol; Value_IN(ETH)/Value_OUT(ETH);
    /// TokenValue + TokenDecimal) or a plain layout (tx_hash, block_number, timestamp, from, to,
    /// asset, amount) where amount is in base units.
    ///
    /// Each transfer is stored once: exports that overlap (address A's and address B's both list
    /// A → B) add the shared transfer once, importing a file again with other bytes (its bad rows
    /// corrected) replaces what it added, the same bytes again change nothing, and rows a node
    /// gives (`ingest evm`) win over imported ones.
    ///
    /// A file with bad rows is not stored: its bad rows are listed with file and line and the
    /// command exits with status 3. Give --keep-good-rows to store the good rows anyway (exit 0).
    ///
    /// Example: tracehound import transfers exports/*.csv --chain ethereum
    Transfers {
        /// CSV files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The chain the transfers are on (ethereum, bsc, polygon, …).
        #[arg(long)]
        chain: String,
        /// Decimals of whole-unit token values when the file has no TokenDecimal column (native coins: 18).
        #[arg(long)]
        decimals: Option<u32>,
        /// Store the good rows of a file that has bad rows (default: store nothing of it, exit 3).
        #[arg(long)]
        keep_good_rows: bool,
        /// Print reports as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SimulateCmd {
    /// A regtest chain in blk*.dat format plus ground_truth.json (wallets, exchanges, a heist).
    Bitcoin {
        /// Blocks after genesis.
        #[arg(long, default_value_t = 2000)]
        blocks: u64,
        /// Output directory (blocks/ and ground_truth.json are written in it).
        #[arg(long)]
        out: PathBuf,
        /// Random seed (same seed, same bytes).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Average transactions per block.
        #[arg(long, default_value_t = 50)]
        txs_per_block: u32,
        /// XOR-obfuscate the files like Bitcoin Core 28+.
        #[arg(long)]
        xor: bool,
        /// Height of the heist (default: two fifths into the chain).
        #[arg(long, default_value_t = 0)]
        heist_at: u64,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LabelsCmd {
    /// Import label files. `--defaults` loads the bundled set (OFAC, GraphSense packs and actors,
    /// incident addresses, Etherscan labels). Importing a file twice changes nothing.
    ///
    /// A file with bad rows is not stored: its bad rows are listed with file and line and the
    /// command exits with status 3. Give --keep-good-rows to store the good rows anyway (exit 0).
    #[command(args_conflicts_with_subcommands = true)]
    Import {
        /// Import the bundled default label set.
        #[arg(long)]
        defaults: bool,
        /// Store the good rows of a file that has bad rows (default: store nothing of it, exit 3).
        #[arg(long, global = true)]
        keep_good_rows: bool,
        /// Print the reports as JSON.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        kind: Option<ImportCmd>,
    },
    /// Tag one address (or cluster or transaction).
    ///
    /// Example: tracehound labels add ethereum 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --label "Ronin Bridge Exploiter" --actor lazarus --category hacker
    Add {
        /// Chain.
        chain: String,
        /// Address (or cluster id / transaction hash with --kind).
        subject: String,
        /// The label.
        #[arg(long)]
        label: String,
        /// Actor id, label or alias (e.g. lazarus).
        #[arg(long)]
        actor: Option<String>,
        /// Category (exchange, hacker, mixing_service, sanctioned, …).
        #[arg(long, default_value = "unknown")]
        category: String,
        /// Where the knowledge comes from.
        #[arg(long, default_value = "manual")]
        source: String,
        /// Who adds it (default: $USER).
        #[arg(long)]
        author: Option<String>,
        /// What the subject is: address, cluster or transaction.
        #[arg(long, default_value = "address")]
        kind: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Search actors and tags (case-insensitive substring of id, label, alias or address).
    Search {
        /// Text to look for.
        query: String,
        /// At most this many results of each kind.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Counts of tags by chain, category and source.
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ImportCmd {
    /// OFAC: sdn.csv (legacy SDN list), sdn_advanced.xml, or sanctioned_addresses_<ASSET>.txt/.json lists.
    Ofac {
        /// Files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// GraphSense TagPacks and ActorPacks (YAML).
    Tagpack {
        /// Files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// A CSV label list; columns found by header name (address, label/wallet_tag/name, category, chain, actor, source).
    Csv {
        /// The CSV file.
        file: PathBuf,
        /// Source to record (and the label of rows without one).
        #[arg(long)]
        source: String,
        /// Category of rows without one.
        #[arg(long)]
        category: Option<String>,
        /// Chain of rows without a chain column (default ethereum).
        #[arg(long)]
        chain: Option<String>,
        /// Actor of every row.
        #[arg(long)]
        actor: Option<String>,
        /// Confidence name (e.g. authority_data, service_data, web_crawl).
        #[arg(long)]
        confidence: Option<String>,
    },
}

#[derive(Subcommand)]
enum ActorsCmd {
    /// An actor: country, categories, aliases and its tags.
    Show {
        /// Actor id, label or alias (e.g. lazarus).
        id: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SqlFormat {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum ExportFmt {
    Csv,
    Json,
    Parquet,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Layout {
    /// tracehound's own tables.
    Tables,
    /// bitcoin-etl's JSON layout (UTXO chains: blocks, transactions with nested inputs/outputs).
    BitcoinEtl,
    /// ethereum-etl's CSV/JSON layout (EVM chains: blocks, transactions, receipts, logs, token_transfers, traces).
    EthereumEtl,
}

fn main() {
    tracehound_alloc::configure();
    tracehound_memory::set_release(tracehound_alloc::release);
    restore_sigpipe();
    let cli = Cli::parse();
    let _ = SETTINGS.set((cli.memory_limit, cli.verbose));
    if let Err(e) = run(cli) {
        eprintln!("error: {}", error_line(&e));
        std::process::exit(if e.is::<RejectedRows>() { EXIT_REJECTED_ROWS } else { 1 });
    }
}

/// Exit status when an import rejected rows of its input (1 is any other error).
const EXIT_REJECTED_ROWS: i32 = 3;

/// An import found bad rows and stored nothing of their file (exit status 3).
#[derive(Debug)]
pub struct RejectedRows(pub String);

impl std::fmt::Display for RejectedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RejectedRows {}

/// The error and its causes on one line, each said once. Errors that name their file put their
/// cause in their own message (`"{path}: {source}"`) and also return it as their source, so
/// `{:#}` would print it twice; a cause whose text is already on the line is left out.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `tracehound sql ... | head` should end quietly when `head` closes the pipe, as other Unix
/// tools do, instead of panicking in `println!`: Rust ignores SIGPIPE by default.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn chain_arg(name: Option<&str>) -> Result<Option<UtxoChain>> {
    name.map(UtxoChain::from_name).transpose().map_err(Into::into)
}

fn print_report(r: &IngestReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    match r.resumed_after {
        Some(h) if r.blocks == 0 => println!("{}: already up to date at height {h}", r.chain),
        _ => println!(
            "{}: wrote {} blocks ({} transactions, {} inputs, {} outputs) in {} chunks; tip {}",
            r.chain,
            r.blocks,
            r.transactions,
            r.inputs,
            r.outputs,
            r.chunks,
            r.tip.map_or("-".into(), |t| t.to_string())
        ),
    }
    if r.getblock_verbosity == Some(1) {
        println!("  the node has no getblock verbosity 2: blocks were read with verbosity 1 and getrawtransaction");
    }
    if r.unresolved_inputs > 0 {
        println!("  {} inputs spend outputs not in the data (pruned source): their value is left unresolved", r.unresolved_inputs);
    }
    if r.stale_blocks > 0 {
        println!("  {} stale blocks (not on the best chain) skipped", r.stale_blocks);
    }
    for s in &r.skipped {
        println!("  skipped corrupt record: {s}");
    }
    if let Some(tail) = &r.partial_tail {
        println!("  {tail}");
    }
    if let Some(m) = r.memory.as_ref().filter(|m| m.spilled_bytes > 0) {
        println!(
            "  memory limit {} reached: {} of the {} unspent outputs are on disk ({} written to scratch files)",
            tracehound_memory::format_size(m.memory_limit),
            r.utxos_on_disk,
            r.utxos,
            tracehound_memory::format_size(m.spilled_bytes)
        );
    }
    Ok(())
}

/// Runs a future on a fresh runtime (SQL and exports).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime").block_on(f)
}

fn run(cli: Cli) -> Result<()> {
    let data_dir = cli.data_dir;
    match cli.command {
        Command::Ingest(IngestCmd::Bitcoin { blocks_dir, chain, to, skip_corrupt, chunk_blocks, chunk_transactions, json }) => {
            let mut store = Store::open_for_write(&data_dir)?;
            let opts = BlkOptions {
                blocks_dir,
                chain: chain_arg(chain.as_deref())?,
                to,
                skip_corrupt,
                chunk_blocks,
                chunk_transactions,
                memory_limit: Some(memory_limit()),
                utxo_map_bytes: None,
            };
            let p = IngestProgress::new();
            let r = ingest_blk_files(&mut store, &opts, &|e| p.handle(e));
            p.finish();
            let r = r?;
            if let Some(m) = &r.memory {
                report_stage(m);
            }
            print_report(&r, json)
        }
        Command::Ingest(IngestCmd::BitcoinRpc { rpc, cookie, chain, from, to, batch_size, concurrency, retries, chunk_blocks, json }) => {
            let mut store = Store::open_for_write(&data_dir)?;
            let opts = RpcOptions {
                url: rpc,
                cookie,
                chain: chain_arg(chain.as_deref())?,
                from,
                to,
                batch_size,
                concurrency,
                retries,
                chunk_blocks,
                memory_limit: Some(memory_limit()),
            };
            let p = IngestProgress::new();
            let r = ingest_rpc(&mut store, &opts, &|e| p.handle(e));
            p.finish();
            let r = r?;
            if let Some(m) = &r.memory {
                report_stage(m);
            }
            print_report(&r, json)
        }
        Command::Ingest(IngestCmd::Evm { node, from, to, confirmations }) => evm::ingest_cmd(&data_dir, &node, from, &to, confirmations),
        Command::Sync(SyncCmd::Evm { node, from, confirmations, poll, rounds }) => evm::sync_cmd(&data_dir, &node, from, confirmations, poll, rounds),
        Command::Import(ImportDataCmd::Transfers { files, chain, decimals, keep_good_rows, json }) => {
            evm::import_cmd(&data_dir, &files, &chain, decimals, keep_good_rows, json)
        }
        Command::Sql { query, chain, format, json } => {
            let store = open_tables(&data_dir)?;
            let format = if json {
                OutputFormat::Json
            } else {
                match format {
                    SqlFormat::Table => OutputFormat::Table,
                    SqlFormat::Csv => OutputFormat::Csv,
                    SqlFormat::Json => OutputFormat::Json,
                }
            };
            let batches = block_on(async {
                let ctx = tracehound_tables::sql::session(&store, chain.as_deref()).await?;
                tracehound_tables::sql::query(&ctx, &query).await
            })
            .map_err(|e| sql_hint(e, &store))?;
            let stdout = std::io::stdout();
            write_results(&batches, format, &mut stdout.lock())?;
            Ok(())
        }
        Command::Export { table, chain, format, out, layout } => {
            let store = open_tables(&data_dir)?;
            let chain = match tracehound_tables::sql::default_chain(&store, chain.as_deref())? {
                Some(c) => c,
                // No chain is stored: only the tables across chains (the label store's `tags`),
                // which the store reads under the empty chain name.
                None if store.manifest().chain_names().is_empty() => {
                    let across = store.derived_tables(None);
                    if layout != Layout::Tables || !across.contains(&table) {
                        bail!(
                            "no chain is ingested in {} yet: only {} can be exported (tables layout); run `tracehound ingest ...` for chain tables",
                            data_dir.display(),
                            across.join(", ")
                        );
                    }
                    String::new()
                }
                None => bail!("several chains are stored ({}); give --chain", store.manifest().chains.keys().cloned().collect::<Vec<_>>().join(", ")),
            };
            let rows = if layout == Layout::EthereumEtl {
                let f = match format {
                    ExportFmt::Csv => ExportFormat::Csv,
                    ExportFmt::Json => ExportFormat::Json,
                    ExportFmt::Parquet => bail!("the ethereum-etl layout is CSV or JSON lines: use --format csv or json"),
                };
                if store.manifest().chain_kind(&chain) != tracehound_tables::ChainKind::Evm {
                    bail!("{chain} is not an EVM chain: the ethereum-etl layout is for EVM chains (use --layout bitcoin-etl)");
                }
                let mut sink: Box<dyn std::io::Write> = if out == Path::new("-") {
                    Box::new(std::io::stdout().lock())
                } else {
                    Box::new(std::io::BufWriter::new(std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?))
                };
                let n = tracehound_tables::etl_evm::export_ethereum_etl(&store, &chain, &table, f, &mut sink)?;
                sink.flush()?;
                n
            } else if layout == Layout::BitcoinEtl {
                if format != ExportFmt::Json {
                    bail!("the bitcoin-etl layout is JSON lines: use --format json");
                }
                let mut sink: Box<dyn std::io::Write> = if out == Path::new("-") {
                    Box::new(std::io::stdout().lock())
                } else {
                    Box::new(std::io::BufWriter::new(std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?))
                };
                let n = tracehound_tables::etl::export_etl(&store, &chain, &table, &mut sink)?;
                sink.flush()?;
                n
            } else {
                let f = match format {
                    ExportFmt::Csv => ExportFormat::Csv,
                    ExportFmt::Json => ExportFormat::Json,
                    ExportFmt::Parquet => ExportFormat::Parquet,
                };
                export_table(&store, &chain, &table, f, &out)?
            };
            if out != Path::new("-") {
                let name = if chain.is_empty() { table.clone() } else { format!("{chain}.{table}") };
                eprintln!("wrote {rows} rows of {name} to {}", out.display());
            }
            Ok(())
        }
        Command::Status { json } => status(&data_dir, json),
        Command::Simulate(SimulateCmd::Bitcoin { blocks, out, seed, txs_per_block, xor, heist_at, json }) => {
            let cfg = tracehound_simulate::SimConfig { blocks, seed, txs_per_block, xor, heist_at, ..Default::default() };
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_message(format!("simulating {blocks} blocks"));
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            let started = std::time::Instant::now();
            let truth = tracehound_simulate::simulate(&cfg, &out);
            spinner.finish_and_clear();
            let truth = truth?;
            let secs = started.elapsed().as_secs_f64();
            if json {
                let h = truth.heist.as_ref();
                println!(
                    "{}",
                    serde_json::json!({"out": out, "tip_height": truth.tip_height, "transactions": truth.transactions, "files": truth.files, "bytes": truth.bytes, "stale_blocks": truth.stale_blocks, "heist_txid": h.map(|h| &h.txid), "stolen_sat": h.map(|h| h.stolen_sat), "seconds": secs})
                );
            } else {
                println!(
                    "wrote {} blocks, {} transactions ({:.0} tx/s) to {} in {} files ({} bytes); {} stale blocks",
                    truth.tip_height + 1,
                    truth.transactions,
                    truth.transactions as f64 / secs,
                    out.join("blocks").display(),
                    truth.files,
                    truth.bytes,
                    truth.stale_blocks
                );
                if let Some(h) = &truth.heist {
                    println!("heist at height {}: {} sat stolen from {} in {}", h.height, h.stolen_sat, h.victim, h.txid);
                }
                println!("ground truth: {}", out.join("ground_truth.json").display());
            }
            Ok(())
        }
        Command::Index { chain, verify, json } => entities::index_cmd(&data_dir, chain.as_deref(), verify, json),
        Command::Cluster { chain, change_heuristics, evaluate, deposit_window, json } => {
            let store = open_existing(&data_dir)?;
            let c = chains::any_chain(&store, chain.as_deref())?;
            if store.manifest().chain_kind(&c) == tracehound_tables::ChainKind::Evm {
                drop(store);
                trace::deposit_cmd(&data_dir, &c, deposit_window, json)
            } else {
                entities::cluster_cmd(&data_dir, chain.as_deref(), &change_heuristics, evaluate.as_deref(), json)
            }
        }
        Command::Address { chain, address, json } => entities::address_cmd(&data_dir, &chain, &address, json),
        Command::Entity { chain, cluster, addresses, limit, json } => entities::entity_cmd(&data_dir, &chain, &cluster, addresses, limit, json),
        Command::Explain { chain, a, b, json } => entities::explain_cmd(&data_dir, &chain, &a, &b, json),
        Command::Labels(LabelsCmd::Import { defaults, keep_good_rows, json, kind }) => {
            let kind = match (defaults, kind) {
                (true, _) => labels::ImportKind::Defaults,
                (false, Some(ImportCmd::Ofac { files })) => labels::ImportKind::Ofac(files),
                (false, Some(ImportCmd::Tagpack { files })) => labels::ImportKind::Tagpack(files),
                (false, Some(ImportCmd::Csv { file, source, category, chain, actor, confidence })) => {
                    labels::ImportKind::Csv(file, tracehound_labels::CsvImport { source, category, chain, actor, confidence })
                }
                (false, None) => bail!("say what to import: `labels import --defaults`, or `labels import ofac|tagpack|csv FILE...` (see --help)"),
            };
            labels::import_cmd(&data_dir, kind, keep_good_rows, json)
        }
        Command::Labels(LabelsCmd::Add { chain, subject, label, actor, category, source, author, kind, json }) => {
            let kind = tracehound_labels::SubjectKind::from_name(&kind).with_context(|| format!("--kind {kind:?}: use address, cluster or transaction"))?;
            labels::add_cmd(&data_dir, labels::AddArgs { chain, subject, kind, label, actor, category, source, author }, json)
        }
        Command::Labels(LabelsCmd::Search { query, limit, json }) => labels::search_cmd(&data_dir, &query, limit, json),
        Command::Labels(LabelsCmd::Stats { json }) => labels::stats_cmd(&data_dir, json),
        Command::Actors(ActorsCmd::Show { id, json }) => labels::actor_cmd(&data_dir, &id, json),
        Command::Demo { blocks, seed } => demo::run(&data_dir, blocks, seed),
        Command::Exposure(ExposureCmd::Build { chain, horizon, json }) => {
            let store = open_existing(&data_dir)?;
            let chain = chains::any_chain(&store, chain.as_deref())?;
            screening::exposure_cmd(&data_dir, &chain, horizon, json)
        }
        Command::Screen { chain, subjects, file, policy, json } => {
            let mut items = subjects;
            if let Some(f) = &file {
                let text = std::fs::read_to_string(f).with_context(|| format!("reading subjects from {}", f.display()))?;
                items.extend(text.lines().map(|l| l.split('#').next().unwrap_or("").trim().to_string()).filter(|l| !l.is_empty()));
            }
            if items.is_empty() {
                bail!("nothing to screen: give subjects (addresses, txid:vout, transaction hashes, tx/address) or --file");
            }
            let results = screening::screen_items(&data_dir, &chain, &items, policy.as_deref(), json)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                screening::print_results(&results, &mut std::io::stdout())?;
            }
            Ok(())
        }
        Command::Serve(args) => serve::run(&data_dir, &args),
        Command::Keys(cmd) => serve::keys_cmd(&data_dir, cmd),
        Command::Tokens(TokensCmd::Refresh { chain, rpc, max_rps, json }) => evm::tokens_refresh_cmd(&data_dir, &chain, rpc.as_deref(), max_rps, json),
        Command::Incident(IncidentCmd::List { json }) => incidents::list_cmd(&data_dir, json),
        Command::Incident(IncidentCmd::Show { id, json }) => incidents::show_cmd(&data_dir, &id, json),
        Command::Incident(IncidentCmd::Add { file }) => incidents::add_cmd(&data_dir, &file),
        Command::Incident(IncidentCmd::Trace { id, model, max_hops, json }) => {
            let model = tracehound_trace::Model::from_name(&model).with_context(|| format!("--model {model:?}: use haircut, fifo or poison"))?;
            let r = incidents::trace_incident(&data_dir, &id, model, max_hops)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                incidents::print_incident_trace(&r);
            }
            Ok(())
        }
        Command::Prices(PricesCmd::Import { file, asset }) => incidents::prices_import_cmd(&data_dir, &file, asset.as_deref()),
        Command::Report(ReportCmd::Stats { by, format, out, trace, include_simulated, min_attribution, actor }) => {
            let filters = incidents::ReportFilters { include_simulated, min_attribution, actor };
            incidents::report_cmd_with(&data_dir, &by, format, &out, trace.as_deref(), filters)
        }
        Command::Trace { chain, from, model, direction, seed, max_hops, min_amount, since, until, max_nodes, stop_at, fees, format, json, nodes, out } => {
            let mut req = trace_request(chain, from, &model, &direction, max_hops, min_amount, since, until, max_nodes, &stop_at, &fees)?;
            req.seed_side = if seed == "sent" { trace::SeedSide::Sent } else { trace::SeedSide::Received };
            trace::trace_cmd(&data_dir, &req, if json { trace::TraceFormat::Json } else { format }, &out, nodes == "entity")
        }
    }
}

/// Checks and assembles the options of `trace`.
#[allow(clippy::too_many_arguments)]
fn trace_request(
    chain: String,
    from: Vec<String>,
    model: &str,
    direction: &str,
    max_hops: u32,
    min_amount: u128,
    since: Option<String>,
    until: Option<String>,
    max_nodes: usize,
    stop_at: &str,
    fees: &str,
) -> Result<trace::TraceRequest> {
    let model = tracehound_trace::Model::from_name(model).with_context(|| format!("--model {model:?}: use haircut, fifo or poison"))?;
    let direction = match direction {
        "forward" => tracehound_trace::Direction::Forward,
        "backward" => tracehound_trace::Direction::Backward,
        d => bail!("--direction {d:?}: use forward or backward"),
    };
    let fees = match fees {
        "drop" => tracehound_trace::Fees::Drop,
        "follow" => tracehound_trace::Fees::Follow,
        f => bail!("--fees {f:?}: use drop or follow"),
    };
    let mut limits = tracehound_trace::Limits { max_hops, min_amount, max_nodes, ..Default::default() };
    if let Some(s) = &since {
        let (h, t) = trace::parse_point(s, false).context("--since")?;
        if h.is_some() {
            bail!("--since takes a date (YYYY-MM-DD): seeds are filtered by time");
        }
        limits.since_time = t;
    }
    if let Some(u) = &until {
        let (h, t) = trace::parse_point(u, true).context("--until")?;
        limits.until_height = h;
        limits.until_time = t;
    }
    Ok(trace::TraceRequest { chain, from, model, direction, fees, limits, stop_at: trace::parse_stop_at(stop_at)?, seed_side: trace::SeedSide::Received })
}

/// Opens a data directory that holds at least one chain.
pub fn open_existing(data_dir: &Path) -> Result<Store> {
    let store = Store::open(data_dir)?;
    if store.manifest().chain_names().is_empty() {
        bail!(
            "no data in {} yet: run `tracehound ingest ...` or `tracehound demo` first (or point --data-dir / TRACEHOUND_DATA_DIR at your data)",
            data_dir.display()
        );
    }
    Ok(store)
}

/// Opens a data directory for `sql` and `export`: it holds a chain, or at least the tables
/// derived from the label store (`tags`: labels imported before any chain, e.g. a sanctions list
/// screened without chain data).
fn open_tables(data_dir: &Path) -> Result<Store> {
    let store = Store::open(data_dir)?;
    if store.manifest().chain_names().is_empty() && store.derived_tables(None).is_empty() {
        bail!(
            "no data in {} yet: run `tracehound ingest ...` or `tracehound demo` first, or `tracehound labels import` for the label table `tags` (or point --data-dir / TRACEHOUND_DATA_DIR at your data)",
            data_dir.display()
        );
    }
    Ok(store)
}

fn sql_hint(e: tracehound_tables::Error, store: &Store) -> anyhow::Error {
    let msg = e.to_string();
    if msg.contains("not found") && store.manifest().chain_names().is_empty() {
        return anyhow::anyhow!("{msg}\nhint: no chain is ingested yet, only labels: run `tracehound ingest ...` (or `tracehound demo`) for chain tables");
    }
    if msg.contains("not found") && store.manifest().chains.len() > 1 {
        let chains: Vec<_> = store.manifest().chains.keys().cloned().collect();
        return anyhow::anyhow!(
            "{msg}\nhint: several chains are stored ({}); prefix tables with the chain (e.g. {}.transactions) or give --chain",
            chains.join(", "),
            chains[0]
        );
    }
    e.into()
}

fn status(data_dir: &Path, json: bool) -> Result<()> {
    let store = Store::open(data_dir)?;
    let m = store.manifest();
    // The label store counts too: a compliance user may hold labels and no chain data.
    let labels = match labels::labels_path(data_dir).is_file() {
        true => Some(labels::open_labels(data_dir)?.counts()?),
        false => None,
    };
    if json {
        let chains: serde_json::Map<String, serde_json::Value> = m
            .chains
            .iter()
            .map(|(name, c)| {
                let tables: serde_json::Map<String, serde_json::Value> = c
                    .table_names()
                    .into_iter()
                    .map(|t| {
                        let (rows, bytes) = c.table_totals(&t);
                        (t, serde_json::json!({"rows": rows, "bytes": bytes}))
                    })
                    .collect();
                (
                    name.clone(),
                    serde_json::json!({
                        "first_height": c.chunks.first().map(|x| x.first),
                        "tip_height": c.tip().map(|t| t.0),
                        "tip_hash": c.tip().map(|t| t.1),
                        "chunks": c.chunks.len(),
                        "tables": tables,
                        "info": c.info,
                    }),
                )
            })
            .collect();
        let labels = labels.map(|c| serde_json::json!({"tags": c.tags, "actors": c.actors}));
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"data_dir": data_dir, "chains": chains, "imports": m.imports, "labels": labels}))?);
        return Ok(());
    }
    let label_line =
        labels.map(|c| format!("labels: {} tags, {} actors in {} (table `tags` in tracehound sql)", c.tags, c.actors, labels::labels_path(data_dir).display()));
    if m.chain_names().is_empty() {
        println!("{}: nothing ingested yet (try `tracehound demo`)", data_dir.display());
        if let Some(l) = label_line {
            println!("{l}");
        }
        return Ok(());
    }
    println!("data directory: {}", data_dir.display());
    for (name, c) in &m.chains {
        let (tip, hash) = c.tip().expect("chunks");
        println!("{name}: heights {}..={tip} in {} chunks, tip {hash}", c.chunks[0].first, c.chunks.len());
        for t in c.table_names() {
            let (rows, bytes) = c.table_totals(&t);
            println!("  {t:<16} {rows:>12} rows {:>12} bytes", bytes);
        }
    }
    for (name, files) in &m.imports {
        println!("{name}: {} imported files", files.len());
        for f in files {
            println!("  {:<16} {:>12} rows {:>12} bytes  from {}", f.table, f.file.rows, f.file.bytes, f.origin);
        }
    }
    if let Some(l) = label_line {
        println!("{l}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::error_line;
    use anyhow::Context;

    /// A cause that its parent's message already quotes is said once; context that adds words
    /// keeps both.
    #[test]
    fn error_line_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(tracehound_tables::Error::Io { path: "/nonexistent".into(), source: io });
        assert_eq!(error_line(&e), "/nonexistent: No such file or directory (os error 2)");

        let e = Err::<(), _>(std::io::Error::other("disk full")).context("writing chunk 3").unwrap_err();
        assert_eq!(error_line(&e), "writing chunk 3: disk full");
    }
}
