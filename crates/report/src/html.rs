//! A self-contained HTML report: inline CSS, SVG charts drawn with plotters, no scripts, no external assets.
//!
//! Charts: (a) reported stolen USD per year stacked by actor, (b) the top countries by reported USD,
//! (c) with a [`TraceSummary`], where a traced incident's funds went. Below them, tables with every
//! figure and the incident ids and sources behind it, the published aggregates, the incident list, the
//! registry version and the generation date.
//!
//! Simulated cases (the `demo` heist, [`crate::Provenance::Simulated`]) are not real incidents: the
//! charts follow the table's [`StatsTable::include_simulated`] (left out by default), the incident
//! list leaves them out, and each gets a section of its own at the end, "Simulated case: …", that
//! says so; a [`TraceSummary`] of a simulated case is drawn there, not next to the real figures.
//!
//! plotters is built without font support (`svg_backend` only): the SVG backend writes text as
//! `<text>` elements that the browser lays out, so no font file or system font library is needed.

use crate::incidents::{Incident, Registry};
use crate::prices::PriceTable;
use crate::stats::{group_digits, stats_with, Dim, ReproductionStatus, StatsOptions, StatsTable, REPRODUCTION_TOLERANCE};
use crate::util::{escape_html as esc, today};
use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Where the funds of one traced incident went, for chart (c).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TraceSummary {
    /// Incident id.
    pub incident: String,
    /// Unit of the amounts (`BTC`, `ETH`).
    pub unit: String,
    /// (label, kind, amount in `unit`, USD if known); kinds such as exchange, mixer, bridge,
    /// still_held, fees, below_threshold.
    pub destinations: Vec<(String, String, f64, Option<f64>)>,
    /// The USD figures come from [`crate::PriceTable::simulated`] (a demo's made-up prices), and the
    /// report says so next to them.
    pub simulated_prices: bool,
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.5rem 0}\
th,td{border:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;text-align:left}\
th{background:#f3f3f3}td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\
.meta{color:#555;font-size:.9rem}.note{color:#555;font-size:.85rem}.warn{color:#a00}\
.chart svg{max-width:100%;height:auto;border:1px solid #eee}.src{font-size:.8rem;color:#444}";

/// The report page, dated today (UTC); see [`html_report_at`].
pub fn html_report(title: &str, stats: &StatsTable, registry: &Registry, destinations: Option<&TraceSummary>) -> String {
    html_report_at(title, stats, registry, destinations, &today())
}

/// The report page with an explicit generation date, for reproducible output.
pub fn html_report_at(title: &str, table: &StatsTable, registry: &Registry, destinations: Option<&TraceSummary>, generated: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    );
    let version = registry.version();
    let real = || registry.incidents().iter().filter(|i| !i.is_simulated());
    let simulated: Vec<&Incident> = registry.incidents().iter().filter(|i| i.is_simulated()).collect();
    let _ = writeln!(
        h,
        "<p class=\"meta\">Generated {} by tracehound. Incident registry version <code>{}</code> ({} incidents, {} published aggregates{}).</p>",
        esc(generated),
        esc(&version),
        real().filter(|i| !i.aggregate).count(),
        real().filter(|i| i.aggregate).count(),
        match simulated.len() {
            0 => String::new(),
            1 => ", and 1 simulated case".into(),
            n => format!(", and {n} simulated cases"),
        },
    );
    if table.registry_version != version {
        let _ = writeln!(
            h,
            "<p class=\"warn\">The statistics below were computed from registry version <code>{}</code>, not the one above: the registry changed since.</p>",
            esc(&table.registry_version)
        );
    }
    h.push_str("<p class=\"note\">USD figures are as reported at the time of each theft unless marked revalued. Published aggregates overlap the incidents and are never added to them.</p>\n");
    if let Some(filter) = table.filter_note() {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&filter));
    }
    if let Some(note) = table.simulated_note() {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} See the section{} \"Simulated case\" at the end.</p>",
            esc(&note),
            if table.simulated.len() == 1 { "" } else { "s" }
        );
    }

    // Charts use reported USD of the whole registry, whatever dimensions the table below was grouped by,
    // with the simulated cases only if the table counts them.
    let options = StatsOptions { include_simulated: table.include_simulated, min_attribution: table.min_attribution, actor: table.actor.clone() };
    let by_year_actor = stats_with(registry, &PriceTable::default(), &[Dim::Year, Dim::Actor], options.clone());
    let by_country = stats_with(registry, &PriceTable::default(), &[Dim::Country], options);
    h.push_str("<h2>Stolen USD per year, by actor</h2>\n");
    push_chart(&mut h, chart_year_actor(&by_year_actor));
    h.push_str("<h2>Top countries by stolen USD</h2>\n");
    push_chart(&mut h, chart_countries(&by_country));
    // A simulated case's trace goes to its own section below, away from the real figures.
    let trace_of_simulated = destinations.is_some_and(|t| simulated.iter().any(|i| i.id == t.incident));
    if let Some(t) = destinations.filter(|_| !trace_of_simulated) {
        let _ = writeln!(h, "<h2>Where the funds of <code>{}</code> went ({})</h2>", esc(&t.incident), esc(&t.unit));
        push_chart(&mut h, chart_destinations(t));
        push_destinations_table(&mut h, t);
    }

    push_stats_table(&mut h, table);
    push_published(&mut h, table);
    push_incidents(&mut h, registry);
    for i in simulated {
        push_simulated(&mut h, i, table.include_simulated, destinations.filter(|t| t.incident == i.id));
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn push_chart(h: &mut String, svg: Result<String, String>) {
    match svg {
        Ok(svg) => {
            h.push_str("<div class=\"chart\">\n");
            // plotters writes an XML-less <svg> element; it is valid inline HTML as is.
            h.push_str(&svg);
            h.push_str("</div>\n");
        }
        Err(e) => {
            let _ = writeln!(h, "<p class=\"warn\">The chart could not be drawn: {}</p>", esc(&e));
        }
    }
}

fn millions(usd: f64) -> f64 {
    usd / 1e6
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0].iter().map(|m| m * mag).find(|m| *m >= v * 1.05).unwrap_or(10.0 * mag)
}

