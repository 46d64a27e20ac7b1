//! `tracehound serve` as a client sees it: the real server process on loopback, over HTTP, on the
//! data `tracehound demo` makes. Every route's answer, keys and roles, problem documents for bad
//! input, limits (body, items, pages, rate, time), the audit of writes, and schemathesis's
//! property-based run against the OpenAPI description.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehound"))
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = bin().arg("--data-dir").arg(data).args(args).output().unwrap();
    assert!(out.status.success(), "tracehound {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The demo's data directory, made once per run of this file.
fn demo() -> &'static Path {
    static DEMO: OnceLock<PathBuf> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-demo");
        let _ = std::fs::remove_dir_all(&dir);
        ok(&dir, &["demo", "--blocks", "300"]);
        dir
    })
}

/// The simulator's ground truth of the demo chain.
fn truth() -> Value {
    serde_json::from_str(&std::fs::read_to_string(demo().join("demo-chain/ground_truth.json")).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A data directory of its own for a test (a copy of the demo's, without the block files), so
/// the tags one test writes do not change another's answers.
fn data_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(demo()).unwrap() {
        let e = e.unwrap();
        if e.file_name() == "demo-chain" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &tmp.path().join(e.file_name()));
        } else {
            std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
        }
    }
    tmp
}

/// A key made with `tracehound keys create`: (id, key).
fn new_key(data: &Path, role: &str, name: &str) -> (i64, String) {
    let v: Value = serde_json::from_str(&ok(data, &["keys", "create", "--role", role, "--name", name, "--json"])).unwrap();
    assert_eq!(v["role"], role);
    (v["id"].as_i64().unwrap(), v["key"].as_str().unwrap().to_string())
}

/// A running `tracehound serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Server {
        let log = data.join(format!("serve-{}.log", std::process::id()));
        let mut child = bin()
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line.strip_prefix("listening on http://").and_then(|r| r.split_whitespace().next()).map(str::to_string);
        let Some(addr) = addr else {
            let _ = child.kill();
            panic!("no address in the first line {line:?}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        };
        assert!(line.contains(&format!("(data dir {}; chains: ", data.display())), "{line}");
        Server { child, base: format!("http://{addr}"), log, _stdout: stdout }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn addr(&self) -> &str {
        self.base.strip_prefix("http://").unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, headers and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The JSON body of a success with `status`.
    fn json(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", self.headers);
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The RFC 9457 problem document of an error with `status`.
    fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{:?} {}", self.headers, self.body);
        let p: Value = serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body));
        assert_eq!(p["status"], status, "{p}");
        assert_eq!(p["type"], "about:blank", "{p}");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["instance"].as_str().is_some_and(|t| t.starts_with('/')), "{p}");
        p
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(std::time::Duration::from_secs(120))).build().into()
}

/// Sends `method url` with the key (as X-API-Key) and a JSON body.
fn send(method: &str, url: &str, key: Option<&str>, body: Option<&str>) -> Reply {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    if body.is_some() {
        req = req.header("Content-Type", "application/json");
    }
    let res = agent().run(req.body(body.unwrap_or("").to_string()).unwrap()).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status().as_u16();
    let headers = res.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let body = res.into_body().read_to_string().unwrap();
    Reply { status, headers, body }
}

fn get(url: &str, key: &str) -> Reply {
    send("GET", url, Some(key), None)
}

fn post(url: &str, key: &str, body: &Value) -> Reply {
    send("POST", url, Some(key), Some(&body.to_string()))
}

fn amount(v: &Value) -> u128 {
    v.as_str().unwrap_or_else(|| panic!("not an amount string: {v}")).parse().unwrap()
}

/// Every item of a paged list, following `next_cursor` with pages of `limit`.
fn all_pages(s: &Server, path: &str, key: &str, limit: usize, items: &str) -> Vec<Value> {
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => s.url(&format!("{path}{sep}limit={limit}&cursor={c}")),
            None => s.url(&format!("{path}{sep}limit={limit}")),
        };
        let page = get(&url, key).json(200);
        let got = page[items].as_array().unwrap();
        assert!(got.len() <= limit, "a page of {limit} has {}", got.len());
        out.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("{path}: no last page");
}

