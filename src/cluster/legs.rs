//! Calls from one engine node to another: a JSON request to an internal endpoint of the
//! node at `addr`, carrying the cluster's forwarding secret, answered within a deadline.
//! Also the HTTP client every such call (and request forwarding) shares.
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Cluster, FORWARD_HEADER};

/// The client for calls to other nodes (kept-alive connections to each).
pub fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default()
    })
}

/// POSTs `body` to `{addr}{path}` and reads the JSON answer (a 200); an error says why
/// none came. Bounded by `forward_concurrency_max` calls at once and by `timeout`.
pub async fn call<Req: Serialize, Ans: DeserializeOwned>(
    cluster: &Cluster,
    addr: &str,
    path: &str,
    body: &Req,
    timeout: Duration,
) -> Result<Ans, String> {
    let Ok(_permit) = cluster.forward_slots.clone().try_acquire_owned() else {
        cluster
            .counters
            .forward_failed
            .fetch_add(1, Ordering::Relaxed);
        return Err("too many calls to other nodes".into());
    };
    let url = format!("{}{}", addr.trim_end_matches('/'), path);
    let answer = http_client()
        .post(&url)
        .timeout(timeout)
        .header(FORWARD_HEADER, &cluster.settings.forward_secret)
        .json(body)
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let out = match answer {
        Ok(r) => r.json::<Ans>().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let counter = if out.is_ok() {
        &cluster.counters.forwarded
    } else {
        &cluster.counters.forward_failed
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = &out {
        tracing::warn!(error = %e, %url, "call to another node failed");
    }
    out
}