/// Segments on a category axis: an integer range `0..n-1` has `n` segments, and a one-category
/// range would be empty, so one category gets a second, unlabelled slot.
fn slots(categories: usize) -> i32 {
    categories.max(2) as i32
}

/// Axis numbers without a pointless `.0`, small ones with two decimals.
fn axis_number(v: &f64) -> String {
    if v.abs() >= 10.0 || *v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn category_formatter(names: &[String]) -> impl Fn(&SegmentValue<i32>) -> String + '_ {
    move |v| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names.get(*i as usize).cloned().unwrap_or_default(),
        SegmentValue::Last => String::new(),
    }
}

fn draw<F>(size: (u32, u32), f: F) -> Result<String, String>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), DrawingAreaErrorKind<std::io::Error>>,
{
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        f(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// (a) Stacked bars: x = year, one colour per actor.
fn chart_year_actor(t: &StatsTable) -> Result<String, String> {
    // Every year of the span gets a slot, so a year without incidents shows as a gap, not as nothing.
    let listed: std::collections::BTreeSet<i32> = t.groups.iter().filter_map(|g| g.key[0].parse().ok()).collect();
    let years: Vec<String> = match (listed.first(), listed.last()) {
        (Some(a), Some(b)) => (*a..=*b).map(|y| y.to_string()).collect(),
        _ => Vec::new(),
    };
    let actors: Vec<String> = t.groups.iter().map(|g| g.key[1].clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if years.is_empty() {
        return Err("no incidents".into());
    }
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    for g in &t.groups {
        *totals.entry(g.key[0].as_str()).or_default() += millions(g.usd_reported as f64);
    }
    let ymax = nice_max(totals.values().copied().fold(0.0, f64::max));
    let n = slots(years.len());
    draw((900, 420), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Reported stolen USD per year (millions), stacked by actor", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..ymax)?;
        let fmt = category_formatter(&years);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(years.len())
            .x_label_formatter(&fmt)
            .y_label_formatter(&axis_number)
            .y_desc("USD (millions)")
            .draw()?;
        let mut base = vec![0f64; years.len()];
        for (k, actor) in actors.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let mut bars = Vec::new();
            for g in t.groups.iter().filter(|g| &g.key[1] == actor) {
                let x = years.iter().position(|y| *y == g.key[0]).expect("year listed") as i32;
                let v = millions(g.usd_reported as f64);
                let lo = base[x as usize];
                base[x as usize] += v;
                let mut r = Rectangle::new([(SegmentValue::Exact(x), lo), (SegmentValue::Exact(x + 1), lo + v)], color.filled());
                r.set_margin(0, 0, 6, 6);
                bars.push(r);
            }
            chart.draw_series(bars)?.label(actor.as_str()).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
        chart.draw_series(totals.iter().map(|(year, v)| {
            let x = years.iter().position(|y| y == year).expect("year listed") as i32;
            EmptyElement::at((SegmentValue::CenterOf(x), *v)) + Text::new(axis_number(v), (-14, -16), ("sans-serif", 12))
        }))?;
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
        Ok(())
    })
}

/// (b) Bars: the ten countries with the most reported USD.
fn chart_countries(t: &StatsTable) -> Result<String, String> {
    let mut rows: Vec<(String, f64)> = t.groups.iter().map(|g| (g.key[0].clone(), millions(g.usd_reported as f64))).collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(10);
    if rows.is_empty() {
        return Err("no incidents".into());
    }
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let ymax = nice_max(rows[0].1);
    let n = slots(rows.len());
    draw((900, 360), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Reported stolen USD by actor country (millions)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..ymax)?;
        let fmt = category_formatter(&names);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len())
            .x_label_formatter(&fmt)
            .y_label_formatter(&axis_number)
            .y_desc("USD (millions)")
            .draw()?;
        chart.draw_series(
            rows.iter()
                .enumerate()
                .map(|(i, (_, v))| EmptyElement::at((SegmentValue::CenterOf(i as i32), *v)) + Text::new(axis_number(v), (-14, -16), ("sans-serif", 12))),
        )?;
        chart.draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
            let mut r = Rectangle::new([(SegmentValue::Exact(i as i32), 0.0), (SegmentValue::Exact(i as i32 + 1), *v)], Palette99::pick(0).filled());
            r.set_margin(0, 0, 10, 10);
            r
        }))?;
        Ok(())
    })
}

