//! A blocking JSON-RPC client shared by every node source: batched requests (JSON arrays),
//! retries with exponential backoff on transport errors and HTTP 429/5xx, an optional
//! request-rate limit for hosted endpoints, and basic auth from the URL or a cookie file.

use crate::Error;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A JSON-RPC client with batching, retries and an optional rate limit.
pub struct RpcClient {
    agent: ureq::Agent,
    url: String,
    auth: Option<String>,
    retries: u32,
    /// Earliest instant the next HTTP request may start, and the spacing between requests.
    pace: Option<(Mutex<Instant>, Duration)>,
    version: &'static str,
}

/// One call's own result: the value, or the node's error object for that call.
pub type CallResult = Result<Value, Value>;

/// One reply of a batch, its result read as an `R`.
#[derive(serde::Deserialize)]
struct Reply<R> {
    id: Option<Value>,
    result: Option<R>,
    error: Option<Value>,
}

impl RpcClient {
    /// Connects to `url` (credentials from the URL or the cookie file).
    pub fn new(url: &str, cookie: Option<&std::path::Path>, retries: u32) -> Result<RpcClient, Error> {
        let (url, mut auth) = split_credentials(url);
        if auth.is_none() {
            if let Some(c) = cookie {
                let text = std::fs::read_to_string(c).map_err(|e| Error::io(c, e))?;
                auth = Some(text.trim().to_string());
            }
        }
        // Timeouts per phase, none on name resolution: with one, ureq resolves every request on
        // a new thread (a thousand threads for a thousand batches). The system resolver has
        // its own timeouts.
        let long = Some(Duration::from_secs(120));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_send_request(long)
            .timeout_send_body(long)
            .timeout_recv_response(long)
            .timeout_recv_body(long)
            .http_status_as_error(false)
            .build()
            .into();
        let auth = auth.map(|a| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(a)));
        Ok(RpcClient { agent, url, auth, retries, pace: None, version: "2.0" })
    }

    /// Limits requests (HTTP requests, each possibly a batch) to `per_second`.
    pub fn with_rate_limit(mut self, per_second: Option<f64>) -> RpcClient {
        self.pace = per_second.filter(|r| *r > 0.0).map(|r| (Mutex::new(Instant::now()), Duration::from_secs_f64(1.0 / r)));
        self
    }

    /// Sends `"jsonrpc": version` (Bitcoin Core's legacy interface wants `"1.0"`; the default is `"2.0"`).
    pub fn with_version(mut self, version: &'static str) -> RpcClient {
        self.version = version;
        self
    }

    /// The node's URL without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One call.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        let mut r = self.batch(method, vec![params])?;
        Ok(r.remove(0))
    }

    /// Many calls of one method in one request; results in the order of `params`. Any call's
    /// error fails the whole batch.
    pub fn batch(&self, method: &str, params: Vec<Value>) -> Result<Vec<Value>, Error> {
        let calls: Vec<(&str, Value)> = params.into_iter().map(|p| (method, p)).collect();
        let replies = self.batch_calls(&calls)?;
        replies.into_iter().zip(&calls).map(|(r, (m, p))| r.map_err(|err| Error::Rpc { method: m.to_string(), reason: format!("params {p}: {err}") })).collect()
    }

    /// Calls of any methods in one request; each call's own result or error, in order.
    pub fn batch_calls(&self, calls: &[(&str, Value)]) -> Result<Vec<CallResult>, Error> {
        let replies = self.batch_calls_as::<Value>(calls)?;
        Ok(replies.into_iter().map(|r| r.map(|v| v.unwrap_or(Value::Null))).collect())
    }

    /// [`RpcClient::batch_calls`] with each result read as an `R` (`None` for a null result); a
    /// result that is not an `R` fails the batch.
    pub fn batch_calls_as<R: DeserializeOwned>(&self, calls: &[(&str, Value)]) -> Result<Vec<Result<Option<R>, Value>>, Error> {
        if calls.is_empty() {
            return Ok(vec![]);
        }
        read_replies(&self.batch_text(calls)?, calls)
    }

    /// Sends `calls` (not empty) in one request and returns the reply text, for
    /// [`read_replies`] to read in place (with `R` = `&RawValue` each call's result stays a
    /// slice of the text, to be read into a typed value of its own).
    pub fn batch_text(&self, calls: &[(&str, Value)]) -> Result<String, Error> {
        let method = calls.first().map_or("batch", |c| c.0);
        let body: Vec<Value> = calls.iter().enumerate().map(|(i, (m, p))| json!({"jsonrpc": self.version, "id": i, "method": m, "params": p})).collect();
        let body = serde_json::to_string(&body).expect("json");
        self.post_with_retries(method, &body)
    }

    fn wait_for_turn(&self) {
        if let Some((next, gap)) = &self.pace {
            let wait = {
                let mut n = next.lock().expect("pace lock");
                let now = Instant::now();
                let start = (*n).max(now);
                *n = start + *gap;
                start - now
            };
            std::thread::sleep(wait);
        }
    }

    fn post_with_retries(&self, method: &str, body: &str) -> Result<String, Error> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            self.wait_for_turn();
            let mut req = self.agent.post(&self.url).header("Content-Type", "application/json");
            if let Some(a) = &self.auth {
                req = req.header("Authorization", a);
            }
            let result = req.send(body);
            let retry_reason = match result {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = match resp.body_mut().with_config().limit(1 << 31).read_to_string() {
                        Ok(t) => t,
                        Err(e) => format!("reading the reply failed: {e}"),
                    };
                    let refused = text.trim_start().starts_with('{') && is_rate_limited(&text);
                    match status {
                        200 if refused => format!("rate limited: {}", snippet(&text)),
                        200 if text.starts_with("reading the reply failed") => text,
                        200 => return Ok(text),
                        401 | 403 => {
                            return Err(Error::Rpc {
                                method: method.into(),
                                reason: format!("HTTP {status}: the node refused the credentials (give user:password@ in the URL or --cookie)"),
                            })
                        }
                        429 | 500..=599 if !text.trim_start().starts_with('[') => format!("HTTP {status}: {}", snippet(&text)),
                        _ if text.trim_start().starts_with('[') => return Ok(text),
                        _ => return Err(Error::Rpc { method: method.into(), reason: format!("HTTP {status}: {}", snippet(&text)) }),
                    }
                }
                Err(e) => e.to_string(),
            };
            attempt += 1;
            if attempt > self.retries {
                return Err(Error::Rpc { method: method.into(), reason: format!("{retry_reason} (after {} attempts to {})", attempt, self.url) });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
}

