//! Shared vocabulary of tracehound: the chains it knows, exact amounts, and how output scripts
//! become typed addresses. This crate does no I/O.
//!
//! ```
//! use tracehound_core::{amount::parse_btc, UtxoChain};
//! assert_eq!(parse_btc("50.00000000").unwrap(), 5_000_000_000);
//! let chain = UtxoChain::from_name("bitcoin").unwrap();
//! assert_eq!(chain.magic(), Some([0xf9, 0xbe, 0xb4, 0xd9]));
//! ```

pub mod amount;
pub mod chain;
pub mod evm;
pub mod script;

pub use chain::UtxoChain;

/// Errors of the shared vocabulary (bad names, bad amounts).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A decimal coin amount that is not an exact number of base units.
    #[error("invalid amount {text:?}: {reason}")]
    Amount {
        /// The text that was given.
        text: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A JSON-RPC quantity or uint256 text that is not an exact integer.
    #[error("invalid quantity {text:?}: {reason}")]
    Quantity {
        /// The text that was given (at most 80 characters of it).
        text: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A chain name tracehound does not know.
    #[error("unknown chain {0:?}; known UTXO chains: {known}", known = chain::UtxoChain::ALL_NAMES.join(", "))]
    UnknownChain(String),
}