/// (c) Horizontal bars: one per destination, coloured by kind.
fn chart_destinations(t: &TraceSummary) -> Result<String, String> {
    if t.destinations.is_empty() {
        return Err("the trace summary has no destinations".into());
    }
    // plotters counts the y axis upwards; reversed, the first destination is drawn at the top.
    let rows: Vec<&(String, String, f64, Option<f64>)> = t.destinations.iter().rev().collect();
    // Long labels (a CoinJoin's txid) are cut in the chart; the table below has them whole.
    let short = |l: &str| if l.chars().count() > 34 { format!("{}…", l.chars().take(33).collect::<String>()) } else { l.to_string() };
    let names: Vec<String> = rows.iter().map(|(l, k, _, _)| format!("{} ({k})", short(l))).collect();
    let kinds: Vec<&str> = t.destinations.iter().map(|d| d.1.as_str()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let xmax = nice_max(t.destinations.iter().map(|d| d.2).fold(0.0, f64::max));
    let n = slots(names.len());
    let label_width = (names.iter().map(|s| s.chars().count()).max().unwrap_or(10) as u32 * 7 + 16).min(360);
    let height = (120 + 28 * names.len() as u32).min(1600);
    let caption = format!("Destinations of {} ({})", t.incident, t.unit);
    draw((900, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption.as_str(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0f64..xmax, (0..n - 1).into_segmented())?;
        let fmt = category_formatter(&names);
        chart.configure_mesh().disable_y_mesh().y_labels(names.len()).y_label_formatter(&fmt).x_label_formatter(&axis_number).x_desc(t.unit.as_str()).draw()?;
        chart.draw_series(rows.iter().enumerate().map(|(i, (_, _, amount, _))| {
            EmptyElement::at((amount.max(0.0), SegmentValue::CenterOf(i as i32))) + Text::new(axis_number(amount), (6, -6), ("sans-serif", 12))
        }))?;
        chart.draw_series(rows.iter().enumerate().map(|(i, (_, kind, amount, _))| {
            let color = Palette99::pick(kinds.iter().position(|k| k == kind).unwrap_or(0));
            let mut r = Rectangle::new([(0.0, SegmentValue::Exact(i as i32)), (amount.max(0.0), SegmentValue::Exact(i as i32 + 1))], color.filled());
            r.set_margin(4, 4, 0, 0);
            r
        }))?;
        Ok(())
    })
}

fn push_destinations_table(h: &mut String, t: &TraceSummary) {
    if t.simulated_prices {
        h.push_str("<p class=\"warn\">USD at tracehound's simulated price series (made up for the demo), not at market prices.</p>\n");
    }
    let usd_head = if t.simulated_prices { "USD (simulated prices)" } else { "USD" };
    let _ = writeln!(h, "<table>\n<tr><th>destination</th><th>kind</th><th>amount ({})</th><th>{usd_head}</th></tr>", esc(&t.unit));
    for (label, kind, amount, usd) in &t.destinations {
        let usd = usd.map_or_else(|| "–".into(), |u| group_digits(u.round().max(0.0) as u64));
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td><td class=\"n\">{amount:.8}</td><td class=\"n\">{usd}</td></tr>", esc(label), esc(kind));
    }
    h.push_str("</table>\n");
}

