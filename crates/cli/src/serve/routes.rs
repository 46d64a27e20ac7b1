//! The routes: each handler checks its input, runs one of the CLI's lookups off the async
//! threads, and answers JSON. The `#[utoipa::path]` of each is its OpenAPI operation.

use super::analysis::{
    self, AuditPage, Health, IncidentDetail, IncidentsPage, KeyList, NewTagBody, ScreenBody, ScreenResponse, SearchPage, SearchParams, StatsParams, TagWritten,
    TraceBody, TraceResponse, MAX_SCREEN_ITEMS,
};
use super::auth::Caller;
use super::problem::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::state::AppState;
use super::views::{self, AddressTxPage, AddressView, ClusterView, IncidentPageParams, PageParams, TransactionView};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::sync::Arc;
use tracehound_labels::ActorDetails;
use tracehound_report::{Attribution, Dim, PriceTable, Registry, StatsOptions, StatsTable};
use tracehound_screen::ScreenResult;

type Shared = State<Arc<AppState>>;

/// Whether the server is up (no key needed).
#[utoipa::path(get, path = "/health", tag = "server", security(()), responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

/// Request counts by route and status and latency histograms, in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "server", responses((status = 200, body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(st): Shared) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], st.metrics.render()).into_response()
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "server", responses((status = 200, body = Object, description = "The OpenAPI document")))]
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::document()).into_response()
}

/// What is known of an address: balances, first and last activity, its entity, tags, actor
/// and country, and its risk and exposure from screening.
#[utoipa::path(get, path = "/v1/chains/{chain}/addresses/{address}", tag = "chains",
    params(("chain" = String, Path, description = "Chain as stored (bitcoin, bitcoin_regtest, ethereum, …)"), ("address" = String, Path, description = "The address")),
    responses((status = 200, body = AddressView)))]
pub async fn address(State(st): Shared, ApiPath((chain, address)): ApiPath<(String, String)>) -> Result<Json<AddressView>, ApiError> {
    st.blocking(move |st| views::address(st, &chain, &address)).await.map(Json)
}

/// The transactions of an address, oldest first, with what each moved for it.
#[utoipa::path(get, path = "/v1/chains/{chain}/addresses/{address}/transactions", tag = "chains",
    params(("chain" = String, Path, description = "Chain as stored"), ("address" = String, Path, description = "The address"), PageParams),
    responses((status = 200, body = AddressTxPage)))]
pub async fn address_transactions(
    State(st): Shared,
    ApiPath((chain, address)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<AddressTxPage>, ApiError> {
    st.blocking(move |st| views::address_transactions(st, &chain, &address, &page)).await.map(Json)
}

/// An entity (cluster): size, holdings, its members' tags and conflicts, and its addresses, paged.
#[utoipa::path(get, path = "/v1/chains/{chain}/clusters/{id}", tag = "chains",
    params(("chain" = String, Path, description = "Chain as stored"), ("id" = u32, Path, description = "Cluster id (the smallest address id of the cluster)"), PageParams),
    responses((status = 200, body = ClusterView)))]
pub async fn cluster(
    State(st): Shared,
    ApiPath((chain, id)): ApiPath<(String, u32)>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ClusterView>, ApiError> {
    st.blocking(move |st| views::cluster(st, &chain, id, &page)).await.map(Json)
}

/// A transaction: inputs and outputs (UTXO chains) or transfers (EVM chains), with labels.
#[utoipa::path(get, path = "/v1/chains/{chain}/transactions/{hash}", tag = "chains",
    params(("chain" = String, Path, description = "Chain as stored"), ("hash" = String, Path, description = "Transaction hash (UTXO: 64 hex digits; EVM: 0x + 64)")),
    responses((status = 200, body = TransactionView)))]
pub async fn transaction(State(st): Shared, ApiPath((chain, hash)): ApiPath<(String, String)>) -> Result<Json<TransactionView>, ApiError> {
    st.blocking(move |st| views::transaction(st, &chain, &hash)).await.map(Json)
}

/// Screens one subject: an address, an output `txid:vout`, a transaction, or a transfer
/// `tx/address` (its `/` written `%2F`).
#[utoipa::path(get, path = "/v1/chains/{chain}/screen/{subject}", tag = "screening",
    params(("chain" = String, Path, description = "Chain as stored"), ("subject" = String, Path, description = "Address, txid:vout, transaction hash, or tx%2Faddress")),
    responses((status = 200, body = ScreenResult)))]