/// The routes with a key, each with its method and a body that is valid where one is needed.
fn keyed_routes(t: &Value) -> Vec<(&'static str, String, Option<Value>)> {
    let chain = t["chain"].as_str().unwrap();
    let txid = t["heist"]["txid"].as_str().unwrap();
    let victim = t["heist"]["victim_address"].as_str().unwrap();
    vec![
        ("GET", "/metrics".into(), None),
        ("GET", "/v1/openapi.json".into(), None),
        ("GET", format!("/v1/chains/{chain}/addresses/{victim}"), None),
        ("GET", format!("/v1/chains/{chain}/addresses/{victim}/transactions"), None),
        ("GET", format!("/v1/chains/{chain}/clusters/0"), None),
        ("GET", format!("/v1/chains/{chain}/transactions/{txid}"), None),
        ("GET", format!("/v1/chains/{chain}/screen/{victim}"), None),
        ("POST", "/v1/screen".into(), Some(json!({"chain": chain, "items": [victim]}))),
        ("POST", "/v1/trace".into(), Some(json!({"chain": chain, "from": [format!("{txid}:0")]}))),
        ("GET", "/v1/incidents".into(), None),
        ("GET", "/v1/incidents/demo_heist".into(), None),
        ("GET", "/v1/actors/lazarus".into(), None),
        ("GET", "/v1/stats?by=year".into(), None),
        ("GET", "/v1/labels/search?q=lazarus".into(), None),
        ("POST", "/v1/tags".into(), Some(json!({"chain": chain, "subject": victim, "label": "x", "source": "y"}))),
        ("GET", "/v1/audit".into(), None),
        ("GET", "/v1/keys".into(), None),
        ("GET", "/v1/no/such/route".into(), None),
    ]
}