fn push_stats_table(h: &mut String, t: &StatsTable) {
    let dims: Vec<&str> = t.dims.iter().map(|d| d.name()).collect();
    let _ = writeln!(
        h,
        "<h2>Statistics{}</h2>\n<table>\n<tr>{}<th>incidents</th><th>USD reported</th><th>USD revalued</th><th>incident ids</th><th>sources</th></tr>",
        if dims.is_empty() { String::new() } else { format!(" by {}", esc(&dims.join(", "))) },
        dims.iter().map(|d| format!("<th>{}</th>", esc(d))).collect::<String>()
    );
    for g in &t.groups {
        let revalued = match (g.usd_revalued, g.not_revalued) {
            (None, _) => "–".to_string(),
            (Some(v), 0) => group_digits(v),
            (Some(v), n) => format!("{} <span class=\"note\">({n} not revalued)</span>", group_digits(v)),
        };
        let missing = if g.usd_missing > 0 { format!(" <span class=\"note\">({} without USD)</span>", g.usd_missing) } else { String::new() };
        let _ = writeln!(
            h,
            "<tr>{}<td class=\"n\">{}</td><td class=\"n\">{}{missing}</td><td class=\"n\">{revalued}</td><td>{}</td><td class=\"src\">{}</td></tr>",
            g.key.iter().map(|k| format!("<td>{}</td>", esc(k))).collect::<String>(),
            g.count,
            group_digits(g.usd_reported),
            g.incidents.iter().map(|i| esc(i)).collect::<Vec<_>>().join("<br>"),
            g.sources.iter().map(|s| esc(s)).collect::<Vec<_>>().join("<br>"),
        );
    }
    let revalued = t.totals.usd_revalued.map_or_else(|| "–".into(), group_digits);
    let _ = writeln!(
        h,
        "<tr><th colspan=\"{}\">total</th><td class=\"n\"><b>{}</b></td><td class=\"n\"><b>{}</b></td><td class=\"n\">{revalued}</td><td></td><td></td></tr>\n</table>",
        dims.len().max(1),
        t.totals.count,
        group_digits(t.totals.usd_reported),
    );
    let revaluations: Vec<_> = t.groups.iter().flat_map(|g| &g.revaluations).collect();
    if !revaluations.is_empty() {
        h.push_str("<p class=\"note\">Revalued at the daily close (USD):</p>\n<table>\n<tr><th>incident</th><th>amount</th><th>asset</th><th>close</th><th>close date</th><th>USD</th></tr>\n");
        for r in revaluations {
            for p in &r.parts {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{:.2}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                    esc(&r.incident),
                    p.amount,
                    esc(&p.asset),
                    p.usd_price,
                    esc(&p.price_date),
                    group_digits((p.amount * p.usd_price).round() as u64)
                );
            }
        }
        h.push_str("</table>\n");
    }
    let unrevalued = t.unrevalued_by_reason();
    if !unrevalued.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">Not revalued in USD ({} of {} incidents), by reason:</p>\n<table>\n<tr><th>reason</th><th>incident</th><th>what causes it</th></tr>",
            t.totals.not_revalued, t.totals.count
        );
        for (reason, list) in unrevalued {
            for (k, n) in list.iter().enumerate() {
                let cell = if k == 0 { format!("<td rowspan=\"{}\">{}</td>", list.len(), esc(reason)) } else { String::new() };
                let _ = writeln!(h, "<tr>{cell}<td>{}</td><td>{}</td></tr>", esc(&n.incident), esc(&n.detail));
            }
        }
        h.push_str("</table>\n");
    }
}

