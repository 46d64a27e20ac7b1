//! Daily USD prices: the user's imports, stablecoins at $1, and a simulated series for the demo.
//!
//! No third-party price series is bundled: no daily BTC/ETH series for 2016–2025 with a licence that
//! allows redistribution was found (see `data/prices/SOURCES.md`, which also says where to download
//! the formats below). The user's imports are kept in `<data dir>/prices/prices.csv` (`date,asset,usd`,
//! sorted).
//!
//! Stablecoins ([`STABLECOINS`]: USDT, USDC, DAI) are worth $1 **by definition** on any day without an
//! imported close: their issuers target $1, and they traded within a few cents of it on most days, but
//! not all (USDC and DAI fell to about $0.88 on 2023-03-11, USDT to about $0.95 in May 2022); import a
//! series to use market prices, which then win.
//!
//! [`PriceTable::simulated`] is a made-up BTC/ETH series for cases on simulated chains (the demo's
//! heist); it is marked [`PriceTable::is_simulated`] and must never value a real incident.
//!
//! [`PriceTable::import`] reads three formats, told apart by the header:
//! * FRED: `DATE,<SERIES>` (or `observation_date,<SERIES>`); the asset is the explicit argument, else
//!   `CB<ASSET>USD` → `<ASSET>`, else the series name; `.` or an empty value is a missing day, skipped.
//! * CoinMetrics community CSV (`csv/<asset>.csv` of github.com/coinmetrics/data): columns `time` and
//!   `PriceUSD` among many others; the asset is the explicit argument, else the file name (`btc.csv` →
//!   `BTC`); days without a `PriceUSD` are skipped; `time` may carry a time of day (`…T00:00:00Z`).
//! * generic: columns `date`, `asset`, `usd` in any order (matched by header, case-insensitive); without
//!   an `asset` column the explicit asset argument is required.

use crate::util::{parse_day, parse_partial_date, write_atomic};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Assets valued at $1 on any day without an imported close (see the module docs for the depeg caveat).
pub const STABLECOINS: [&str; 3] = ["USDT", "USDC", "DAI"];

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
    simulated: bool,
}

impl PriceTable {
    /// What ships with tracehound: no third-party series, only stablecoins at $1 ([`STABLECOINS`]).
    pub fn bundled() -> PriceTable {
        PriceTable::default()
    }

    /// A made-up daily BTC and ETH series, 2009-01-03 … 2035-12-31, for cases on simulated chains (the
    /// demo's heist). Not market prices: BTC = 30,000 + 8,000 × sin(2π × day / 365.25) USD (day 0 =
    /// 1970-01-01), ETH = BTC / 15. [`PriceTable::is_simulated`] is true.
    pub fn simulated() -> PriceTable {
        let mut t = PriceTable { simulated: true, ..PriceTable::default() };
        let (first, last) = (parse_day("2009-01-03").expect("a day"), parse_day("2035-12-31").expect("a day"));
        for day in first..=last {
            let btc = 30_000.0 + 8_000.0 * (std::f64::consts::TAU * day as f64 / 365.25).sin();
            let btc = (btc * 100.0).round() / 100.0;
            let date = crate::date_of_unix(day as u64 * 86_400);
            t.rows.insert(("BTC".into(), day), (date.clone(), btc));
            t.rows.insert(("ETH".into(), day), (date, (btc / 15.0 * 100.0).round() / 100.0));
        }
        t
    }

    /// Whether these are [`PriceTable::simulated`] prices (a demo's), not market prices.
    pub fn is_simulated(&self) -> bool {
        self.simulated
    }

