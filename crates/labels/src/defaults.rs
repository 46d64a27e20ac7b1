//! The bundled default label set, embedded in the binary from `data/labels/` (see `data/labels/SOURCES.md`),
//! so `import_defaults` works without the repository.

use crate::model::{CsvImport, ImportReport};
use crate::store::LabelStore;
use crate::Result;

/// How a bundled file is imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundledKind {
    /// GraphSense ActorPack or TagPack.
    Pack,
    /// An OFAC file (format detected from name and content).
    Ofac,
    /// The incident attacker list (actor `lazarusgroup` for every incident but [`SUSPECTED_ONLY_INCIDENTS`]).
    IncidentCsv,
    /// The Etherscan malicious-address list published by Forta.
    FortaCsv,
}

/// One embedded file: its path under `data/labels/`, how to import it, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct BundledFile {
    /// Path relative to `data/labels/`.
    pub path: &'static str,
    /// Importer to use.
    pub kind: BundledKind,
    /// File contents.
    pub bytes: &'static [u8],
}

/// Declares an embedded file of `data/labels/`.
macro_rules! bundled {
    ($kind:ident, $path:literal) => {
        BundledFile { path: $path, kind: BundledKind::$kind, bytes: include_bytes!(concat!("../../../data/labels/", $path)) }
    };
}

/// The bundled files in import order: actor pack, TagPacks, OFAC SDN rows (after the actor pack, so `LAZARUS GROUP`
/// links to `lazarusgroup`), OFAC per-asset lists, incident attacker list, Forta/Etherscan list.
pub const BUNDLED_FILES: [BundledFile; 42] = [
    bundled!(Pack, "graphsense/actors/graphsense.actorpack.yaml"),
    bundled!(Pack, "graphsense/packs/lazarus.yaml"),
    bundled!(Pack, "graphsense/packs/lazarus2.yaml"),
    bundled!(Pack, "graphsense/packs/ronin_bridge.yaml"),
    bundled!(Pack, "graphsense/packs/tornado_cash.yaml"),
    bundled!(Pack, "graphsense/packs/hacks.yaml"),
    bundled!(Pack, "graphsense/packs/binance_hack.yaml"),
    bundled!(Pack, "graphsense/packs/mixing_fc2021.yaml"),
    bundled!(Pack, "graphsense/packs/blender_io.yaml"),
    bundled!(Pack, "graphsense/packs/sinbad_io.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-binance.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-bitfinexcom.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-bybit.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-cryptocom.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-deribit.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-huobi.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-kucoin.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-okx.yaml"),
    bundled!(Pack, "graphsense/packs/exchange-wallets-swissborg.yaml"),
    bundled!(Pack, "graphsense/packs/etherscan-wordcloud-exchange.yaml"),
    bundled!(Pack, "graphsense/packs/etherscan-wordcloud-mixing_service.yaml"),
    bundled!(Pack, "graphsense/packs/walletexplorer.yaml"),
    bundled!(Ofac, "ofac/sdn_digital_currency_rows.csv"),
    bundled!(Ofac, "ofac/sanctioned_addresses_XBT.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_ETH.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_USDT.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_USDC.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_LTC.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_BCH.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_BSV.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_BTG.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_TRX.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_DASH.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_XMR.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_ZEC.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_ETC.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_XRP.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_XVG.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_ARB.txt"),
    bundled!(Ofac, "ofac/sanctioned_addresses_BSC.txt"),
    bundled!(IncidentCsv, "incidents/attacker_addresses.csv"),
    bundled!(FortaCsv, "forta/etherscan_malicious_labels.csv"),
];

/// Incidents of the bundled attacker list that are only suspected, not attributed (the registry's
/// attribution level `suspected`, see `data/incidents/SOURCES.md`): their addresses keep category and
/// source but get no actor. Every other incident of the list is DPRK-attributed (actor `lazarusgroup`).
pub const SUSPECTED_ONLY_INCIDENTS: [&str; 1] = ["orbit_bridge_2023"];

/// Tag source of the bundled incident attacker list.
pub const INCIDENT_SOURCE: &str = "tracehound incident attacker list";
/// Tag source of the bundled Forta/Etherscan list.
pub const FORTA_SOURCE: &str = "Etherscan labels via Forta";

impl LabelStore {
    /// Imports the bundled default set (see [`BUNDLED_FILES`]); importing it again inserts nothing.
    pub fn import_defaults(&mut self) -> Result<Vec<ImportReport>> {
        let mut reports = Vec::new();
        for file in &BUNDLED_FILES {
            let shown = format!("data/labels/{}", file.path);
            let name = file.path.rsplit('/').next().unwrap_or(file.path);
            let report = match file.kind {
                BundledKind::Pack => self.import_tagpack_bytes(&shown, name, file.bytes)?,
                BundledKind::Ofac => self.import_ofac_bytes(&shown, name, file.bytes)?,
                BundledKind::IncidentCsv => {
                    let options = CsvImport {
                        source: INCIDENT_SOURCE.to_string(),
                        actor: Some("lazarusgroup".to_string()),
                        confidence: Some("forensic".to_string()),
                        ..CsvImport::default()
                    };
                    self.import_incident_csv_bytes(&shown, name, file.bytes, &options)?
                }
                BundledKind::FortaCsv => {
                    let options = CsvImport {
                        source: FORTA_SOURCE.to_string(),
                        chain: Some("ethereum".to_string()),
                        confidence: Some("web_crawl".to_string()),
                        ..CsvImport::default()
                    };
                    self.import_csv_bytes(&shown, name, file.bytes, &options)?
                }
            };
            reports.push(report);
        }
        Ok(reports)
    }
}
