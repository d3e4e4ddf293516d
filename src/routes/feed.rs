//! `POST /api/v1/feed/{provider}/messages`: signed pushes from feed providers. The raw
//! body is verified before it is parsed; a refused push changes nothing.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::OpenApi;

use crate::feed::apply::{apply_one, Applied, Outcome};
use crate::feed::auth::verify;
use crate::feed::messages::{parse_push, Body, ParseError};
use crate::routes::error::ApiError;
use crate::routes::feed_forward;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(push),
    components(schemas(PushAnswer, Outcome)),
    tags((name = "feed", description = "Signed pushes from data providers (docs/feed.md)"))
)]
pub struct FeedDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::routes::resource("/api/v1/feed/{provider}/messages").route(web::post().to(push)),
    );
    cfg.service(
        crate::routes::resource(&format!("{}/{{provider}}", feed_forward::FEED_PATH))
            .route(web::post().to(push_part)),
    );
}

/// Reads the raw body up to `max` bytes (413 beyond, without reading the rest).
async fn read_body(mut payload: web::Payload, max: usize) -> Result<web::BytesMut, ApiError> {
    use futures::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("feed pushes are limited to {max} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The answer to a push: one outcome per message, in order, and the totals.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PushAnswer {
    pub results: Vec<Outcome>,
    pub applied: usize,
    pub duplicates: usize,
    pub gaps: usize,
    pub rejected: usize,
}

impl PushAnswer {
    /// No outcome yet, room for `n`.
    pub fn empty(n: usize) -> PushAnswer {
        PushAnswer {
            results: Vec::with_capacity(n),
            applied: 0,
            duplicates: 0,
            gaps: 0,
            rejected: 0,
        }
    }
}

/// Receives one message or an array. Headers `X-Feed-Timestamp` (unix seconds) and
/// `X-Feed-Signature` (hex HMAC-SHA256 of `"{timestamp}.{raw body}"`).
#[utoipa::path(
    post,
    path = "/api/v1/feed/{provider}/messages",
    tag = "feed",
    params(("provider" = String, Path, description = "Provider id from configuration")),
    request_body(content = String, description = "One feed message or an array (docs/feed.md)", content_type = "application/json"),
    responses(
        (status = 200, description = "Every message acknowledged: applied, gap, duplicate or rejected", body = PushAnswer),
        (status = 400, description = "Malformed JSON"),
        (status = 401, description = "Unknown provider, missing or bad signature, stale timestamp"),
        (status = 413, description = "Body or message count over the limit"),
        (status = 422, description = "A message of the wrong shape; nothing applied"),
        (status = 503, description = "Postgres unreachable; messages not yet applied are not acknowledged")
    )
)]
pub async fn push(
    state: web::Data<AppState>,
    provider: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let provider = provider.into_inner();
    let body = read_body(payload, state.settings.feed.body_max_bytes).await?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    check_signature(&state, &provider, &req, &body, now)?;
    let messages = parse_messages(&state, &body)?;
    let heartbeat = messages
        .iter()
        .any(|m| matches!(m.body, Body::Heartbeat(_)));
    let signed_s = header("X-Feed-Timestamp")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(now);
    let answer = apply_here_or_at_owners(&state, &provider, &body, messages, signed_s).await?;
    note_heard(&state, &provider, signed_s, &answer, heartbeat).await;
    Ok(HttpResponse::Ok().json(answer))
}

/// Refreshes the provider's liveness from an applied push (the watchdog's module says
/// what proves it alive).
async fn note_heard(
    state: &AppState,
    provider: &str,
    signed_s: i64,
    answer: &PushAnswer,
    heartbeat: bool,
) {
    let heard = crate::feed::watchdog::Heard {
        signed_s,
        new_seq: answer
            .results
            .iter()
            .any(|o| o.seq.is_some() && o.outcome != Applied::Duplicate),
        heartbeat,
    };
    if state.feed_liveness.heard(provider, heard) == Some(true) {
        provider_back(state, provider).await;
    }
}