/// The replies to `calls` (not empty) in the batch reply `text`, in call order, each result read
/// as an `R` (which may borrow from `text`).
pub fn read_replies<'a, R: Deserialize<'a>>(text: &'a str, calls: &[(&str, Value)]) -> Result<Vec<Result<Option<R>, Value>>, Error> {
    let method = calls[0].0;
    let replies: Vec<Reply<R>> = match serde_json::from_str(text) {
        Ok(replies) => replies,
        Err(e) => {
            let reason = match serde_json::from_str::<Value>(text) {
                // Some nodes answer a failed batch with one error object.
                Ok(one @ Value::Object(_)) => format!("the node refused the batch: {}", snippet(&one.to_string())),
                Ok(Value::Array(_)) => format!("unreadable reply: {e}"),
                _ => format!("unreadable reply: {}", snippet(text)),
            };
            return Err(Error::Rpc { method: method.into(), reason });
        }
    };
    let mut out: Vec<Option<Result<Option<R>, Value>>> = (0..calls.len()).map(|_| None).collect();
    for r in replies {
        let id =
            r.id.as_ref()
                .and_then(Value::as_u64)
                .filter(|i| (*i as usize) < out.len())
                .ok_or_else(|| Error::Rpc { method: method.into(), reason: format!("reply without a known id: {}", r.id.unwrap_or(Value::Null)) })?;
        out[id as usize] = Some(match r.error.filter(|e| !e.is_null()) {
            Some(err) => Err(err),
            None => Ok(r.result),
        });
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| Error::Rpc { method: calls[i].0.into(), reason: format!("no reply to call {i} of the batch") }))
        .collect()
}

/// A whole-request error object that says to slow down (hosted endpoints answer HTTP 200 with it).
fn is_rate_limited(text: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(text) else { return false };
    let Some(err) = v.get("error") else { return false };
    let msg = err.get("message").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    matches!(err.get("code").and_then(Value::as_i64), Some(-32005 | 429)) || msg.contains("rate limit") || msg.contains("too many requests")
}

pub(crate) fn snippet(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Splits `http://user:pass@host:port/` into the URL without credentials and `user:pass`.
pub fn split_credentials(url: &str) -> (String, Option<String>) {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            if !creds.contains('/') {
                return (format!("{scheme}://{host}"), Some(creds.to_string()));
            }
        }
    }
    (url.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_the_url() {
        assert_eq!(split_credentials("http://u:p@127.0.0.1:8332"), ("http://127.0.0.1:8332".into(), Some("u:p".into())));
        assert_eq!(split_credentials("http://127.0.0.1:8332/wallet/a@b"), ("http://127.0.0.1:8332/wallet/a@b".into(), None));
        assert_eq!(split_credentials("127.0.0.1:8332"), ("127.0.0.1:8332".into(), None));
    }

    fn calls(n: usize) -> Vec<(&'static str, Value)> {
        (0..n).map(|i| ("m", json!([i]))).collect()
    }

    #[test]
    fn batch_replies_are_read_in_call_order() {
        // Out of order, keys in any order, a null result, an error object, an unknown key.
        let text = r#"[{"id": 2, "jsonrpc": "2.0", "result": null},
            {"result": 7, "jsonrpc": "2.0", "id": 1},
            {"jsonrpc": "2.0", "id": 0, "result": 5, "extra": {"x": [1]}},
            {"jsonrpc": "2.0", "id": 3, "error": {"code": -32601, "message": "Method not found"}}]"#;
        let got = read_replies::<u64>(text, &calls(4)).unwrap();
        assert_eq!(got[..3], [Ok(Some(5)), Ok(Some(7)), Ok(None)]);
        assert_eq!(got[3].as_ref().unwrap_err()["code"], -32601);
        let raw = read_replies::<&serde_json::value::RawValue>(text, &calls(4)).unwrap();
        assert_eq!(raw[1].as_ref().unwrap().as_ref().unwrap().get(), "7");
    }

    #[test]
    fn bad_batch_replies_say_what_is_wrong() {
        let err = |text: &str, n: usize| read_replies::<u64>(text, &calls(n)).unwrap_err().to_string();
        assert!(err(r#"[{"id": 0, "result": "0x5"}]"#, 1).contains("unreadable reply: invalid type"));
        assert!(err(r#"{"error": {"code": -32005, "message": "limit"}}"#, 1).contains("refused the batch"));
        assert!(err(r#"[{"id": 9, "result": 1}]"#, 1).contains("reply without a known id: 9"));
        assert!(err(r#"[{"id": 0, "result": 1}]"#, 2).contains("no reply to call 1"));
        assert!(err("<html>bad gateway</html>", 1).contains("unreadable reply: <html>"));
    }
}
