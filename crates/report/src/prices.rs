//! Daily USD prices: the bundled FRED/Coinbase closes plus the user's imports.
//!
//! Bundled: `data/prices/CBBTCUSD.csv` (→ `BTC`) and `CBETHUSD.csv` (→ `ETH`), FRED downloads with the
//! header `DATE,<SERIES>` and `.` for a missing day, 2019-02-09 … 2024-02-09. The user's imports are kept
//! in `<data dir>/prices/prices.csv` (`date,asset,usd`, sorted) and win over bundled prices of the same
//! asset and day.
//!
//! [`PriceTable::import`] reads two formats, told apart by the header:
//! * FRED: `DATE,<SERIES>` (or `observation_date,<SERIES>`); the asset is the explicit argument, else
//!   `CB<ASSET>USD` → `<ASSET>`, else the series name; `.` or an empty value is a missing day, skipped.
//! * generic: columns `date`, `asset`, `usd` in any order (matched by header, case-insensitive); without
//!   an `asset` column the explicit asset argument is required.

use crate::util::{parse_day, parse_partial_date, write_atomic};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

const BUNDLED: [(&str, &str, &str); 2] = [
    ("data/prices/CBBTCUSD.csv", "BTC", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/prices/CBBTCUSD.csv"))),
    ("data/prices/CBETHUSD.csv", "ETH", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/prices/CBETHUSD.csv"))),
];

/// How far back [`PriceTable::usd_at`] looks for a close when the day itself has none.
pub const MAX_PRICE_AGE_DAYS: i64 = 7;

/// One daily close.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PricePoint {
    /// Asset symbol, upper case (`BTC`).
    pub asset: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Close in USD.
    pub usd: f64,
}

/// Daily USD closes by asset and day.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    // (asset, day number) → (date text, usd); day numbers make "within 7 days" exact arithmetic.
    rows: BTreeMap<(String, i64), (String, f64)>,
}

impl PriceTable {
    /// The bundled FRED series (BTC and ETH, 2019-02-09 … 2024-02-09).
    pub fn bundled() -> PriceTable {
        let mut t = PriceTable::default();
        for (file, asset, text) in BUNDLED {
            for p in parse_prices(file, text, Some(asset)).expect("bundled price files parse (checked by the tests)") {
                t.insert(p);
            }
        }
        t
    }

    /// The bundled prices plus `data_dir/prices/prices.csv` (user imports win on the same asset and day).
    pub fn load(data_dir: &Path) -> Result<PriceTable> {
        let mut t = PriceTable::bundled();
        for p in read_user_file(data_dir)? {
            t.insert(p);
        }
        Ok(t)
    }