/// With several nodes: the messages of events owned here are applied here, the others
/// by their owners (`feed_forward`), and the outcomes merged in the push's order.
async fn apply_here_or_at_owners(
    state: &web::Data<AppState>,
    provider: &str,
    body: &[u8],
    messages: Vec<crate::feed::messages::FeedMessage>,
    signed_s: i64,
) -> Result<PushAnswer, ApiError> {
    let cluster = state.registry.cluster();
    if !cluster.enabled() {
        return apply_on_feed_thread(state, provider, messages).await;
    }
    let split = feed_forward::split(state, provider, &messages).await?;
    if split.there.is_empty() {
        return apply_on_feed_thread(state, provider, messages).await;
    }
    // The messages as sent (parse_push read the same body: same count, same order).
    let raw: Vec<serde_json::Value> = match serde_json::from_slice(body) {
        Ok(serde_json::Value::Array(items)) => items,
        Ok(one) => vec![one],
        Err(e) => return Err(ApiError::bad_request(e.to_string())),
    };
    let len = messages.len();
    let here: Vec<_> = split.here.iter().map(|&i| messages[i].clone()).collect();
    let local = async {
        if here.is_empty() {
            Ok(PushAnswer::empty(0))
        } else {
            apply_on_feed_thread(state, provider, here).await
        }
    };
    let remote = feed_forward::send_parts(cluster, provider, signed_s, &raw, &split.there);
    let (local, remote) = futures::join!(local, remote);
    let mut parts = remote?;
    parts.push((split.here, local?));
    Ok(feed_forward::merge(len, parts))
}

/// `POST /api/v1/cluster/internal/feed/{provider}`: a part of a push whose events this
/// node owns, sent by the node that received it (its signature checked there). Applied
/// here as a push of its own; never forwarded again.
async fn push_part(
    state: web::Data<AppState>,
    provider: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    crate::routes::cluster::from_a_node(&req, &state)?;
    let provider = provider.into_inner();
    if state.settings.feed.provider(&provider).is_none() {
        return Err(ApiError::unauthorized(
            "feed push refused: unknown provider",
        ));
    }
    // A part is never larger than its push, sent again as JSON (some slack for that).
    let body = read_body(
        payload,
        state.settings.feed.body_max_bytes.saturating_mul(2),
    )
    .await?;
    let part: feed_forward::FeedPart =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let raw =
        serde_json::to_vec(&part.messages).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let messages = parse_messages(&state, &raw)?;
    let heartbeat = messages
        .iter()
        .any(|m| matches!(m.body, Body::Heartbeat(_)));
    let answer = apply_on_feed_thread(&state, &provider, messages).await?;
    note_heard(&state, &provider, part.signed_s, &answer, heartbeat).await;
    Ok(HttpResponse::Ok().json(answer))
}

/// Verifies the push's signature and timestamp (401, counted, when they do not hold).
fn check_signature(
    state: &AppState,
    provider: &str,
    req: &HttpRequest,
    body: &[u8],
    now: i64,
) -> Result<(), ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let settings = &state.settings.feed;
    let Err(e) = verify(
        settings,
        provider,
        header("X-Feed-Timestamp"),
        header("X-Feed-Signature"),
        body,
        now,
    ) else {
        return Ok(());
    };
    let label = if settings.provider(provider).is_some() {
        provider
    } else {
        "unknown"
    };
    state
        .metrics
        .feed_messages_total
        .with_label_values(&[label, e.label()])
        .inc();
    Err(ApiError::unauthorized(format!("feed push refused: {e}")))
}