pub async fn screen_one(State(st): Shared, ApiPath((chain, subject)): ApiPath<(String, String)>) -> Result<Json<ScreenResult>, ApiError> {
    st.blocking(move |st| views::screen_one(st, &chain, &subject)).await.map(Json)
}

/// Screens up to 10,000 subjects of one chain (more: 413), within the server's timeout.
#[utoipa::path(post, path = "/v1/screen", tag = "screening", request_body = ScreenBody, responses((status = 200, body = ScreenResponse)))]
pub async fn screen_bulk(State(st): Shared, ApiJson(body): ApiJson<ScreenBody>) -> Result<Json<ScreenResponse>, ApiError> {
    if body.items.len() > MAX_SCREEN_ITEMS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} items: one request screens at most {MAX_SCREEN_ITEMS}; split them", body.items.len()),
        ));
    }
    if body.items.is_empty() {
        return Err(ApiError::bad_request("items: give at least one subject to screen"));
    }
    st.heavy("the screening", move |st| {
        let screener = st.screener(&body.chain)?;
        let results = body.items.iter().map(|s| views::screen_one_with(&screener, s)).collect::<Result<Vec<_>, _>>()?;
        Ok(ScreenResponse { chain: body.chain, results })
    })
    .await
    .map(Json)
}

/// Follows the money from seeds (the CLI's `trace`), every limit bounded by the server:
/// at most 50 hops and 100,000 nodes, within its timeout (503 beyond).
#[utoipa::path(post, path = "/v1/trace", tag = "tracing", request_body = TraceBody, responses((status = 200, body = TraceResponse)))]
pub async fn trace(State(st): Shared, ApiJson(body): ApiJson<TraceBody>) -> Result<Json<TraceResponse>, ApiError> {
    let req = body.request()?;
    st.heavy("the trace", move |st| analysis::trace(st, req)).await.map(Json)
}

/// The incident registry (bundled DPRK-attributed thefts, users' and simulated cases), by id.
#[utoipa::path(get, path = "/v1/incidents", tag = "incidents", params(IncidentPageParams), responses((status = 200, body = IncidentsPage)))]
pub async fn incidents(State(st): Shared, ApiQuery(page): ApiQuery<IncidentPageParams>) -> Result<Json<IncidentsPage>, ApiError> {
    st.blocking(move |st| {
        let limit = PageParams { cursor: None, limit: page.limit }.limit()?;
        let reg = Registry::load(&st.data_dir)?;
        let after = page.cursor.clone();
        let mut all: Vec<&tracehound_report::Incident> = reg.incidents().iter().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let start = after.map_or(0, |c| all.partition_point(|i| i.id.as_str() <= c.as_str()));
        let items: Vec<_> = all.iter().skip(start).take(limit).map(|i| (*i).clone()).collect();
        let next = (start + items.len() < all.len()).then(|| items.last().map(|i| i.id.clone())).flatten();
        Ok(IncidentsPage { registry_version: reg.version(), items, next_cursor: next })
    })
    .await
    .map(Json)
}

/// One incident, with the accounting of its traced funds when its chains are ingested here.
#[utoipa::path(get, path = "/v1/incidents/{id}", tag = "incidents", params(("id" = String, Path, description = "Incident id (e.g. harmony_2022)")),
    responses((status = 200, body = IncidentDetail)))]
pub async fn incident(State(st): Shared, ApiPath(id): ApiPath<String>) -> Result<Json<IncidentDetail>, ApiError> {
    let inc = st
        .blocking(move |st| {
            let reg = Registry::load(&st.data_dir)?;
            reg.get(&id).cloned().ok_or_else(|| ApiError::not_found(format!("no incident {id:?}; /v1/incidents lists them")))
        })
        .await?;
    let for_trace = inc.clone();
    let (accounting, note) = match st.heavy("the incident's trace", move |st| Ok(analysis::incident_accounting(st, &for_trace))).await {
        Ok(Ok(a)) => (Some(a), None),
        Ok(Err(why)) => (None, Some(why)),
        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => (None, Some(e.detail().to_string())),
        Err(e) => return Err(e),
    };
    Ok(Json(IncidentDetail { incident: inc, accounting, accounting_note: note }))
}

/// An actor: country, categories, aliases and a summary of its tags.
#[utoipa::path(get, path = "/v1/actors/{id}", tag = "labels", params(("id" = String, Path, description = "Actor id, label or alias (e.g. lazarus)")),
    responses((status = 200, body = ActorDetails)))]