    /// Imports a FRED or `date,asset,usd` CSV into `data_dir/prices/prices.csv`; returns the rows imported.
    ///
    /// Nothing is written when a row is bad (the error names `file:line`). Rows of the import replace
    /// earlier imports of the same asset and day; the file is replaced atomically.
    pub fn import(data_dir: &Path, file: &Path, asset: Option<&str>) -> Result<usize> {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|source| Error::Io { file: name.clone(), source })?;
        let asset = match asset {
            Some(a) => Some(checked_asset(a).map_err(|reason| Error::File { file: name.clone(), reason: format!("asset {reason}") })?),
            None => None,
        };
        let new = parse_prices(&name, &text, asset.as_deref())?;
        let mut all: BTreeMap<(String, i64), PricePoint> = BTreeMap::new();
        for p in read_user_file(data_dir)?.into_iter().chain(new.iter().cloned()) {
            let day = parse_day(&p.date).expect("validated");
            all.insert((p.asset.clone(), day), p);
        }
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(["date", "asset", "usd"]).expect("write to memory");
        for p in all.values() {
            out.write_record([p.date.as_str(), p.asset.as_str(), &p.usd.to_string()]).expect("write to memory");
        }
        let bytes = out.into_inner().expect("write to memory");
        write_atomic(&user_file(data_dir), &bytes)?;
        Ok(new.len())
    }

    fn insert(&mut self, p: PricePoint) {
        let day = parse_day(&p.date).expect("validated");
        self.rows.insert((p.asset, day), (p.date, p.usd));
    }

    /// The close of `asset` on `date` (`YYYY-MM-DD`), else the nearest earlier close within 7 days,
    /// with the date actually used; `None` outside coverage or for a date that is not a full day.
    pub fn usd_at(&self, asset: &str, date: &str) -> Option<(f64, String)> {
        let day = parse_day(date)?;
        let asset = asset.trim().to_ascii_uppercase();
        let lo = (asset.clone(), day - MAX_PRICE_AGE_DAYS);
        self.rows.range(lo..=(asset, day)).next_back().map(|(_, (d, usd))| (*usd, d.clone()))
    }

    /// The assets with prices and the first and last day of each.
    pub fn coverage(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = Vec::new();
        for ((asset, _), (date, _)) in &self.rows {
            match out.last_mut() {
                Some((a, _, last)) if a == asset => *last = date.clone(),
                _ => out.push((asset.clone(), date.clone(), date.clone())),
            }
        }
        out
    }

    /// Number of daily closes.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no prices.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// All closes, by asset then date.
    pub fn points(&self) -> impl Iterator<Item = PricePoint> + '_ {
        self.rows.iter().map(|((a, _), (d, usd))| PricePoint { asset: a.clone(), date: d.clone(), usd: *usd })
    }
}

fn user_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("prices").join("prices.csv")
}

fn read_user_file(data_dir: &Path) -> Result<Vec<PricePoint>> {
    let path = user_file(data_dir);
    let name = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_prices(&name, &text, None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Io { file: name, source }),
    }
}

fn checked_asset(a: &str) -> Result<String, String> {
    let up = a.trim().to_ascii_uppercase();
    if up.is_empty() || up.len() > 20 || !up.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("{a:?} is not an asset symbol (letters and digits, e.g. BTC)"));
    }
    Ok(up)
}

fn checked_date(s: &str) -> Result<String, String> {
    let s = s.trim();
    match parse_partial_date(s) {
        Some((_, Some(_), Some(_))) => Ok(s.to_string()),
        _ => Err(format!("date {s:?} is not a day (YYYY-MM-DD)")),
    }
}

fn checked_usd(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("price {:?} is not a positive number of US dollars", s.trim())),
    }
}

