//! A trace's flow graph as CSV (edges), Graphviz DOT and GraphML (opens in Gephi and yEd).

use crate::Trace;
use std::fmt::Write;

/// The edges as CSV: `hop,tx,height,time,from,to,asset,amount`.
pub fn to_csv(t: &Trace) -> String {
    let mut s = String::from("hop,tx,height,time,from,to,asset,amount\n");
    for e in &t.edges {
        let _ = writeln!(s, "{},{},{},{},{},{},{},{}", e.hop, e.tx, e.height, e.time, csv_field(&e.from), csv_field(&e.to), csv_field(&e.asset), e.amount);
    }
    s
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn node_caption(n: &crate::Node) -> String {
    let short = if n.address.len() > 16 { format!("{}…{}", &n.address[..8], &n.address[n.address.len() - 6..]) } else { n.address.clone() };
    match &n.label {
        Some(l) => format!("{l}\\n{short}"),
        None => short,
    }
}

/// Graphviz DOT: seeds are red boxes, labelled services blue, others plain; edge labels carry
/// the tainted amount and the hop.
pub fn to_dot(t: &Trace) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut s = format!(
        "digraph trace {{\n  rankdir=LR;\n  label=\"{} {} trace on {} ({})\";\n  node [shape=ellipse, fontsize=10];\n",
        t.model,
        dir(t),
        esc(&t.chain),
        esc(&t.unit)
    );
    for n in &t.nodes {
        let style = if n.seed {
            ", shape=box, color=red"
        } else if n.category.is_some() {
            ", shape=box, color=blue"
        } else {
            ""
        };
        let _ = writeln!(s, "  \"{}\" [label=\"{}\"{style}];", esc(&n.address), esc(&node_caption(n)).replace("\\\\n", "\\n"));
    }
    for e in &t.edges {
        let _ = writeln!(s, "  \"{}\" -> \"{}\" [label=\"{} {} (hop {})\"];", esc(&e.from), esc(&e.to), e.amount, esc(&e.asset), e.hop);
    }
    s.push_str("}\n");
    s
}

fn dir(t: &Trace) -> &'static str {
    match t.direction {
        crate::Direction::Forward => "forward",
        crate::Direction::Backward => "backward",
    }
}

/// GraphML with node attributes `label`, `category`, `seed` and edge attributes `amount`
/// (a string: amounts may exceed 64 bits), `asset`, `hop`, `tx`, `time`.
pub fn to_graphml(t: &Trace) -> String {
    let x = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let mut s = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n",
        "  <key id=\"label\" for=\"node\" attr.name=\"label\" attr.type=\"string\"/>\n",
        "  <key id=\"category\" for=\"node\" attr.name=\"category\" attr.type=\"string\"/>\n",
        "  <key id=\"seed\" for=\"node\" attr.name=\"seed\" attr.type=\"boolean\"/>\n",
        "  <key id=\"amount\" for=\"edge\" attr.name=\"amount\" attr.type=\"string\"/>\n",
        "  <key id=\"weight\" for=\"edge\" attr.name=\"weight\" attr.type=\"double\"/>\n",
        "  <key id=\"asset\" for=\"edge\" attr.name=\"asset\" attr.type=\"string\"/>\n",
        "  <key id=\"hop\" for=\"edge\" attr.name=\"hop\" attr.type=\"int\"/>\n",
        "  <key id=\"tx\" for=\"edge\" attr.name=\"tx\" attr.type=\"string\"/>\n",
        "  <key id=\"time\" for=\"edge\" attr.name=\"time\" attr.type=\"long\"/>\n",
        "  <graph id=\"trace\" edgedefault=\"directed\">\n"
    ));
    for n in &t.nodes {
        let _ = write!(s, "    <node id=\"{}\">", x(&n.address));
        if let Some(l) = &n.label {
            let _ = write!(s, "<data key=\"label\">{}</data>", x(l));
        }
        if let Some(c) = &n.category {
            let _ = write!(s, "<data key=\"category\">{}</data>", x(c));
        }
        let _ = writeln!(s, "<data key=\"seed\">{}</data></node>", n.seed);
    }
    for (i, e) in t.edges.iter().enumerate() {
        let _ = writeln!(
            s,
            "    <edge id=\"e{i}\" source=\"{}\" target=\"{}\"><data key=\"amount\">{}</data><data key=\"weight\">{}</data><data key=\"asset\">{}</data><data key=\"hop\">{}</data><data key=\"tx\">{}</data><data key=\"time\">{}</data></edge>",
            x(&e.from),
            x(&e.to),
            e.amount,
            e.amount as f64,
            x(&e.asset),
            e.hop,
            x(&e.tx),
            e.time
        );
    }
    s.push_str("  </graph>\n</graphml>\n");
    s
}