pub async fn actor(State(st): Shared, ApiPath(id): ApiPath<String>) -> Result<Json<ActorDetails>, ApiError> {
    st.blocking(move |st| {
        let labels = crate::labels::open_labels(&st.data_dir)?;
        match labels.actor(&id) {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(ApiError::not_found(format!("no actor matches {id:?}; try /v1/labels/search?q={id}"))),
            Err(e) => Err(ApiError::from_input(e.into())),
        }
    })
    .await
    .map(Json)
}

/// Statistics over the incident registry: stolen USD grouped by actor, country, year, ….
#[utoipa::path(get, path = "/v1/stats", tag = "incidents", params(StatsParams), responses((status = 200, body = StatsTable)))]
pub async fn stats(State(st): Shared, ApiQuery(p): ApiQuery<StatsParams>) -> Result<Json<StatsTable>, ApiError> {
    st.blocking(move |st| {
        let by = p.by.as_deref().unwrap_or("year");
        let dims: Vec<Dim> = by
            .split(',')
            .filter(|b| !b.trim().is_empty())
            .map(|b| b.parse::<Dim>().map_err(|e| ApiError::bad_request(format!("by: {e}"))))
            .collect::<Result<_, _>>()?;
        let dims = if dims.is_empty() { vec![Dim::Year] } else { dims };
        let min_attribution =
            p.min_attribution.as_deref().map(|a| a.parse::<Attribution>().map_err(|e| ApiError::bad_request(format!("min_attribution: {e}")))).transpose()?;
        let reg = Registry::load(&st.data_dir)?;
        let prices = PriceTable::load(&st.data_dir)?;
        let options = StatsOptions { include_simulated: p.include_simulated.unwrap_or(false), min_attribution, actor: p.actor };
        Ok(tracehound_report::stats_with(&reg, &prices, &dims, options))
    })
    .await
    .map(Json)
}

/// Searches actors and tags.
#[utoipa::path(get, path = "/v1/labels/search", tag = "labels", params(SearchParams), responses((status = 200, body = SearchPage)))]
pub async fn search(State(st): Shared, ApiQuery(p): ApiQuery<SearchParams>) -> Result<Json<SearchPage>, ApiError> {
    st.blocking(move |st| analysis::search(st, &p)).await.map(Json)
}

/// Adds a tag (analyst or admin keys), recorded in the audit log under the key's id and name.
#[utoipa::path(post, path = "/v1/tags", tag = "labels", request_body = NewTagBody,
    responses((status = 201, body = TagWritten, description = "The tag was added"), (status = 200, body = TagWritten, description = "The same tag was already stored")))]
pub async fn add_tag(State(st): Shared, Extension(caller): Extension<Caller>, ApiJson(body): ApiJson<NewTagBody>) -> Result<Response, ApiError> {
    let written = st.blocking(move |st| analysis::add_tag(st, body, &caller.who())).await?;
    let status = if written.inserted { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written)).into_response())
}

/// The audit log, oldest first (admin keys).
#[utoipa::path(get, path = "/v1/audit", tag = "admin", params(PageParams), responses((status = 200, body = AuditPage)))]
pub async fn audit(State(st): Shared, ApiQuery(page): ApiQuery<PageParams>) -> Result<Json<AuditPage>, ApiError> {
    st.blocking(move |st| {
        let limit = page.limit()?;
        let after = page.cursor::<i64>()?.unwrap_or(0);
        let labels = crate::labels::open_labels(&st.data_dir)?;
        let mut items = labels.audit_entries(after, limit + 1).map_err(|e| ApiError::internal(&e.into()))?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(|e| e.id.to_string()) } else { None };
        Ok(AuditPage { items, next_cursor: next })
    })
    .await
    .map(Json)
}

/// The API keys: id, name, role, created and revoked (admin keys; never the keys).
#[utoipa::path(get, path = "/v1/keys", tag = "admin", responses((status = 200, body = KeyList)))]
pub async fn keys(State(st): Shared) -> Result<Json<KeyList>, ApiError> {
    st.blocking(move |st| {
        let labels = crate::labels::open_labels(&st.data_dir)?;
        Ok(KeyList { items: labels.api_keys().map_err(|e| ApiError::internal(&e.into()))? })
    })
    .await
    .map(Json)
}

/// Any path that is not a route.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no resource at {}: the routes are listed at /v1/openapi.json", uri.path()))
}