/// Parses a FRED or generic price CSV (see the module docs); `file` names it in errors.
fn parse_prices(file: &str, text: &str, asset: Option<&str>) -> Result<Vec<PricePoint>> {
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> =
        rd.headers().map_err(|e| Error::Row { file: file.into(), line: 1, reason: e.to_string() })?.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    let find = |n: &str| header.iter().position(|h| h == n);
    let bad_header =
        || Error::Row { file: file.into(), line: 1, reason: format!("header {:?} is neither FRED (DATE,<SERIES>) nor date,asset,usd", header.join(",")) };
    // Either (date col, fixed asset, usd col) or (date col, asset col, usd col).
    enum Asset {
        Fixed(String),
        Column(usize),
    }
    let (c_date, asset_src, c_usd) = match (find("date"), find("asset"), find("usd")) {
        (Some(d), Some(a), Some(u)) => (d, Asset::Column(a), u),
        (Some(d), None, Some(u)) => match asset {
            Some(a) => (d, Asset::Fixed(a.to_string()), u),
            None => return Err(Error::Row { file: file.into(), line: 1, reason: "no asset column; give the asset explicitly (--asset BTC)".into() }),
        },
        _ if header.len() == 2 && (header[0] == "date" || header[0] == "observation_date") => {
            let series = header[1].to_ascii_uppercase();
            let fixed = match asset {
                Some(a) => a.to_string(),
                None => {
                    let inner = series.strip_prefix("CB").and_then(|s| s.strip_suffix("USD")).filter(|s| !s.is_empty()).unwrap_or(&series);
                    checked_asset(inner).map_err(|r| Error::Row {
                        file: file.into(),
                        line: 1,
                        reason: format!("series name: {r}; give the asset explicitly"),
                    })?
                }
            };
            (0, Asset::Fixed(fixed), 1)
        }
        _ => return Err(bad_header()),
    };
    let fred = matches!(asset_src, Asset::Fixed(_)) && header.len() == 2;
    let mut out = Vec::new();
    for rec in rd.records() {
        let r = rec.map_err(|e| Error::Row { file: file.into(), line: e.position().map_or(0, |p| p.line()), reason: e.to_string() })?;
        let line = r.position().map_or(0, |p| p.line());
        let bad = |reason: String| Error::Row { file: file.into(), line, reason };
        if r.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let field = |c: usize| r.get(c).ok_or_else(|| bad(format!("{} fields, expected {}", r.len(), header.len())));
        let date = checked_date(field(c_date)?).map_err(bad)?;
        let usd_text = field(c_usd)?.trim();
        if fred && (usd_text == "." || usd_text.is_empty()) {
            continue; // FRED's "no observation that day"
        }
        let usd = checked_usd(usd_text).map_err(bad)?;
        let asset = match &asset_src {
            Asset::Fixed(a) => a.clone(),
            Asset::Column(c) => checked_asset(field(*c)?).map_err(|r| bad(format!("asset {r}")))?,
        };
        out.push(PricePoint { asset, date, usd });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_prices_read_the_fred_files() {
        let t = PriceTable::bundled();
        assert_eq!(t.len(), 2 * 1826, "1,827 rows each, one of them '.'");
        assert_eq!(t.usd_at("BTC", "2019-02-09"), Some((3623.73, "2019-02-09".into())));
        assert_eq!(t.usd_at("eth", "2019-02-10"), Some((123.94, "2019-02-10".into())));
        // 2020-09-04 is "." in both files: the previous day is used.
        assert_eq!(t.usd_at("BTC", "2020-09-04").unwrap().1, "2020-09-03");
        assert_eq!(t.usd_at("BTC", "2019-02-08"), None);
        assert_eq!(t.usd_at("BTC", "2024-02-16").unwrap().1, "2024-02-09", "7 days back is still in coverage");
        assert_eq!(t.usd_at("BTC", "2024-02-17"), None, "8 days back is not");
        assert_eq!(t.usd_at("BTC", "2022-06"), None, "a month is not a day");
        assert_eq!(t.usd_at("XRP", "2022-06-01"), None);
        assert_eq!(t.coverage()[0], ("BTC".into(), "2019-02-09".into(), "2024-02-09".into()));
    }

    #[test]
    fn generic_and_fred_parsing() {
        let g = parse_prices("g.csv", "usd,Date,asset\n1.0,2022-03-23,usdc\n", None).unwrap();
        assert_eq!(g, [PricePoint { asset: "USDC".into(), date: "2022-03-23".into(), usd: 1.0 }]);
        let f = parse_prices("f.csv", "observation_date,CBLTCUSD\n2022-01-01,140.5\n2022-01-02,.\n", None).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].asset, "LTC");
        let e = parse_prices("g.csv", "date,asset,usd\n2022-01-01,BTC,1\n2022-02-30,BTC,2\n", None).unwrap_err();
        assert_eq!(e.to_string(), r#"g.csv:3: date "2022-02-30" is not a day (YYYY-MM-DD)"#);
        let e = parse_prices("g.csv", "date,asset,usd\n2022-01-01,BTC,-1\n", None).unwrap_err();
        assert!(e.to_string().starts_with("g.csv:2: price"), "{e}");
        let e = parse_prices("g.csv", "date,asset,usd\n2022-01-01,BTC,.\n", None).unwrap_err();
        assert!(e.to_string().starts_with("g.csv:2: price"), "'.' is only FRED's missing marker: {e}");
        assert!(parse_prices("g.csv", "day,price\n", None).unwrap_err().to_string().starts_with("g.csv:1: header"));
        assert!(parse_prices("g.csv", "date,usd\n", None).unwrap_err().to_string().contains("--asset"));
    }
}