fn push_published(h: &mut String, t: &StatsTable) {
    if t.published.is_empty() {
        return;
    }
    push_reproductions(h, t);
    h.push_str("<h2>Published aggregate figures (not added to the incidents)</h2>\n<table>\n<tr><th>id</th><th>figure</th><th>period</th><th>attribution</th><th>USD as published</th><th>source</th></tr>\n");
    for p in &t.published {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"src\">{}</td></tr>",
            esc(&p.id),
            esc(&p.name),
            esc(&p.date),
            esc(&p.actor_name),
            p.usd.map_or_else(|| "–".into(), group_digits),
            p.sources.iter().map(|s| esc(s)).collect::<Vec<_>>().join("<br>"),
        );
    }
    h.push_str("</table>\n");
}

/// Each published total beside the registry's sum for its years, the difference, the verdict and why.
fn push_reproductions(h: &mut String, t: &StatsTable) {
    if t.reproductions.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>Published totals beside the registry</h2>\n<p class=\"note\">A published total is <b>reproduced</b> when the sum of the registry's incidents of the same years (with the filters above) is within {:.0}% of it. The incidents are listed largest first.</p>\n<table>\n<tr><th>years</th><th>published by</th><th>USD published</th><th>registry USD</th><th>difference</th><th>verdict</th><th>why</th><th>incidents behind the registry sum</th></tr>",
        REPRODUCTION_TOLERANCE * 100.0
    );
    for r in &t.reproductions {
        let years = if r.first_year == r.last_year { r.first_year.to_string() } else { format!("{}–{}", r.first_year, r.last_year) };
        let counted = r.published_incidents.map(|n| format!("<br><span class=\"note\">{n} incidents</span>")).unwrap_or_default();
        let revised = r.revised_usd.map(|v| format!("<br><span class=\"note\">revised: {}</span>", group_digits(v))).unwrap_or_default();
        let missing = if r.registry_missing_usd > 0 { format!(", {} without USD", r.registry_missing_usd) } else { String::new() };
        let verdict = match r.status {
            ReproductionStatus::Reproduced => "<b>reproduced</b>".to_string(),
            ReproductionStatus::NotReproduced => "<b class=\"warn\">not reproduced</b>".to_string(),
        };
        let revised_verdict = match (r.revised_status, r.revised_difference_pct) {
            (Some(s), Some(p)) => format!("<br><span class=\"note\">revised figure: {p:+.1}%, {}</span>", s.text()),
            _ => String::new(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}<br><code>{}</code></td><td class=\"n\">{}{counted}{revised}</td><td class=\"n\">{}<br><span class=\"note\">{} incidents{missing}</span></td><td class=\"n\">{}{}<br>{:+.1}%</td><td>{verdict}{revised_verdict}</td><td class=\"src\">{}</td><td class=\"src\">{}</td></tr>",
            esc(&years),
            esc(&r.publisher),
            esc(&r.aggregate),
            group_digits(r.published_usd),
            group_digits(r.registry_usd),
            r.registry_count,
            if r.difference_usd < 0 { "−" } else { "+" },
            group_digits(r.difference_usd.unsigned_abs()),
            r.difference_pct,
            esc(&r.why),
            r.incidents.iter().map(|i| esc(i)).collect::<Vec<_>>().join(", "),
        );
    }
    h.push_str("</table>\n<ul>\n");
    for r in &t.reproductions {
        let _ = writeln!(h, "<li>{}</li>", esc(&r.sentence()));
    }
    h.push_str("</ul>\n");
}

