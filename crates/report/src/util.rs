//! Small shared helpers: calendar dates without a date crate, FNV-1a, atomic file writes.

use crate::Error;
use std::io::Write;
use std::path::Path;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number from [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; returns (year, month, day) with the missing parts as `None`.
pub(crate) fn parse_partial_date(s: &str) -> Option<(i64, Option<u32>, Option<u32>)> {
    let mut it = s.split('-');
    let y = i64::from(digits(it.next()?, 4)?);
    let m = match it.next() {
        None => return Some((y, None, None)),
        Some(m) => digits(m, 2).filter(|m| (1..=12).contains(m))?,
    };
    let d = match it.next() {
        None => return Some((y, Some(m), None)),
        Some(d) => digits(d, 2).filter(|d| (1..=days_in_month(y, m)).contains(d))?,
    };
    it.next().is_none().then_some((y, Some(m), Some(d)))
}

/// The day number of a full `YYYY-MM-DD` date.
pub(crate) fn parse_day(s: &str) -> Option<i64> {
    match parse_partial_date(s)? {
        (y, Some(m), Some(d)) => Some(days_from_civil(y, m, d)),
        _ => None,
    }
}

/// Checks an incident date: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY/YYYY` when `allow_range`.
pub(crate) fn check_incident_date(s: &str, allow_range: bool) -> Result<(), String> {
    if let Some((a, b)) = s.split_once('/') {
        let ok = allow_range && digits(a, 4).zip(digits(b, 4)).is_some_and(|(a, b)| a < b);
        return if ok {
            Ok(())
        } else if allow_range {
            Err(format!("{s:?} is not a year range (YYYY/YYYY with the first year before the second)"))
        } else {
            Err(format!("{s:?} is a year range, allowed only for aggregates (aggregate: true)"))
        };
    }
    match parse_partial_date(s) {
        Some(_) => Ok(()),
        None => Err(format!("{s:?} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")),
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub(crate) fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// 64-bit FNV-1a: a stable digest (not a security hash) for registry versions.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Writes `bytes` to `path` so that readers see the old or the new file, never a part:
/// a temporary file in the same directory, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |file: &Path, source| Error::Io { file: file.display().to_string(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // The rename is durable only once the directory entry is; not every platform can open a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_validate() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29) - days_from_civil(2024, 2, 28), 1);
        for z in [-1000, 0, 19_000, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert!(check_incident_date("2022", false).is_ok());
        assert!(check_incident_date("2022-06", false).is_ok());
        assert!(check_incident_date("2024-02-29", false).is_ok());
        assert!(check_incident_date("2023-02-29", false).is_err());
        assert!(check_incident_date("2022-13-01", false).unwrap_err().contains("is not a date"));
        assert!(check_incident_date("22-01-01", false).is_err());
        assert!(check_incident_date("2017/2022", true).is_ok());
        assert!(check_incident_date("2017/2022", false).unwrap_err().contains("aggregate"));
        assert!(check_incident_date("2022/2017", true).is_err());
        assert_eq!(parse_day("2022-03-23"), Some(days_from_civil(2022, 3, 23)));
        assert_eq!(parse_day("2022-03"), None);
    }

    proptest::proptest! {
        #[test]
        fn every_day_formats_and_parses_back(z in -200_000i64..200_000) {
            let (y, m, d) = civil_from_days(z);
            let text = format!("{y:04}-{m:02}-{d:02}");
            if (0..=9999).contains(&y) {
                proptest::prop_assert_eq!(parse_day(&text), Some(z));
                proptest::prop_assert!(check_incident_date(&text, false).is_ok());
            }
        }

        #[test]
        fn date_checks_never_panic(s in "\\PC{0,12}") {
            let _ = check_incident_date(&s, true);
            let _ = parse_day(&s);
        }
    }

    #[test]
    fn fnv_known_answer() {
        // FNV-1a 64 test vectors from the reference implementation.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_html(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/f.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
    }
}