#[test]
fn every_route_answers_on_demo_data() {
    let data = data_copy();
    let d = data.path();
    let (_, viewer) = new_key(d, "viewer", "viewer-1");
    let (analyst_id, analyst) = new_key(d, "analyst", "analyst-1");
    let (_, admin) = new_key(d, "admin", "admin-1");
    // -v: every request is logged, so the log can be checked for keys.
    let s = Server::start(d, &["--rate-limit", "100000", "-v"]);
    let t = truth();
    let chain = t["chain"].as_str().unwrap();
    let h = &t["heist"];
    let (txid, stolen) = (h["txid"].as_str().unwrap(), h["stolen_sat"].as_u64().unwrap() as u128);
    let thief = t["wallets"][h["attacker_wallet"].as_u64().unwrap() as usize]["addresses"][0].as_str().unwrap();
    let victim = h["victim_address"].as_str().unwrap();

    // Health needs no key; the OpenAPI description is 3.1 with the key schemes and every route.
    let health = send("GET", &s.url("/health"), None, None).json(200);
    assert_eq!(health["status"], "ok");
    let api = get(&s.url("/v1/openapi.json"), &viewer).json(200);
    assert!(api["openapi"].as_str().unwrap().starts_with("3.1"), "{}", api["openapi"]);
    assert_eq!(
        api["components"]["securitySchemes"]["ApiKey"],
        json!({"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "A key made by `tracehound keys create`"})
    );
    assert_eq!(api["components"]["securitySchemes"]["Bearer"]["scheme"], "bearer");
    for (method, path, _) in keyed_routes(&t).into_iter().filter(|r| !r.1.contains("no/such")) {
        let template = api["paths"].as_object().unwrap().keys().find(|p| {
            let (a, b): (Vec<&str>, Vec<&str>) = (p.split('/').collect(), path.split('?').next().unwrap().split('/').collect());
            a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.starts_with('{') || x == y)
        });
        let template = template.unwrap_or_else(|| panic!("{path} is not described"));
        let op = &api["paths"][template][method.to_lowercase()];
        assert!(op["responses"]["200"].is_object() || op["responses"]["201"].is_object(), "{method} {template}: {op}");
        assert_eq!(op["responses"]["401"]["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem", "{template}");
    }
    assert_eq!(
        api["paths"]["/v1/chains/{chain}/addresses/{address}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AddressView"
    );
    for schema in ["ScreenResult", "TraceBody", "Problem", "StatsTable", "Incident", "Tag", "ActorDetails"] {
        assert!(api["components"]["schemas"][schema].is_object(), "{schema} is not described");
    }

    // The thief's address: activity, entity, tags, actor and country, risk and exposure.
    let a = get(&s.url(&format!("/v1/chains/{chain}/addresses/{thief}")), &viewer).json(200);
    assert_eq!((a["seen"].as_bool(), a["balances"][0]["asset"].as_str()), (Some(true), Some("BTC")), "{a}");
    let received = amount(&a["balances"][0]["received"]);
    assert!(received >= stolen, "the thief received the loot: {a}");
    assert_eq!(received, amount(&a["balances"][0]["sent"]) + amount(&a["balances"][0]["balance"]), "{a}");
    assert!(a["tags"].as_array().unwrap().iter().any(|t| t["label"].as_str().unwrap().ends_with("heist attacker") && t["actor"] == "lazarusgroup"), "{a}");
    assert_eq!((a["actor"].as_str(), a["country"].as_str()), (Some("lazarusgroup"), Some("KP")), "{a}");
    let cluster = &a["cluster"];
    assert!(cluster["size"].as_u64().unwrap() >= 1 && a["first_seen"]["block_number"].as_u64() <= a["last_seen"]["block_number"].as_u64(), "{a}");
    assert_eq!(a["screening"], "screened", "{a}");
    assert!(matches!(a["risk"].as_str(), Some("low" | "medium" | "high" | "severe")), "a thief tagged as such is a risk: {a}");
    assert!(!a["reasons"].as_array().unwrap().is_empty() && a["exposure"].is_array(), "{a}");

    // Its transactions, page by page, are the same as in one page; the theft is among them.
    let one_page = all_pages(&s, &format!("/v1/chains/{chain}/addresses/{thief}/transactions"), &viewer, 1000, "items");
    let by_one = all_pages(&s, &format!("/v1/chains/{chain}/addresses/{thief}/transactions"), &viewer, 1, "items");
    assert!(one_page.len() >= 2, "{one_page:?}");
    assert_eq!(one_page, by_one);
    assert_eq!(one_page.len() as u64, a["transactions"].as_u64().unwrap());
    let theft = one_page.iter().find(|x| x["transaction"] == txid).unwrap_or_else(|| panic!("{one_page:?}"));
    assert!(amount(&theft["flows"][0]["received"]) > 0, "{theft}");

    // Its entity, with its addresses paged.
    let id = cluster["id"].as_u64().unwrap();
    let c = get(&s.url(&format!("/v1/chains/{chain}/clusters/{id}?limit=1")), &viewer).json(200);
    assert_eq!((c["cluster_id"].as_u64(), c["size"].clone()), (Some(id), cluster["size"].clone()), "{c}");
    let members = all_pages(&s, &format!("/v1/chains/{chain}/clusters/{id}"), &viewer, 2, "addresses");
    assert_eq!(members.len() as u64, cluster["size"].as_u64().unwrap());
    assert!(members.iter().any(|m| m == thief), "{members:?}");

    // The theft transaction, with the labels of its addresses.
    let tx = get(&s.url(&format!("/v1/chains/{chain}/transactions/{txid}")), &viewer).json(200);
    assert!(tx["inputs"].as_array().unwrap().iter().all(|i| i["spent_output"].is_string() && i["value"].is_string()), "{tx}");
    let out_sum: u128 = tx["outputs"].as_array().unwrap().iter().map(|o| amount(&o["value"])).sum();
    let in_sum: u128 = tx["inputs"].as_array().unwrap().iter().map(|i| amount(&i["value"])).sum();
    assert_eq!(in_sum, out_sum + amount(&tx["fee"]), "{tx}");
    assert_eq!(amount(&tx["outputs"][0]["value"]), stolen, "{tx}");
    assert!(tx["labels"].as_array().unwrap().iter().any(|l| l["address"] == thief), "{tx}");
    let missing = get(&s.url(&format!("/v1/chains/{chain}/transactions/{}", "0".repeat(64))), &viewer).problem(404);
    assert!(missing["detail"].as_str().unwrap().contains("not in the ingested data"), "{missing}");

    // Screening: one subject, and the deposits of the loot in bulk (what an exchange asks).
    let one = get(&s.url(&format!("/v1/chains/{chain}/screen/{thief}")), &viewer).json(200);
    assert_eq!((one["subject"].as_str(), one["status"].as_str()), (Some(thief), Some("screened")), "{one}");
    let deposits: Vec<String> = h["deposits"].as_array().unwrap().iter().map(|d| d["address"].as_str().unwrap().to_string()).collect();
    let bulk = post(&s.url("/v1/screen"), &viewer, &json!({"chain": chain, "items": deposits})).json(200);
    let results = bulk["results"].as_array().unwrap();
    assert_eq!(results.len(), deposits.len());
    assert!(
        results.iter().any(|r| r["exposures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["category"] == "stolen_funds" && e["flow"] == "received" && e["share"].as_f64() > Some(0.0))),
        "an exchange deposit of the loot shows received exposure to stolen funds: {bulk}"
    );
    let unknown = get(&s.url(&format!("/v1/chains/{chain}/screen/bcrt1qnosuchaddress")), &viewer).json(200);
    assert_eq!(unknown["status"], "no_data", "{unknown}");

    // The trace of the loot accounts for every satoshi.
    let tr = post(&s.url("/v1/trace"), &viewer, &json!({"chain": chain, "from": [format!("{txid}:0")], "model": "haircut", "max_hops": 10})).json(200);
    let tr = &tr["traces"][0];
    assert_eq!(amount(&tr["seed_amount"]), stolen, "{tr}");
    let acc = &tr["accounting"];
    let total: u128 = acc["sinks"].as_array().unwrap().iter().map(|s| amount(&s["amount"])).sum::<u128>()
        + ["held_total", "fees", "below_threshold", "hop_limit", "node_limit", "mined", "unresolved"].iter().map(|k| amount(&acc[k])).sum::<u128>();
    assert_eq!(total, stolen, "{acc}");
    assert!(!tr["edges"].as_array().unwrap().is_empty() && tr["limits"]["max_hops"] == 10, "{tr}");

    // Incidents, paged by id; the demo's heist with its traced accounting, Harmony without (no Ethereum here).
    let incidents = all_pages(&s, "/v1/incidents", &viewer, 1000, "items");
    let paged = all_pages(&s, "/v1/incidents", &viewer, 37, "items");
    assert_eq!(incidents, paged);
    let ids: Vec<&str> = incidents.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids.contains(&"demo_heist") && ids.contains(&"harmony_2022"), "{ids:?}");
    let heist = get(&s.url("/v1/incidents/demo_heist"), &viewer).json(200);
    assert_eq!(heist["incident"]["provenance"], "simulated");
    let flow = &heist["accounting"]["flows"][0];
    assert_eq!(amount(&flow["seed_amount"]), stolen, "{heist}");
    assert!(!flow["destinations"].as_array().unwrap().is_empty() && heist["accounting"]["simulated_prices"] == true, "{heist}");
    let harmony = get(&s.url("/v1/incidents/harmony_2022"), &viewer).json(200);
    assert!(harmony["accounting"].is_null() && harmony["accounting_note"].as_str().unwrap().contains("ethereum"), "{harmony}");

    // Actors, statistics, label search.
    let actor = get(&s.url("/v1/actors/lazarus"), &viewer).json(200);
    assert_eq!((actor["actor"]["id"].as_str(), actor["actor"]["country"].as_str()), (Some("lazarusgroup"), Some("KP")), "{actor}");
    let stats = get(&s.url("/v1/stats?by=country,year"), &viewer).json(200);
    assert_eq!((stats["dims"].clone(), stats["simulated"].clone()), (json!(["country", "year"]), json!(["demo_heist"])), "{stats}");
    assert!(stats["groups"].as_array().unwrap().iter().any(|g| g["key"][0] == "KP"), "{stats}");
    let found = get(&s.url("/v1/labels/search?q=lazarus&limit=5"), &viewer).json(200);
    assert!(found["actors"].as_array().unwrap().iter().any(|a| a["id"] == "lazarusgroup") && found["next_cursor"].is_string(), "{found}");
    let tags_by_page: Vec<Value> = all_pages(&s, "/v1/labels/search?q=lazarus", &viewer, 7, "tags");
    let tags_at_once: Vec<Value> = all_pages(&s, "/v1/labels/search?q=lazarus", &viewer, 1000, "tags");
    assert_eq!(tags_by_page, tags_at_once);

    // A tag written by an analyst key: stored, audited under the key, in the next lookup and in SQL.
    let body = json!({"chain": chain, "subject": victim, "label": "served-tag victim", "category": "victim", "source": "serve test"});
    let w = post(&s.url("/v1/tags"), &analyst, &body).json(201);
    let who = format!("api key {analyst_id} (analyst-1)");
    assert_eq!((w["inserted"].as_bool(), w["tag"]["author"].as_str(), w["tag"]["subject"].as_str()), (Some(true), Some(who.as_str()), Some(victim)), "{w}");
    assert_eq!(post(&s.url("/v1/tags"), &analyst, &body).json(200)["inserted"], false);
    let v = get(&s.url(&format!("/v1/chains/{chain}/addresses/{victim}")), &viewer).json(200);
    assert!(v["tags"].as_array().unwrap().iter().any(|t| t["label"] == "served-tag victim" && t["source"] == "serve test"), "{v}");
    let audit = all_pages(&s, "/v1/audit", &admin, 1000, "items");
    assert_eq!(audit, all_pages(&s, "/v1/audit", &admin, 3, "items"));
    let added: Vec<&Value> = audit.iter().filter(|e| e["action"] == "add_tag" && e["detail"]["label"] == "served-tag victim").collect();
    assert_eq!(added.len(), 2, "the write and the repeat are audited: {audit:?}");
    assert!(added.iter().all(|e| e["author"] == who.as_str() && e["at"].as_str().is_some_and(|at| at.len() == 20)), "{added:?}");
    assert_eq!((added[0]["detail"]["inserted"].as_bool(), added[1]["detail"]["inserted"].as_bool()), (Some(true), Some(false)));
    assert!(audit.iter().any(|e| e["action"] == "create_api_key" && e["detail"]["name"] == "analyst-1"), "{audit:?}");
    let sql = ok(d, &["sql", "SELECT author FROM tags WHERE label = 'served-tag victim'", "--format", "csv"]);
    assert!(sql.contains(&who), "{sql}");

    // Keys are listed without the keys; the key also works as a bearer token.
    let keys = get(&s.url("/v1/keys"), &admin);
    assert!(!keys.body.contains(&viewer) && !keys.body.contains(&analyst) && !keys.body.contains(&admin));
    assert_eq!(keys.json(200)["items"].as_array().unwrap().len(), 3);
    let bearer = ureq::http::Request::builder().method("GET").uri(s.url("/v1/stats")).header("Authorization", format!("Bearer {viewer}"));
    assert_eq!(agent().run(bearer.body(String::new()).unwrap()).unwrap().status().as_u16(), 200);

    // Metrics count each route template by status, with a latency histogram.
    let m = get(&s.url("/metrics"), &viewer);
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"), "{:?}", m.headers);
    assert!(m.body.contains(r#"tracehound_http_requests_total{method="GET",route="/v1/chains/{chain}/addresses/{address}",status="200"} "#), "{}", m.body);
    assert!(m.body.contains(r#"tracehound_http_requests_total{method="POST",route="/v1/tags",status="201"} 1"#), "{}", m.body);
    assert!(m.body.contains(r#"tracehound_http_request_duration_seconds_bucket{route="/v1/trace",le="+Inf"} 1"#), "{}", m.body);
    let log = s.log();
    assert!(log.contains("POST /v1/tags 201") && log.contains(&format!("key {analyst_id}")), "{log}");
    for k in [&viewer, &analyst, &admin] {
        assert!(!log.contains(k.as_str()) && !log.contains(&k[3..]), "keys never reach the log");
    }
}

#[test]
fn keys_roles_and_bad_input_are_refused_with_problems() {
    let data = data_copy();
    let d = data.path();
    let (_, viewer) = new_key(d, "viewer", "viewer-2");
    let (_, analyst) = new_key(d, "analyst", "analyst-2");
    let (_, admin) = new_key(d, "admin", "admin-2");
    let (revoked_id, revoked) = new_key(d, "admin", "gone");
    ok(d, &["keys", "revoke", &revoked_id.to_string()]);
    let s = Server::start(d, &["--rate-limit", "100000"]);
    let t = truth();
    let chain = t["chain"].as_str().unwrap();

    // Keys are stored hashed: neither the key nor its text appear in the label store's files.
    let mut stored = vec![];
    for f in ["labels.sqlite", "labels.sqlite-wal"] {
        if let Ok(mut file) = std::fs::File::open(d.join(f)) {
            file.read_to_end(&mut stored).unwrap();
        }
    }
    let text = String::from_utf8_lossy(&stored);
    for k in [&viewer, &analyst, &revoked] {
        assert!(!text.contains(k.as_str()) && !text.contains(&k[3..]), "a key is in the label store");
    }
    let hash = {
        let mut out = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        out.stdin.take().unwrap().write_all(viewer.as_bytes()).unwrap();
        String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap().split_whitespace().next().unwrap().to_string()
    };
    assert!(text.contains(&hash), "the store keeps the key's SHA-256");
    let listed = ok(d, &["keys", "list"]);
    assert!(listed.contains("viewer-2") && listed.contains("gone") && !listed.contains(&viewer), "{listed}");

    // Without a key, with an unknown or revoked one: 401 on every route but /health.
    for (method, path, body) in keyed_routes(&t) {
        let body = body.map(|b| b.to_string());
        for key in [None, Some("th_0000"), Some(revoked.as_str())] {
            let r = send(method, &s.url(&path), key, body.as_deref());
            let p = r.problem(401);
            assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"tracehound\""), "{path}");
            assert!(p["detail"].as_str().unwrap().contains(if key.is_none() { "API key is required" } else { "unknown or revoked" }), "{path}: {p}");
        }
    }
    assert_eq!(send("GET", &s.url("/health"), None, None).status, 200);

    // Roles: viewers read, analysts also write tags, admins also read the audit log and keys.
    let tag = json!({"chain": chain, "subject": t["heist"]["victim_address"], "label": "nope"});
    assert!(post(&s.url("/v1/tags"), &viewer, &tag).problem(403)["detail"].as_str().unwrap().contains("analyst role"));
    for path in ["/v1/audit", "/v1/keys"] {
        for key in [&viewer, &analyst] {
            assert!(get(&s.url(path), key).problem(403)["detail"].as_str().unwrap().contains("admin role"), "{path}");
        }
    }

    // Malformed input: 400 problems, axum's own rejections included.
    let txid = t["heist"]["txid"].as_str().unwrap();
    let trace = s.url("/v1/trace");
    let bad_bodies = [
        ("{not json", "JSON"),
        (r#"{"chain": "bitcoin_regtest"}"#, "from"),
        (r#"{"chain": "bitcoin_regtest", "from": ["x"], "max_hops": "ten"}"#, "max_hops"),
        (r#"{"chain": "bitcoin_regtest", "from": ["x"], "hops": 3}"#, "hops"),
        (r#"{"chain": "bitcoin_regtest", "from": ["x"], "model": "magic"}"#, "model"),
        (r#"{"chain": "bitcoin_regtest", "from": []}"#, "from"),
        (r#"{"chain": "bitcoin_regtest", "from": ["a"], "max_hops": 51}"#, "max_hops"),
        (r#"{"chain": "bitcoin_regtest", "from": ["a"], "max_nodes": 100001}"#, "max_nodes"),
        (r#"{"chain": "bitcoin_regtest", "from": ["a"], "min_amount": "-1"}"#, "min_amount"),
        (r#"{"chain": "bitcoin_regtest", "from": ["a"], "stop_at": ["nowhere"]}"#, "stop-at"),
        (r#"{"chain": "bitcoin_regtest", "from": ["/etc/passwd"]}"#, "/etc/passwd"),
    ];
    for (body, says) in bad_bodies {
        let p = send("POST", &trace, Some(&viewer), Some(body)).problem(400);
        assert!(p["detail"].as_str().unwrap().contains(says), "{body}: {p}");
        assert!(!p["detail"].as_str().unwrap().contains("root:"), "a seed is never read as a file: {p}");
    }
    let no_type = agent().post(&trace).header("X-API-Key", &viewer).send(format!(r#"{{"chain":"{chain}","from":["{txid}:0"]}}"#)).unwrap();
    assert_eq!(no_type.status().as_u16(), 400, "a body without Content-Type: application/json");
    for path in [
        format!("/v1/chains/{chain}/clusters/abc"),
        format!("/v1/chains/{chain}/clusters/-1"),
        format!("/v1/chains/{chain}/addresses/{txid}/transactions?limit=0"),
        format!("/v1/chains/{chain}/addresses/{txid}/transactions?limit=1001"),
        format!("/v1/chains/{chain}/addresses/{txid}/transactions?limit=ten"),
        format!("/v1/chains/{chain}/clusters/0?cursor=zzz"),
        format!("/v1/chains/{chain}/transactions/xyz"),
        "/v1/incidents?limit=100000".to_string(),
        "/v1/audit?cursor=x".to_string(),
        "/v1/stats?by=planet".to_string(),
        "/v1/stats?min_attribution=rumour".to_string(),
        "/v1/stats?include_simulated=maybe".to_string(),
        "/v1/labels/search?q=".to_string(),
        "/v1/labels/search".to_string(),
    ] {
        let key = if path.starts_with("/v1/audit") { &admin } else { &viewer };
        get(&s.url(&path), key).problem(400);
    }

    // Not found, method not allowed: problems too.
    for path in ["/v1/chains/dogecoin/addresses/D1", "/v1/incidents/no_such_case", "/v1/actors/nobody-at-all", "/v1/no/such/route", "/v2"] {
        get(&s.url(path), &viewer).problem(404);
    }
    let r = send("DELETE", &s.url("/v1/stats"), Some(&viewer), None);
    assert!(r.problem(405)["detail"].as_str().unwrap().contains("DELETE"));
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")), "{:?}", r.headers);

    // Too much: more than 10,000 subjects, or a body over 4 MiB.
    let items: Vec<String> = (0..10_001).map(|i| format!("a{i}")).collect();
    let p = post(&s.url("/v1/screen"), &viewer, &json!({"chain": chain, "items": items})).problem(413);
    assert!(p["detail"].as_str().unwrap().contains("10000"), "{p}");
    post(&s.url("/v1/screen"), &viewer, &json!({"chain": chain, "items": []})).problem(400);
    let p = post(&s.url("/v1/screen"), &viewer, &json!({"chain": chain, "items": [txid, " "]})).problem(400);
    assert!(p["detail"].as_str().unwrap().contains("subject"), "{p}");
    let mut tcp = std::net::TcpStream::connect(s.addr()).unwrap();
    write!(
        tcp,
        "POST /v1/screen HTTP/1.1\r\nHost: {}\r\nX-API-Key: {viewer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.addr(),
        5 << 20
    )
    .unwrap();
    tcp.write_all(&[b' '; 4096]).unwrap();
    // The answer comes before the body is sent: the declared length is over the limit.
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let mut buf = [0u8; 4096];
    while !answer.contains("\"status\":413") {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/problem+json") && answer.contains("\"status\":413"), "{answer}");
}

#[test]
fn rate_limit_and_timeout_answer_429_and_503() {
    let data = data_copy();
    let d = data.path();
    let (_, key) = new_key(d, "viewer", "hasty");
    let s = Server::start(d, &["--rate-limit", "1", "--timeout", "0.001"]);
    let t = truth();
    get(&s.url("/v1/stats"), &key).json(200);
    let r = get(&s.url("/v1/stats"), &key);
    let p = r.problem(429);
    assert!(p["detail"].as_str().unwrap().contains("rate limit"), "{p}");
    assert_eq!(r.header("retry-after"), Some("1"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let body = json!({"chain": t["chain"], "from": [format!("{}:0", t["heist"]["txid"].as_str().unwrap())]});
    let r = post(&s.url("/v1/trace"), &key, &body);
    let p = r.problem(503);
    assert!(p["detail"].as_str().unwrap().contains("took longer than the server allows"), "{p}");
    assert!(r.header("retry-after").is_some());
}

#[test]
fn new_commits_are_served_without_restart_while_ingest_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (sim, d) = (tmp.path().join("sim"), tmp.path().join("data"));
    ok(&d, &["simulate", "bitcoin", "--blocks", "300", "--out", sim.to_str().unwrap()]);
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(sim.join("ground_truth.json")).unwrap()).unwrap();
    let (chain, heist) = (truth["chain"].as_str().unwrap(), &truth["heist"]);
    let (txid, height) = (heist["txid"].as_str().unwrap(), heist["height"].as_u64().unwrap());
    let blocks = sim.join("blocks");
    ok(&d, &["ingest", "bitcoin", "--blocks-dir", blocks.to_str().unwrap(), "--to", &(height - 10).to_string(), "--chunk-blocks", "10"]);
    let (_, key) = new_key(&d, "viewer", "reader");
    let s = Server::start(&d, &["--rate-limit", "100000"]);
    let tx = s.url(&format!("/v1/chains/{chain}/transactions/{txid}"));
    get(&tx, &key).problem(404);
    let victim = heist["victim_address"].as_str().unwrap();
    let before = get(&s.url(&format!("/v1/chains/{chain}/addresses/{victim}")), &key).json(200);

    // Readers during the ingest see a committed state at every request: never an error.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, url, key) = (stop.clone(), s.url(&format!("/v1/chains/{chain}/addresses/{victim}/transactions?limit=1000")), key.clone());
        std::thread::spawn(move || {
            let mut answers = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                get(&url, &key).json(200);
                answers += 1;
            }
            answers
        })
    };
    ok(&d, &["ingest", "bitcoin", "--blocks-dir", blocks.to_str().unwrap(), "--chunk-blocks", "10"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);

    // The same server now answers from the new blocks.
    let t = get(&tx, &key).json(200);
    assert_eq!((t["hash"].as_str(), t["block_number"].as_u64()), (Some(txid), Some(height)), "{t}");
    let after = get(&s.url(&format!("/v1/chains/{chain}/addresses/{victim}")), &key).json(200);
    assert!(after["transactions"].as_u64() > before["transactions"].as_u64(), "the theft is the victim's: {before} {after}");
    let screened = get(&s.url(&format!("/v1/chains/{chain}/screen/{txid}")), &key).json(200);
    assert_eq!(screened["status"], "screened", "{screened}");
}

#[test]
fn an_evm_chain_of_explorer_exports_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let (a, b, c) = ("0x".to_string() + &"a".repeat(40), "0x".to_string() + &"b".repeat(40), "0x".to_string() + &"c".repeat(40));
    let (t1, t2) = ("0x".to_string() + &"1".repeat(64), "0x".to_string() + &"2".repeat(64));
    let csv = tmp.path().join("export.csv");
    std::fs::write(
        &csv,
        format!(
            "Txhash,Blockno,UnixTimestamp,From,To,Value,ContractAddress,TokenSymbol\n{t1},100,1655965417,{a},{b},10,,ETH\n{t2},101,1655965500,{b},{c},4,,ETH\n"
        ),
    )
    .unwrap();
    ok(&d, &["import", "transfers", csv.to_str().unwrap(), "--chain", "ethereum"]);
    let (_, analyst) = new_key(&d, "analyst", "evm");
    let s = Server::start(&d, &["--rate-limit", "100000"]);
    let eth = |n: u128| (n * 10u128.pow(18)).to_string();

    let v = get(&s.url(&format!("/v1/chains/ethereum/addresses/{b}")), &analyst).json(200);
    assert_eq!(v["balances"], json!([{"asset": "ETH", "received": eth(10), "sent": eth(4), "fees": "0", "balance": eth(6)}]), "{v}");
    assert_eq!(
        (v["transactions"].as_u64(), v["first_seen"]["block_number"].as_u64(), v["last_seen"]["block_number"].as_u64()),
        (Some(2), Some(100), Some(101)),
        "{v}"
    );
    let txs = all_pages(&s, &format!("/v1/chains/ethereum/addresses/{b}/transactions"), &analyst, 1, "items");
    assert_eq!(txs.len(), 2);
    assert_eq!((txs[0]["transaction"].as_str(), txs[0]["flows"][0]["received"].as_str()), (Some(t1.as_str()), Some(eth(10).as_str())), "{txs:?}");
    assert_eq!((txs[1]["transaction"].as_str(), txs[1]["flows"][0]["sent"].as_str()), (Some(t2.as_str()), Some(eth(4).as_str())), "{txs:?}");

    // The transaction's transfers, and the label an analyst puts on the receiver.
    let tag = json!({"chain": "ethereum", "subject": c, "label": "Some exchange", "category": "exchange", "source": "serve test"});
    post(&s.url("/v1/tags"), &analyst, &tag).json(201);
    let tx = get(&s.url(&format!("/v1/chains/ethereum/transactions/{t2}")), &analyst).json(200);
    assert_eq!((tx["block_number"].as_u64(), tx["transfers"].as_array().map(Vec::len)), (Some(101), Some(1)), "{tx}");
    let tr = &tx["transfers"][0];
    assert_eq!(
        (tr["from"].as_str(), tr["to"].as_str(), tr["amount"].as_str(), tr["asset"].as_str()),
        (Some(b.as_str()), Some(c.as_str()), Some(eth(4).as_str()), Some("ETH")),
        "{tx}"
    );
    assert!(tx["labels"].as_array().unwrap().iter().any(|l| l["address"] == c.as_str() && l["label"] == "Some exchange"), "{tx}");

    // A trace from the first sender stops at the exchange; the rest is still held.
    let t = post(&s.url("/v1/trace"), &analyst, &json!({"chain": "ethereum", "from": [a], "seed": "sent"})).json(200);
    let acc = &t["traces"][0]["accounting"];
    assert_eq!(
        (acc["sinks"][0]["name"].as_str(), acc["sinks"][0]["amount"].as_str(), acc["held_total"].as_str()),
        (Some("Some exchange"), Some(eth(4).as_str()), Some(eth(6).as_str())),
        "{t}"
    );
    let screened = get(&s.url(&format!("/v1/chains/ethereum/screen/{c}")), &analyst).json(200);
    assert_eq!((screened["status"].as_str(), screened["tags"][0]["label"].as_str()), (Some("screened"), Some("Some exchange")), "{screened}");
}

/// The schemathesis command: `SCHEMATHESIS`, else the one `tools/install-test-deps.sh` installs.
fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        return p.into();
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/schemathesis/venv/bin/schemathesis");
    assert!(p.exists(), "schemathesis not found at {}: run `tools/install-test-deps.sh` (or set SCHEMATHESIS)", p.display());
    p
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let data = data_copy();
    let d = data.path();
    let (_, key) = new_key(d, "admin", "schemathesis");
    let s = Server::start(d, &["--rate-limit", "100000", "--timeout", "120"]);
    let schema = d.join("openapi.json");
    std::fs::write(&schema, &get(&s.url("/v1/openapi.json"), &key).body).unwrap();
    let operations = serde_json::from_str::<Value>(&std::fs::read_to_string(&schema).unwrap()).unwrap()["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum::<usize>();
    let run = |config: Option<&Path>| {
        let mut cmd = Command::new(schemathesis());
        if let Some(c) = config {
            cmd.arg("--config-file").arg(c);
        }
        let out = cmd
            .arg("run")
            .arg(&schema)
            .args(["--url", &s.base, "--header", &format!("X-API-Key: {key}")])
            .args(["--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "20", "--seed", "7", "--workers", "1"])
            .args(["--request-timeout", "60", "--suppress-health-check", "all"])
            .env("NO_COLOR", "1")
            .current_dir(d)
            .output()
            .unwrap();
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "schemathesis found failures:\n{text}\nserver log:\n{}", s.log());
        assert!(text.contains(&format!("Selected: {operations}/{operations}")) && text.contains(&format!("Tested: {operations}")), "{text}");
        let cases = text.lines().find(|l| l.contains(" generated, ")).unwrap_or_else(|| panic!("{text}"));
        let (generated, passed) = cases.trim().split_once(" generated, ").unwrap();
        assert_eq!(format!("{generated} passed"), passed.trim(), "{text}");
        assert!(generated.parse::<u32>().unwrap() >= 10 * operations as u32, "{text}");
    };
    // Fuzzed parameters everywhere; then the demo's own chain, address, cluster, transaction,
    // incident and actor in the paths, so the cases reach the lookups behind them.
    run(None);
    let t = truth();
    let h = &t["heist"];
    let thief = t["wallets"][h["attacker_wallet"].as_u64().unwrap() as usize]["addresses"][0].as_str().unwrap();
    let a = get(&s.url(&format!("/v1/chains/{}/addresses/{thief}", t["chain"].as_str().unwrap())), &key).json(200);
    let config = d.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"[parameters]
"path.chain" = "{chain}"
"path.address" = "{thief}"
"path.subject" = "{thief}"
"path.hash" = "{txid}"

[[operations]]
include-path = "/v1/chains/{{chain}}/clusters/{{id}}"
parameters = {{ "path.id" = {cluster} }}

[[operations]]
include-path = "/v1/incidents/{{id}}"
parameters = {{ "path.id" = "demo_heist" }}

[[operations]]
include-path = "/v1/actors/{{id}}"
parameters = {{ "path.id" = "lazarus" }}
"#,
            chain = t["chain"].as_str().unwrap(),
            txid = h["txid"].as_str().unwrap(),
            cluster = a["cluster"]["id"],
        ),
    )
    .unwrap();
    run(Some(&config));
}
