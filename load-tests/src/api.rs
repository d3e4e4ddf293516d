//! A thin HTTP client of the engine's REST API: every call answers a [`Reply`] (status,
//! JSON body, elapsed time) and never fails; a transport error is status 0.
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

/// One answer of the engine.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status, 0 when no answer came (connection refused, timeout).
    pub status: u16,
    pub body: Value,
    pub elapsed: Duration,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The contract's `error.code`, else `http_<status>`, else `transport`.
    pub fn code(&self) -> String {
        if let Some(c) = self.body["error"]["code"].as_str() {
            return c.to_string();
        }
        match self.status {
            0 => "transport".into(),
            s => format!("http_{s}"),
        }
    }

    /// The `id` at the top level of the body.
    pub fn id(&self) -> anyhow::Result<Uuid> {
        id_of(&self.body)
    }

    /// Fails with the status and body unless the answer is 2xx.
    pub fn expect_ok(self, what: &str) -> anyhow::Result<Reply> {
        if self.ok() {
            Ok(self)
        } else {
            anyhow::bail!("{what}: {} {}", self.status, self.body)
        }
    }
}

pub fn id_of(v: &Value) -> anyhow::Result<Uuid> {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no id in {v}"))
}

/// The engine at `base` (e.g. `http://127.0.0.1:8080`).
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(4096)
            .tcp_nodelay(true)
            .build()?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http", "ws", 1))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.http.get(self.url(path)), token).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(self.http.post(self.url(path)).json(body), token)
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(self.http.patch(self.url(path)).json(body), token)
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> Reply {
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let started = Instant::now();
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let bytes = r.bytes().await.unwrap_or_default();
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                Reply {
                    status,
                    body,
                    elapsed: started.elapsed(),
                }
            }
            Err(e) => Reply {
                status: 0,
                body: json!({"error": {"code": "transport", "message": e.to_string()}}),
                elapsed: started.elapsed(),
            },
        }
    }

    /// Waits until `GET /readyz` answers 200 (or `wait` passes).
    pub async fn wait_ready(&self, wait: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + wait;
        loop {
            if self.get("/readyz", None).await.status == 200 {
                return Ok(());
            }
            if Instant::now() > until {
                anyhow::bail!("{} not ready after {wait:?}", self.base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