    /// The user's imports, `data_dir/prices/prices.csv` (stablecoins at $1 where none is imported).
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
    /// with the date actually used; a stablecoin ([`STABLECOINS`]) without one is $1 on `date`;
    /// `None` outside coverage or for a date that is not a full day.
    pub fn usd_at(&self, asset: &str, date: &str) -> Option<(f64, String)> {
        let day = parse_day(date)?;
        let asset = asset.trim().to_ascii_uppercase();
        let lo = (asset.clone(), day - MAX_PRICE_AGE_DAYS);
        let stable = STABLECOINS.contains(&asset.as_str());
        self.rows.range(lo..=(asset, day)).next_back().map(|(_, (d, usd))| (*usd, d.clone())).or_else(|| stable.then(|| (1.0, date.trim().to_string())))
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
    let file_asset = || {
        let stem = Path::new(file).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        asset.map(str::to_string).or_else(|| checked_asset(&stem).ok())
    };
    let coinmetrics = find("time").is_some() && find("priceusd").is_some();
    let (c_date, asset_src, c_usd) = match (find("date"), find("asset"), find("usd")) {
        _ if coinmetrics => match file_asset() {
            Some(a) => (find("time").expect("found"), Asset::Fixed(a), find("priceusd").expect("found")),
            None => return Err(Error::Row { file: file.into(), line: 1, reason: "CoinMetrics file: give the asset explicitly (--asset BTC)".into() }),
        },
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
        let date_text = field(c_date)?.trim();
        let date_text = if coinmetrics { date_text.split('T').next().unwrap_or(date_text) } else { date_text };
        let date = checked_date(date_text).map_err(bad)?;
        let usd_text = field(c_usd)?.trim();
        if (fred && (usd_text == "." || usd_text.is_empty())) || (coinmetrics && usd_text.is_empty()) {
            continue; // FRED's "no observation that day", or a CoinMetrics day before the asset traded
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
    fn nothing_third_party_is_bundled_and_stablecoins_are_one_dollar() {
        let t = PriceTable::bundled();
        assert!(t.is_empty() && !t.is_simulated());
        assert_eq!(t.usd_at("BTC", "2022-03-23"), None);
        assert_eq!(t.usd_at("usdc", "2023-03-11"), Some((1.0, "2023-03-11".into())), "by definition, depeg or not");
        assert_eq!(t.usd_at("DAI", "2022-06"), None, "a month is not a day");
        // An imported close wins over the $1 rule.
        let mut t = PriceTable::default();
        t.insert(PricePoint { asset: "USDC".into(), date: "2023-03-11".into(), usd: 0.88 });
        assert_eq!(t.usd_at("USDC", "2023-03-12"), Some((0.88, "2023-03-11".into())));
    }

    #[test]
    fn fred_files_seven_days_back() {
        let f = parse_prices("CBBTCUSD.csv", "DATE,CBBTCUSD\n2024-02-08,45000\n2024-02-09,47000.0\n2024-02-10,.\n", None).unwrap();
        let mut t = PriceTable::default();
        for p in f {
            t.insert(p);
        }
        assert_eq!(t.len(), 2, "'.' is a missing day");
        assert_eq!(t.usd_at("btc", "2024-02-10").unwrap().1, "2024-02-09");
        assert_eq!(t.usd_at("BTC", "2024-02-16").unwrap().1, "2024-02-09", "7 days back is still in coverage");
        assert_eq!(t.usd_at("BTC", "2024-02-17"), None, "8 days back is not");
        assert_eq!(t.usd_at("BTC", "2024-02-07"), None);
        assert_eq!(t.coverage()[0], ("BTC".into(), "2024-02-08".into(), "2024-02-09".into()));
    }

    #[test]
    fn simulated_series_is_marked_and_in_a_plausible_range() {
        let s = PriceTable::simulated();
        assert!(s.is_simulated());
        for date in ["2009-01-03", "2016-10-13", "2022-04-02", "2035-12-31"] {
            let (btc, used) = s.usd_at("BTC", date).unwrap();
            assert!((22_000.0..=38_000.0).contains(&btc) && used == date, "{date}: {btc}");
            assert!((s.usd_at("ETH", date).unwrap().0 - btc / 15.0).abs() < 0.01);
        }
        assert_eq!(s.usd_at("BTC", "2008-12-31"), None);
    }

    #[test]
    fn coinmetrics_community_csv() {
        let text = "time,AdrActCnt,PriceUSD,SplyCur\n2010-07-17,100,,1\n2010-07-18T00:00:00.000000000Z,200,0.0858,2\n";
        let c = parse_prices("data/csv/btc.csv", text, None).unwrap();
        assert_eq!(c, [PricePoint { asset: "BTC".into(), date: "2010-07-18".into(), usd: 0.0858 }]);
        assert_eq!(parse_prices("x.csv", text, Some("ETH")).unwrap()[0].asset, "ETH");
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