/// The push's messages (400 malformed, 422 wrong shape, 413 too many).
fn parse_messages(
    state: &AppState,
    body: &[u8],
) -> Result<Vec<crate::feed::messages::FeedMessage>, ApiError> {
    parse_push(body, state.settings.feed.messages_per_push_max).map_err(|e| match e {
        ParseError::Syntax(m) => ApiError::bad_request(m),
        ParseError::Shape(m) => ApiError::validation(m),
        e @ ParseError::TooMany { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
    })
}

/// Applies the messages on the feed thread with the feed's own connections: a push is
/// never queued behind the WebSocket fan-out that shares the HTTP workers (docs/feed.md).
async fn apply_on_feed_thread(
    state: &web::Data<AppState>,
    provider: &str,
    messages: Vec<crate::feed::messages::FeedMessage>,
) -> Result<PushAnswer, ApiError> {
    let feed_state = state.get_ref().clone();
    let context = feed_context(state);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let applying = provider.to_string();
    let spawned = state.feed.arbiter.spawn(async move {
        let _ = tx.send(apply_all(&feed_state, &context, &applying, &messages).await);
    });
    if !spawned {
        return Err(unavailable("the feed thread stopped"));
    }
    rx.await
        .map_err(|_| unavailable("the feed thread dropped the push"))?
}

/// The handles applying feed messages needs (the feed's own connections).
fn feed_context(state: &AppState) -> crate::feed::FeedContext {
    crate::feed::FeedContext {
        db: state.feed.db.clone(),
        registry: state.registry.clone(),
        sequencer: state.feed_sequencer.clone(),
        events: state.events.clone(),
        settlement: state.settlement.clone(),
        feed: std::sync::Arc::new(state.settings.feed.clone()),
        selections_per_market_max: state.settings.markets.selections_per_market_max,
        odds_max: state.settings.markets.odds_max,
    }
}

/// Records that a provider declared silent is sending again.
async fn provider_back(state: &AppState, provider: &str) {
    tracing::info!(%provider, "feed provider is sending again");
    if let Ok(client) = state.db.get().await {
        let details = serde_json::json!({"provider": provider});
        let message = format!("feed provider {provider} is sending again");
        let _ = crate::db::feed::record(&client, "feed_provider_back", "info", &message, &details)
            .await;
    }
}

/// Applies a push's messages in order; the answer lists every outcome.
async fn apply_all(
    state: &AppState,
    context: &crate::feed::FeedContext,
    provider: &str,
    messages: &[crate::feed::messages::FeedMessage],
) -> Result<PushAnswer, ApiError> {
    let mut pending = Vec::new();
    let mut answer = PushAnswer::empty(messages.len());
    for msg in messages {
        let outcome = if matches!(msg.body, Body::Heartbeat(_)) {
            Outcome {
                seq: msg.seq,
                event_ref: msg.event_ref.clone(),
                outcome: Applied::Applied,
                expected_seq: None,
                reason: None,
            }
        } else {
            apply_one(context, provider, msg, &mut pending)
                .await
                .map_err(|e| unavailable(&e))?
        };
        count(state, provider, msg, &outcome, &mut answer);
        answer.results.push(outcome);
    }
    // Acknowledged only once every change of the push is durable.
    crate::feed::apply::wait_pending(pending, state.registry.ask_timeout())
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(answer)
}

fn count(
    state: &AppState,
    provider: &str,
    msg: &crate::feed::messages::FeedMessage,
    o: &Outcome,
    a: &mut PushAnswer,
) {
    match o.outcome {
        Applied::Duplicate => a.duplicates += 1,
        Applied::Rejected => a.rejected += 1,
        Applied::Applied => a.applied += 1,
        Applied::Gap => {
            a.gaps += 1;
            a.applied += 1;
            if let (Some(seq), Some(expected)) = (msg.seq, o.expected_seq) {
                let missing = u64::try_from(seq - expected).unwrap_or(0);
                state
                    .metrics
                    .feed_gap_messages_total
                    .with_label_values(&[provider])
                    .inc_by(missing);
            }
        }
    }
    state
        .metrics
        .feed_messages_total
        .with_label_values(&[provider, o.outcome.as_str()])
        .inc();
}

fn unavailable(cause: &str) -> ApiError {
    tracing::error!(error = cause, "feed push could not be applied");
    ApiError::unavailable("the engine cannot apply feed messages right now; retry the push")
}
