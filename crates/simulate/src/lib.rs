//! A realistic synthetic Bitcoin chain, written in Bitcoin Core's `blk*.dat` format (regtest
//! magic, optionally XOR-obfuscated like Core 28+), with a ground truth of who owns what.
//!
//! It models users with fresh change addresses and some address reuse, miners paying out to
//! users, exchanges whose per-user deposit addresses are swept into a hot wallet, CoinJoins with
//! equal-denomination outputs, round-amount payments, stale blocks and blocks stored out of
//! height order, and a heist: an exchange hot wallet drained by an attacker who splits the loot,
//! runs part of it down peel chains and through CoinJoins, deposits part at exchanges and keeps
//! the rest. Every attacker satoshi is accounted for: deposited, paid as fee, or still held.
//!
//! ```no_run
//! let cfg = tracehound_simulate::SimConfig { blocks: 300, ..Default::default() };
//! let truth = tracehound_simulate::simulate(&cfg, std::path::Path::new("sim"))?;
//! assert_eq!(truth.heist.as_ref().unwrap().unaccounted(), 0);
//! # Ok::<(), tracehound_simulate::Error>(())
//! ```

mod model;
mod writer;

pub use model::{simulate, GroundTruth, Heist, HeistDeposit, HeldOutput, SimConfig, WalletTruth};

/// Errors while writing a simulated chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output directory or a file in it could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A setting that cannot work.
    #[error("{0}")]
    Config(String),
}
