//! A plain serialize-once WebSocket broadcaster: a baseline of `winzo-load ws-compare`
//! (issue 16; the other is the Node `ws` one in load-tests/node-broadcaster, which speaks the
//! same). Not a second engine: no state, no database, no actors, one process.
//!
//! - `GET /ws` upgrades (tokio-tungstenite over the accepted socket). A client sends the
//!   engine's `{"op": "subscribe", "id": .., "topics": [..]}` and gets, per topic, a
//!   snapshot-shaped answer `{"type": "snapshot", "topic", "id", "seq", "data": {"markets": []}}`,
//!   then the topic's messages. `ping` is answered with `pong`; other ops with an `error`.
//! - `POST /api/v1/trading/markets/<market id>/prices?event_id=<event id>` with the engine's
//!   body `{"prices": [{"selection_id", "odds"}]}` (the same request as the engine's trading
//!   endpoint, plus the event in the query, which the engine ignores): the `odds` message of
//!   the engine's shape (`event_id, market_id, selections: [{id, odds, american,
//!   fractional}]`, the same odds conversions) is serialized **once** into the envelope
//!   `{"type", "topic", "seq", "data"}` and the shared text is offered to every subscriber
//!   of `event:<event id>`; then the request is answered `200 {"seq", "subscribers"}`.
//! - Each connection has one bounded queue (`QUEUE` messages, the engine's
//!   `ws.session_send_queue_messages_max` by default); a subscriber whose queue is full is
//!   dropped from its topics and closed with 4008 `slow_consumer`, as the engine does. Its
//!   task writes everything queued and flushes once (one socket write per burst).
//! - `GET /readyz` answers 200.
//!
//! Run: `plain_broadcaster [port (18081)] [queue messages (1024)]` (raise `ulimit -n` first
//! for 10,000 clients).
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use winzo::domain::odds::{display, Odds, OddsFormat, ODDS_COLUMN_MAX};

/// Largest request head or body read.
const REQUEST_BYTES_MAX: usize = 64 * 1024;

/// One subscriber of a topic: its connection's queue and the signal that closes it.
struct Sub {
    conn: u64,
    tx: mpsc::Sender<Arc<str>>,
    kicked: Arc<Notify>,
}

#[derive(Default)]
struct Topic {
    seq: u64,
    subs: Vec<Sub>,
}

#[derive(Default)]
struct Hub {
    topics: Mutex<HashMap<String, Topic>>,
    next_conn: AtomicU64,
}

impl Hub {
    /// Attaches a connection to `topic`: the topic's current seq (its snapshot's).
    fn subscribe(&self, topic: &str, sub: Sub) -> u64 {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let t = topics.entry(topic.to_string()).or_default();
        if !t.subs.iter().any(|s| s.conn == sub.conn) {
            t.subs.push(sub);
        }
        t.seq
    }

    fn unsubscribe_all(&self, conn: u64) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        for t in topics.values_mut() {
            t.subs.retain(|s| s.conn != conn);
        }
    }

    /// Serializes the envelope once and offers the shared text to every subscriber; a full
    /// queue drops (and closes) its subscriber. Answers (seq, subscribers reached).
    fn publish(&self, topic: &str, kind: &str, data: &Value) -> (u64, usize) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let t = topics.entry(topic.to_string()).or_default();
        t.seq += 1;
        // The engine's envelope, its keys in the engine's order.
        let text: Arc<str> = Arc::from(format!(
            r#"{{"type":"{kind}","topic":{},"seq":{},"data":{data}}}"#,
            Value::from(topic),
            t.seq
        ));
        t.subs.retain(|s| match s.tx.try_send(text.clone()) {
            Ok(()) => true,
            Err(_) => {
                s.kicked.notify_one();
                false
            }
        });
        (t.seq, t.subs.len())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let port: u16 = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(18081);
    let queue: usize = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024).max(1);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("plain_broadcaster on 127.0.0.1:{port}, queue {queue} messages per connection");
    let hub = Arc::new(Hub::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let hub = hub.clone();
        tokio::spawn(async move {
            let _ = connection(stream, hub, queue).await;
        });
    }
}