fn push_incidents(h: &mut String, registry: &Registry) {
    h.push_str("<h2>Incidents</h2>\n<table>\n<tr><th>id</th><th>name</th><th>date</th><th>victim (type)</th><th>actor (as reported)</th><th>attribution</th><th>country</th><th>amount (native)</th><th>USD reported</th><th>trace seeds</th><th>sources</th></tr>\n");
    for i in registry.incidents().iter().filter(|i| !i.aggregate && !i.is_simulated()) {
        let origin = if i.is_bundled() { String::new() } else { format!("<br><span class=\"note\">from {}</span>", esc(&i.origin)) };
        let _ = writeln!(
            h,
            "<tr><td>{}{origin}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"src\">{}</td></tr>",
            esc(&i.id),
            esc(&i.name),
            esc(&i.date),
            esc(&i.victim),
            esc(&i.victim_type),
            i.actor.as_deref().map_or_else(String::new, |a| format!("<code>{}</code> ", esc(a))),
            esc(&i.actor_name),
            match (i.attribution, i.attribution_disputed) {
                (Some(a), true) => format!("{a} (disputed)"),
                (Some(a), false) => a.to_string(),
                (None, _) => "–".into(),
            },
            esc(i.country.as_deref().unwrap_or("")),
            esc(i.amount_native.as_deref().unwrap_or("")),
            i.amount_usd.map_or_else(|| "–".into(), group_digits),
            i.trace_seeds().count(),
            i.sources.iter().map(|s| esc(s)).collect::<Vec<_>>().join("<br>"),
        );
    }
    h.push_str("</table>\n");
}

/// The section of one simulated case: what it is, that it is not real, and its trace if given.
fn push_simulated(h: &mut String, i: &Incident, counted: bool, trace: Option<&TraceSummary>) {
    let _ = writeln!(h, "<h2>Simulated case: {}</h2>", esc(&i.name));
    let _ = writeln!(
        h,
        "<p class=\"warn\"><code>{}</code> happened on a simulated chain (tracehound's simulator, as in <code>tracehound demo</code>): it is not a real incident{}</p>",
        esc(&i.id),
        if counted {
            ". It is counted in the figures and charts above only because simulated cases were included on request."
        } else {
            " and is not counted in any figure or chart above."
        }
    );
    h.push_str("<table>\n<tr><th>id</th><th>date</th><th>victim (type)</th><th>actor (as given)</th><th>amount (native)</th><th>USD</th><th>trace seeds</th><th>sources</th></tr>\n");
    let _ = writeln!(
        h,
        "<tr><td>{}<br><span class=\"note\">from {}</span></td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"src\">{}</td></tr>\n</table>",
        esc(&i.id),
        esc(&i.origin),
        esc(&i.date),
        esc(&i.victim),
        esc(&i.victim_type),
        esc(&i.actor_name),
        esc(i.amount_native.as_deref().unwrap_or("")),
        i.amount_usd.map_or_else(|| "–".into(), group_digits),
        i.trace_seeds().count(),
        i.sources.iter().map(|s| esc(s)).collect::<Vec<_>>().join("<br>"),
    );
    if let Some(t) = trace {
        let _ = writeln!(h, "<h3>Where the funds of the simulated case <code>{}</code> went ({})</h3>", esc(&t.incident), esc(&t.unit));
        push_chart(h, chart_destinations(t));
        push_destinations_table(h, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::stats;

    #[test]
    fn nice_axis_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(720.0), 800.0);
        assert_eq!(nice_max(2746.2), 3000.0);
        assert_eq!(nice_max(1500.0), 2000.0);
        assert_eq!(nice_max(90.0), 100.0);
    }

    #[test]
    fn text_is_escaped_and_svg_has_text_elements() {
        let registry = Registry::bundled();
        let table = stats(&registry, &PriceTable::bundled(), &[Dim::Actor]);
        let trace = TraceSummary {
            simulated_prices: false,
            incident: "ronin_2022".into(),
            unit: "ETH".into(),
            destinations: vec![
                ("Tornado <Cash>".into(), "mixer".into(), 100.5, Some(300_000.0)),
                ("FTX".into(), "exchange".into(), 50.0, None),
                ("still held".into(), "still_held".into(), 10.0, None),
            ],
        };
        let html = html_report_at("A & B <report>", &table, &registry, Some(&trace), "2026-01-02");
        assert!(html.contains("<title>A &amp; B &lt;report&gt;</title>"));
        assert!(!html.contains("Tornado <Cash>"));
        assert!(html.contains("Tornado &lt;Cash&gt;"));
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("<text"), "chart text is emitted as SVG <text> elements");
        assert!(html.contains(">lazarusgroup<") || html.contains(">lazarusgroup\n<"), "legend names the actor");
        assert!(html.contains("Generated 2026-01-02"));
    }
}
