//! API keys and roles: who is calling, whether the role allows the route, and the per-key rate
//! limit. A key is `th_` + 64 hex digits (32 random bytes); the label store keeps only its
//! SHA-256, so a copy of the store gives no key away.

use super::problem::ApiError;
use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a key may do; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// Read everything: addresses, clusters, transactions, screening, traces, incidents, labels.
    Viewer,
    /// Also write: add tags.
    Analyst,
    /// Also administer: the audit log and the list of keys.
    Admin,
}

impl Role {
    /// The name stored with the key.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Role> {
        [Role::Viewer, Role::Analyst, Role::Admin].into_iter().find(|r| r.name() == name)
    }
}

/// The key a request came with (put in the request's extensions by [`authenticate`]).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Key id.
    pub id: i64,
    /// Name given to the key.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// How the caller is named in the audit log and in tags it writes.
    pub fn who(&self) -> String {
        format!("api key {} ({})", self.id, self.name)
    }
}

/// A new random key: `th_` + 32 random bytes in hex.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("th_{}", hex::encode(bytes))
}

/// The SHA-256 of a key, in hex: what the label store keeps.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The key of a request: the `X-API-Key` header, else `Authorization: Bearer <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    let auth = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, key) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// Finds the caller's key (401 without a valid one), applies its rate limit (429) and passes
/// the request on with its [`Caller`].
pub async fn authenticate(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let Some(key) = presented_key(req.headers()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "an API key is required: send it in the X-API-Key header (or Authorization: Bearer <key>); `tracehound keys create` makes one",
        )
        .into_response();
    };
    let hash = key_hash(key);
    let st = state.clone();
    let found = tokio::task::spawn_blocking(move || st.key_by_hash(&hash)).await;
    let caller = match found {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked API key").into_response(),
        Ok(Err(e)) => return ApiError::internal(&e).into_response(),
        Err(e) => return ApiError::internal(&anyhow::anyhow!("key lookup: {e}")).into_response(),
    };
    if let Err(wait) = state.limiter.take(caller.id) {
        let secs = wait.ceil().max(1.0) as u64;
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("rate limit of {} requests per second for this key reached; retry in {secs} s", state.limiter.rate),
        )
        .retry_after(secs)
        .into_response();
    }
    req.extensions_mut().insert(caller.clone());
    let mut res = next.run(req).await;
    res.extensions_mut().insert(caller);
    res
}

fn require(req: &Request, role: Role) -> Result<(), ApiError> {
    let caller = req.extensions().get::<Caller>().ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "an API key is required"))?;
    if caller.role < role {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this needs a key with the {} role; key {} ({}) is a {} key", role.name(), caller.id, caller.name, caller.role.name()),
        ));
    }
    Ok(())
}

/// Lets only analyst and admin keys through (403 otherwise).
pub async fn analyst(req: Request, next: Next) -> Response {
    match require(&req, Role::Analyst) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Lets only admin keys through (403 otherwise).
pub async fn admin(req: Request, next: Next) -> Response {
    match require(&req, Role::Admin) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// A token bucket per key: `rate` requests per second, bursts of up to `rate` (at least 1).
pub struct RateLimiter {
    /// Requests per second per key.
    pub rate: f64,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter of `rate` requests per second per key.
    pub fn new(rate: f64) -> RateLimiter {
        RateLimiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token of key `id`; `Err(seconds)` until one is available.
    pub fn take(&self, id: i64) -> Result<(), f64> {
        let burst = self.rate.max(1.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = buckets.entry(id).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, b) = (new_key(), new_key());
        assert!(a.starts_with("th_") && a.len() == 67 && a != b);
        assert_eq!(key_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bucket_allows_a_burst_then_waits() {
        let l = RateLimiter::new(2.0);
        assert!(l.take(1).is_ok() && l.take(1).is_ok());
        let wait = l.take(1).unwrap_err();
        assert!(wait > 0.0 && wait <= 0.5, "{wait}");
        assert!(l.take(2).is_ok(), "keys have buckets of their own");
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin > Role::Analyst && Role::Analyst > Role::Viewer);
        assert_eq!(Role::from_name("analyst"), Some(Role::Analyst));
    }
}
