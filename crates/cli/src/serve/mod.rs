//! `tracehound serve`: the REST API over one data directory, and `tracehound keys`, its API keys.
//!
//! The server is a thin layer over what the CLI does: each route runs one of the CLI's lookups
//! (`entities`, `trace`, `incidents`, `screening`, the label store, the report crate) on a
//! blocking thread and answers JSON. It reads what is committed: every request reads the
//! manifest as it is now, and a chain's index is reopened (and extended) when the manifest has
//! changed, so `ingest` and `sync` may write while it serves.
//!
//! Every route but `/health` needs an API key; roles (viewer < analyst < admin) are checked per
//! route, each key has a rate limit, bodies are limited to 4 MiB, pages to 1,000 items, traces
//! and bulk screenings to the server's timeout. Errors are RFC 9457 problem documents.

mod analysis;
mod auth;
mod metrics;
mod openapi;
mod problem;
mod routes;
mod state;
mod views;

use anyhow::{bail, Context, Result};
use auth::Role;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use state::AppState;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Options of `tracehound serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port; the one taken is printed).
    /// Keys travel in request headers: to listen on anything but loopback, put a TLS-terminating
    /// reverse proxy in front.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Requests per second each API key may make, in bursts of up to as many; beyond, the
    /// answer is 429 with Retry-After.
    #[arg(long, default_value_t = 20.0)]
    pub rate_limit: f64,
    /// Seconds a trace, a bulk screening or an incident's trace may take before the client gets
    /// a 503 (the work itself runs to its end, holding its slot).
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Traces and bulk screenings that may run at once; more get a 503 with Retry-After.
    #[arg(long, default_value_t = 4)]
    pub max_heavy: usize,
}

/// `tracehound keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCmd {
    /// Make an API key and print it, once: only its SHA-256 is stored.
    ///
    /// Roles: viewer reads everything; analyst also adds tags; admin also reads the audit log and
    /// the list of keys.
    ///
    /// Example: tracehound keys create --role analyst --name alice
    Create {
        /// What the key may do.
        #[arg(long, value_enum)]
        role: Role,
        /// Who holds it (shown in `keys list` and recorded in the audit log with what it writes).
        #[arg(long)]
        name: String,
        /// Print id, name, role and key as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every key: id, name, role, when it was created and revoked (never the keys).
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: the server refuses it from its next request on.
    Revoke {
        /// Key id (from `keys list`).
        id: i64,
    },
}

/// Who runs a `keys` command, for the audit log.
fn cli_user() -> String {
    format!("cli ({})", std::env::var("USER").unwrap_or_else(|_| "user".into()))
}

/// `tracehound keys …`.
pub fn keys_cmd(data_dir: &Path, cmd: KeysCmd) -> Result<()> {
    let mut labels = crate::labels::open_labels(data_dir)?;
    match cmd {
        KeysCmd::Create { role, name, json } => {
            let key = auth::new_key();
            let stored = labels.create_api_key(&name, role.name(), &auth::key_hash(&key), &cli_user())?;
            if json {
                println!("{}", serde_json::json!({"id": stored.id, "name": stored.name, "role": stored.role, "key": key}));
            } else {
                println!("created key {} \"{}\" ({}); it is shown this once (only its SHA-256 is stored):", stored.id, stored.name, stored.role);
                println!("{key}");
                println!("send it as a header: curl -H \"X-API-Key: $KEY\" http://127.0.0.1:8080/v1/stats   (or Authorization: Bearer $KEY)");
            }
        }
        KeysCmd::List { json } => {
            let keys = labels.api_keys()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else if keys.is_empty() {
                println!("no API keys yet: tracehound keys create --role viewer --name NAME");
            } else {
                println!("{:>4}  {:<8} {:<24} {:<21} revoked", "id", "role", "name", "created");
                for k in &keys {
                    println!("{:>4}  {:<8} {:<24} {:<21} {}", k.id, k.role, k.name, k.created_at, k.revoked_at.as_deref().unwrap_or("-"));
                }
            }
        }
        KeysCmd::Revoke { id } => {
            if !labels.revoke_api_key(id, &cli_user())? {
                bail!("no active key {id}: `tracehound keys list` shows them");
            }
            println!("key {id} revoked");
        }
    }
    Ok(())
}

/// The routes with their layers: metrics, problem documents, body limit, key, role.
fn router(state: Arc<AppState>) -> Router {
    let viewer = Router::new()
        .route("/metrics", get(routes::metrics))
        .route("/v1/openapi.json", get(routes::openapi))
        .route("/v1/chains/{chain}/addresses/{address}", get(routes::address))
        .route("/v1/chains/{chain}/addresses/{address}/transactions", get(routes::address_transactions))
        .route("/v1/chains/{chain}/clusters/{id}", get(routes::cluster))
        .route("/v1/chains/{chain}/transactions/{hash}", get(routes::transaction))
        .route("/v1/chains/{chain}/screen/{subject}", get(routes::screen_one))
        .route("/v1/screen", post(routes::screen_bulk))
        .route("/v1/trace", post(routes::trace))
        .route("/v1/incidents", get(routes::incidents))
        .route("/v1/incidents/{id}", get(routes::incident))
        .route("/v1/actors/{id}", get(routes::actor))
        .route("/v1/stats", get(routes::stats))
        .route("/v1/labels/search", get(routes::search));
    let analyst = Router::new().route("/v1/tags", post(routes::add_tag)).route_layer(from_fn(auth::analyst));
    let admin = Router::new().route("/v1/audit", get(routes::audit)).route("/v1/keys", get(routes::keys)).route_layer(from_fn(auth::admin));
    let keyed = viewer.merge(analyst).merge(admin).fallback(routes::not_found).layer(from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .route("/health", get(routes::health))
        .merge(keyed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(from_fn(problem::problems))
        .layer(from_fn_with_state(state.clone(), metrics::record))
        .with_state(state)
}

/// `tracehound serve`: serves `data_dir` until killed.
pub fn run(data_dir: &Path, args: &ServeArgs) -> Result<()> {
    if !(args.rate_limit > 0.0 && args.rate_limit.is_finite()) {
        bail!("--rate-limit {}: give a number of requests per second above 0", args.rate_limit);
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout {}: give a number of seconds above 0", args.timeout);
    }
    if args.max_heavy == 0 {
        bail!("--max-heavy 0: at least one trace or screening must be able to run");
    }
    let state = Arc::new(AppState::new(data_dir, args.rate_limit, Duration::from_secs_f64(args.timeout), args.max_heavy, crate::verbose())?);
    let store = tracehound_tables::Store::open(data_dir)?;
    let chains: Vec<String> = store.manifest().chain_names().into_iter().collect();
    // Indexes are brought up to date before the first request, not by it.
    for chain in &chains {
        if let Err(e) = state.index(chain) {
            eprintln!("warning: the index of {chain} could not be brought up to date ({}): its routes will answer 500 until it can", e.detail());
        }
    }
    let active = crate::labels::open_labels(data_dir)?.api_keys()?.iter().filter(|k| k.revoked_at.is_none()).count();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the server's runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "listening on http://{addr} (data dir {}; chains: {})",
            data_dir.display(),
            if chains.is_empty() { "none yet".to_string() } else { chains.join(", ") }
        );
        std::io::stdout().flush()?;
        eprintln!(
            "{active} active API keys; {} requests/s per key; traces and bulk screenings time out after {} s; API description at http://{addr}/v1/openapi.json",
            args.rate_limit, args.timeout
        );
        if active == 0 {
            eprintln!("no API key yet: every route but /health answers 401; make one with `tracehound keys create --role admin --name NAME`");
        }
        if !addr.ip().is_loopback() {
            eprintln!("warning: {addr} is reachable from other machines and keys travel in headers: put a TLS-terminating reverse proxy in front");
        }
        axum::serve(listener, router(state)).await.context("serving")
    })
}