/// An HTTP/1.1 connection: requests (kept alive) until one upgrades to a WebSocket.
async fn connection(mut stream: TcpStream, hub: Arc<Hub>, queue: usize) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        // The head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            anyhow::ensure!(buf.len() < REQUEST_BYTES_MAX, "request head too long");
            if read_more(&mut stream, &mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split_whitespace();
        let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
        let header = |name: &str| {
            head.split("\r\n").skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if method == "GET" && path == "/ws" {
            let Some(key) = header("sec-websocket-key") else {
                respond(&mut stream, 400, "{}").await?;
                return Ok(());
            };
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            );
            stream.write_all(answer.as_bytes()).await?;
            let rest = buf.split_off(head_end);
            let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, None).await;
            return session(ws, hub, queue).await;
        }
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        anyhow::ensure!(length <= REQUEST_BYTES_MAX, "request body too long");
        while buf.len() < head_end + length {
            if read_more(&mut stream, &mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let (status, answer) = route(&hub, method, path, query, &body);
        respond(&mut stream, status, &answer).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await
}

fn route(hub: &Hub, method: &str, path: &str, query: &str, body: &[u8]) -> (u16, String) {
    if method == "GET" && path == "/readyz" {
        return (200, r#"{"status":"ready"}"#.into());
    }
    let market = path
        .strip_prefix("/api/v1/trading/markets/")
        .and_then(|p| p.strip_suffix("/prices"));
    let event = query.split('&').find_map(|kv| kv.strip_prefix("event_id="));
    let (Some(market), Some(event), "POST") = (market, event, method) else {
        return (404, r#"{"error":{"code":"not_found"}}"#.into());
    };
    match odds_data(event, market, body) {
        Ok(data) => {
            let (seq, subscribers) = hub.publish(&format!("event:{event}"), "odds", &data);
            (
                200,
                json!({"seq": seq, "subscribers": subscribers}).to_string(),
            )
        }
        Err(e) => (
            400,
            json!({"error": {"code": "validation_failed", "message": e.to_string()}}).to_string(),
        ),
    }
}

/// The engine's `odds` data for a prices body.
fn odds_data(event: &str, market: &str, body: &[u8]) -> anyhow::Result<Value> {
    let v: Value = serde_json::from_slice(body)?;
    let prices = v["prices"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no prices"))?;
    let mut selections = Vec::with_capacity(prices.len());
    for p in prices {
        let odds = Odds::parse(p["odds"].as_str().unwrap_or(""), ODDS_COLUMN_MAX)
            .map_err(|e| anyhow::anyhow!("odds: {e:?}"))?;
        selections.push(json!({"id": p["selection_id"], "odds": odds,
            "american": display(odds, OddsFormat::American),
            "fractional": display(odds, OddsFormat::Fractional)}));
    }
    Ok(
        json!({"event_id": uuid::Uuid::from_str(event)?, "market_id": uuid::Uuid::from_str(market)?,
              "selections": selections}),
    )
}

/// One WebSocket client: its subscribe ops are answered here, its queue written out.
async fn session(
    mut ws: WebSocketStream<TcpStream>,
    hub: Arc<Hub>,
    queue: usize,
) -> anyhow::Result<()> {
    let conn = hub.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Arc<str>>(queue);
    let kicked = Arc::new(Notify::new());
    let result = async {
        loop {
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { return Ok(()) };
                    ws.feed(Message::Text(first.to_string())).await?;
                    while let Ok(more) = rx.try_recv() {
                        ws.feed(Message::Text(more.to_string())).await?;
                    }
                    ws.flush().await?;
                }
                frame = ws.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None => return Ok(()),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(anyhow::Error::from(e)),
                    };
                    for answer in op(&hub, conn, &tx, &kicked, &text) {
                        ws.feed(Message::Text(answer)).await?;
                    }
                    ws.flush().await?;
                }
                () = kicked.notified() => {
                    let close = CloseFrame { code: CloseCode::Library(4008), reason: "slow_consumer".into() };
                    let _ = ws.send(Message::Close(Some(close))).await;
                    return Ok(());
                }
            }
        }
    }
    .await;
    hub.unsubscribe_all(conn);
    result
}

/// The answers to one client message.
fn op(
    hub: &Hub,
    conn: u64,
    tx: &mpsc::Sender<Arc<str>>,
    kicked: &Arc<Notify>,
    text: &str,
) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return vec![json!({"type": "error", "code": "malformed"}).to_string()];
    };
    let id = v["id"].clone();
    match v["op"].as_str() {
        Some("subscribe") => v["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|topic| {
                let sub = Sub {
                    conn,
                    tx: tx.clone(),
                    kicked: kicked.clone(),
                };
                let seq = hub.subscribe(topic, sub);
                format!(
                    r#"{{"type":"snapshot","topic":{},"id":{id},"seq":{seq},"data":{{"markets":[]}}}}"#,
                    Value::from(topic)
                )
            })
            .collect(),
        Some("ping") => vec![json!({"type": "pong", "id": id}).to_string()],
        _ => vec![json!({"type": "error", "id": id, "code": "unknown_op"}).to_string()],
    }
}
