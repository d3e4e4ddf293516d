//! `WsSession`, one actor per WebSocket connection: topic subscriptions (one bounded queue
//! from the hub for all of them), snapshots before deltas, the private channel, heartbeats
//! both ways, and the per-session limits of `[ws]`.
//!
//! Memory per session is bounded: the hub queue holds at most
//! `session_send_queue_messages_max` messages (shared `Bytes`, never copied per session),
//! deltas waiting for a snapshot count toward the same bound, and a session that cannot
//! keep up is closed with [`CLOSE_SLOW_CONSUMER`]. A client that stops reading entirely
//! stops this actor (actix drives it from the socket writer); the kernel's
//! `TCP_USER_TIMEOUT` set on every connection (`startup`) then ends it.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::web;
use actix_web_actors::ws;
use bytestring::ByteString;
use serde_json::{json, Value};

use super::protocol::{self, ClientOp, Topic};
use super::snapshot::{self, SnapshotError};
use crate::auth::cache::Notice;
use crate::auth::AuthError;
use crate::auth::AuthUser;
use crate::broadcast::{QueueRx, QueueTx, Run, SubscriberId, TopicMessage};
use crate::state::ws_slots::ConnectionSlot;
use crate::state::AppState;

/// A subscribed topic: waiting for its snapshot (deltas buffered) or live.
enum Sub {
    Pending { seq: u64, buffer: Vec<TopicMessage> },
    Live,
}

/// A revocation notice that may concern this session (`None`: some were missed).
struct SessionCheck(Option<Notice>);

impl Message for SessionCheck {
    type Result = ();
}

pub struct WsSession {
    /// The engine's state, shared (one pointer a connection, not a copy of every service).
    state: web::Data<AppState>,
    /// This session's subscriber id in the hub (one for all its topics).
    sub_id: SubscriberId,
    /// The sending half of its queue, attached to every topic it subscribes to.
    tx: QueueTx,
    rx: Option<QueueRx>,
    topics: HashMap<String, Sub>,
    /// Deltas buffered across pending topics (bounded by the send queue size).
    buffered: usize,
    /// The private topic once authenticated.
    user: Option<AuthUser>,
    /// The session's token hash (matched against revocation notices).
    token_hash: Option<String>,
    /// The notice stream and the expiry timer of the private channel.
    watch: Option<(SpawnHandle, SpawnHandle)>,
    last_heard: Instant,
    window_start: Instant,
    window_count: u32,
    _slot: ConnectionSlot,
}

impl WsSession {
    pub fn new(
        state: web::Data<AppState>,
        slot: ConnectionSlot,
        user: Option<AuthUser>,
    ) -> WsSession {
        let (tx, rx) = crate::broadcast::queue(state.settings.ws.session_send_queue_messages_max);
        let sub_id = state.hub.subscriber_id();
        WsSession {
            state,
            sub_id,
            tx,
            rx: Some(rx),
            topics: HashMap::new(),
            buffered: 0,
            user,
            token_hash: None,
            watch: None,
            last_heard: Instant::now(),
            window_start: Instant::now(),
            window_count: 0,
            _slot: slot,
        }
    }

    fn close(&self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &'static str) {
        self.state
            .metrics
            .ws_sessions_closed_total
            .with_label_values(&[reason])
            .inc();
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code),
            description: Some(reason.to_string()),
        }));
        ctx.stop();
    }

    fn send(&self, ctx: &mut ws::WebsocketContext<Self>, text: impl Into<ByteString>) {
        self.state.metrics.ws_messages_sent_total.inc();
        ctx.text(text);
    }

    fn heartbeat(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let every = Duration::from_millis(self.state.settings.ws.heartbeat_interval_ms.max(10));
        let timeout = Duration::from_millis(self.state.settings.ws.heartbeat_timeout_ms);
        ctx.run_interval(every, move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                act.close(ctx, protocol::CLOSE_HEARTBEAT_TIMEOUT, "heartbeat_timeout");
                return;
            }
            if act.tx.overflowed() {
                act.close(ctx, protocol::CLOSE_SLOW_CONSUMER, "slow_consumer");
                return;
            }
            ctx.ping(b"");
        });
    }

    /// Counts an incoming message; false when the per-second limit is exceeded.
    fn within_rate(&mut self) -> bool {
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            self.window_start = Instant::now();
            self.window_count = 0;
        }
        self.window_count += 1;
        self.window_count <= self.state.settings.ws.incoming_messages_per_second_max
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let op = match serde_json::from_str::<ClientOp>(text) {
            Ok(op) => op,
            Err(e) => {
                let id = protocol::id_of(text);
                let code = if serde_json::from_str::<Value>(text).is_err() {
                    "malformed"
                } else {
                    "unknown_op"
                };
                self.send(
                    ctx,
                    protocol::error(id, code, &format!("cannot read this frame: {e}")),
                );
                return;
            }
        };
        match op {
            ClientOp::Ping { id } => self.send(ctx, json!({"type": "pong", "id": id}).to_string()),
            ClientOp::Subscribe { id, topics } => self.subscribe(id, topics, ctx),
            ClientOp::Unsubscribe { id, topics } => {
                for t in &topics {
                    if let Some(Sub::Pending { buffer, .. }) = self.topics.remove(t) {
                        self.buffered -= buffer.len();
                    }
                    self.state.hub.detach(t, self.sub_id);
                }
                self.send(
                    ctx,
                    json!({"type": "unsubscribed", "id": id, "topics": topics}).to_string(),
                );
            }
            ClientOp::Auth { id, token } => self.auth(id, token, ctx),
            ClientOp::PlaceBet { id, body } => self.place_bet(id, body, ctx),
        }
    }

    fn subscribe(
        &mut self,
        id: Option<Value>,
        topics: Vec<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let max = self.state.settings.ws.subscriptions_per_connection_max;
        let loads_max = self.state.settings.ws.snapshot_loads_per_connection_max;
        for name in topics {
            let Some(topic) = Topic::parse(&name) else {
                self.send(
                    ctx,
                    protocol::error(id.clone(), "bad_topic", &format!("not a topic: {name}")),
                );
                continue;
            };
            if topic == Topic::Trading && !self.is_staff() {
                self.send(
                    ctx,
                    protocol::error(
                        id.clone(),
                        "forbidden",
                        "the trading topic is for staff: authenticate as a trader first",
                    ),
                );
                continue;
            }
            let name = topic.name();
            if !self.topics.contains_key(&name) && self.topics.len() >= max {
                self.send(
                    ctx,
                    protocol::error(
                        id.clone(),
                        "too_many_subscriptions",
                        "subscription limit reached",
                    ),
                );
                continue;
            }
            match self.topics.get(&name) {
                // Being loaded counts as subscribed: its snapshot answers.
                Some(Sub::Pending { .. }) => continue,
                _ if self.loads_in_flight() >= loads_max => {
                    self.send(
                        ctx,
                        protocol::error(
                            id.clone(),
                            "too_many_loads",
                            "too many snapshots loading on this connection; wait for them",
                        ),
                    );
                    continue;
                }
                _ => {}
            }
            // Attach first, then read: every delta after the snapshot's seq is buffered.
            let seq = self.state.hub.attach(&name, self.sub_id, self.tx.clone());
            if let Some(Sub::Pending { buffer, .. }) = self.topics.insert(
                name.clone(),
                Sub::Pending {
                    seq,
                    buffer: Vec::new(),
                },
            ) {
                self.buffered -= buffer.len();
            }
            let state = self.state.clone();
            let id = id.clone();
            let fut = async move { snapshot::shared(&state, &topic).await };
            ctx.spawn(
                fut.into_actor(self)
                    .map(move |result, act, ctx| act.snapshot_ready(id, name, seq, result, ctx)),
            );
        }
    }

    /// May this session's user read trading (the `trading` topic)?
    fn is_staff(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.may(crate::auth::RouteClass::TradingRead))
    }

    /// Leaves the staff-only topic when the session no longer belongs to staff.
    fn drop_staff_topics(&mut self) {
        if self.is_staff() {
            return;
        }
        if let Some(sub) = self.topics.remove(super::TRADING_TOPIC) {
            if let Sub::Pending { buffer, .. } = sub {
                self.buffered -= buffer.len();
            }
            self.state.hub.detach(super::TRADING_TOPIC, self.sub_id);
        }
    }

    /// Snapshots being loaded for this connection.
    fn loads_in_flight(&self) -> usize {
        self.topics
            .values()
            .filter(|s| matches!(s, Sub::Pending { .. }))
            .count()
    }

    fn snapshot_ready(
        &mut self,
        id: Option<Value>,
        name: String,
        seq: u64,
        result: snapshot::Snapshot,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        // A later subscribe or an unsubscribe replaced this one: its own answer will come.
        match self.topics.get(&name) {
            Some(Sub::Pending { seq: s, .. }) if *s == seq => {}
            _ => return,
        }
        let Some(Sub::Pending { buffer, .. }) = self.topics.remove(&name) else {
            return;
        };
        self.buffered -= buffer.len();
        match result {
            Ok(data) => {
                self.send(ctx, protocol::snapshot(id.as_ref(), &name, seq, &data));
                let mut buffer = buffer;
                buffer.retain(|m| m.seq > seq);
                self.deliver(&buffer, ctx);
                self.topics.insert(name, Sub::Live);
            }
            Err(e) => {
                self.state.hub.detach(&name, self.sub_id);
                let (code, msg) = match e {
                    SnapshotError::Unknown => ("unknown_topic", "no such event or sport"),
                    SnapshotError::Unavailable => ("unavailable", "live state unavailable; retry"),
                };
                self.send(ctx, protocol::error(id, code, msg));
            }
        }
    }

    /// One topic's messages, written back to back (one socket write for a run). The text is
    /// shared and was checked once by the hub: no copy, no check per subscriber.
    fn deliver(&mut self, messages: &[TopicMessage], ctx: &mut ws::WebsocketContext<Self>) {
        self.state
            .metrics
            .ws_messages_sent_total
            .inc_by(messages.len() as u64);
        for m in messages {
            ctx.text(m.text.clone());
        }
    }

    fn auth(&mut self, id: Option<Value>, token: String, ctx: &mut ws::WebsocketContext<Self>) {
        let state = self.state.clone();
        let fut =
            async move { crate::auth::authenticate(&state.sessions, &state.redis, &token).await };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(user) => {
                        let answer =
                            json!({"type": "authenticated", "id": id, "user_id": user.user_id});
                        act.open_private(user, ctx);
                        act.send(ctx, answer.to_string());
                    }
                    Err(e) => act.send(ctx, protocol::api_error(id, e)),
                }),
        );
    }

    /// Opens (or moves) the private channel to `user`, watched for revocation and expiry.
    fn open_private(&mut self, user: AuthUser, ctx: &mut ws::WebsocketContext<Self>) {
        self.stop_watching(ctx);
        if let Some(old) = &self.user {
            self.state
                .hub
                .detach(&super::user_topic(old.user_id), self.sub_id);
        }
        self.state.hub.attach(
            &super::user_topic(user.user_id),
            self.sub_id,
            self.tx.clone(),
        );
        self.token_hash = Some(crate::auth::session::token_hash(&user.token));
        let notices = self.state.sessions.notices();
        let stream = futures::stream::unfold(notices, |mut rx| async move {
            use tokio::sync::broadcast::error::RecvError;
            match rx.recv().await {
                Ok(n) => Some((SessionCheck(Some(n)), rx)),
                Err(RecvError::Lagged(_)) => Some((SessionCheck(None), rx)),
                Err(RecvError::Closed) => None,
            }
        });
        let watching = ctx.add_stream(stream);
        let left = (user.expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let expiry = ctx.run_later(left, |act, ctx| act.end_private("expired", ctx));
        self.watch = Some((watching, expiry));
        self.user = Some(user);
        self.drop_staff_topics();
    }

    fn stop_watching(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some((watching, expiry)) = self.watch.take() {
            ctx.cancel_future(watching);
            ctx.cancel_future(expiry);
        }
    }

    /// Ends the private channel (the socket stays for public topics); `place_bet` then
    /// answers `unauthorized` until a new `auth`.
    fn end_private(&mut self, reason: &'static str, ctx: &mut ws::WebsocketContext<Self>) {
        self.stop_watching(ctx);
        self.token_hash = None;
        let Some(user) = self.user.take() else { return };
        self.drop_staff_topics();
        self.state
            .hub
            .detach(&super::user_topic(user.user_id), self.sub_id);
        self.state
            .metrics
            .ws_sessions_closed_total
            .with_label_values(&[reason])
            .inc();
        self.send(
            ctx,
            json!({"type": "session_ended", "reason": reason}).to_string(),
        );
    }

    /// Checks the session's token again (cache, else Redis); ends the private channel when
    /// it is gone or cannot be verified (fail closed).
    fn recheck(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(token) = self.user.as_ref().map(|u| u.token.clone()) else {
            return;
        };
        let state = self.state.clone();
        let asked = token.clone();
        let fut =
            async move { crate::auth::authenticate(&state.sessions, &state.redis, &asked).await };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            // A newer auth replaced the session meanwhile: its own watch decides.
            if act.user.as_ref().map(|u| &u.token) != Some(&token) {
                return;
            }
            match result {
                Ok(user) => {
                    if let Some(current) = act.user.as_mut() {
                        current.role = user.role;
                    }
                    act.drop_staff_topics();
                }
                Err(AuthError::Invalid) => act.end_private("revoked", ctx),
                Err(AuthError::Unreachable) => act.end_private("unverifiable", ctx),
            }
        }));
    }
    fn place_bet(
        &mut self,
        id: Option<Value>,
        body: serde_json::Map<String, Value>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(user) = &self.user else {
            self.send(
                ctx,
                protocol::error(
                    id,
                    "unauthorized",
                    "place_bet needs a token (query or auth op)",
                ),
            );
            return;
        };
        // The same body and rules as `POST /api/v1/bets`.
        let raw = Value::Object(body.clone());
        let req: crate::bets::PlaceBetRequest = match serde_json::from_value(Value::Object(body)) {
            Ok(r) => r,
            Err(e) => {
                let err = crate::bets::PlaceError::Invalid(format!("invalid bet: {e}"));
                self.send(ctx, protocol::api_error(id, err));
                return;
            }
        };
        // The session is checked again first (the in-process cache, which revocations reach
        // at once): a bet never rides on a revoked or expired session.
        let (state, token) = (self.state.clone(), user.token.clone());
        let fut = async move {
            let user = crate::auth::authenticate(&state.sessions, &state.redis, &token).await?;
            // Several nodes: the bet is placed where the bettor's wallet is written.
            let cluster = state.registry.cluster();
            if let Ok(crate::cluster::Route::Remote { addr, .. }) =
                cluster.route_user(user.user_id).await
            {
                let answer =
                    crate::routes::forward::forward_bet(cluster, &addr, &token, &raw).await;
                return Ok(Placed::Forwarded(answer));
            }
            Ok(Placed::Here(Box::new(
                state
                    .bets
                    .place(crate::app::bets::Channel::WebSocket, user.user_id, req)
                    .await,
            )))
        };
        let answered = detached(fut);
        ctx.spawn(
            answered.into_actor(self).map(
                move |result: Result<_, AuthError>, act, ctx| match result {
                    Ok(Placed::Here(placed)) => match *placed {
                        Ok(bet) => {
                            // As over REST: 202 when the bet went to the trading desk.
                            let status = if bet.status == "referred" { 202 } else { 201 };
                            let answer = json!({"type": "bet_result", "id": id,
                                                "status": status, "bet": bet});
                            act.send(ctx, answer.to_string());
                        }
                        Err(refused) => act.send(ctx, protocol::api_error(id, refused)),
                    },
                    Ok(Placed::Forwarded(answer)) => {
                        act.send(ctx, protocol::forwarded_bet(id, answer))
                    }
                    Err(e) => {
                        act.send(ctx, protocol::api_error(id, e.clone()));
                        act.end_private(
                            if e == AuthError::Invalid {
                                "revoked"
                            } else {
                                "unverifiable"
                            },
                            ctx,
                        );
                    }
                },
            ),
        );
    }
}

/// Runs a bet on a task of its own, not in the session: a socket closed while the bet is in
/// flight (an in-play bet delay) must not drop it half-way with its holds taken. The
/// session only waits for the answer, if it is still there.
fn detached(
    bet: impl std::future::Future<Output = Result<Placed, AuthError>> + 'static,
) -> impl std::future::Future<Output = Result<Placed, AuthError>> {
    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
    actix::spawn(async move {
        let _ = answer_tx.send(bet.await);
    });
    async move {
        answer_rx.await.unwrap_or_else(|_| {
            Ok(Placed::Here(Box::new(Err(
                crate::bets::PlaceError::unavailable(
                    "bet outcome not known; retry with the same idempotency key",
                ),
            ))))
        })
    }
}

/// A `place_bet` placed here, or at the node holding the bettor's wallet (its HTTP answer).
enum Placed {
    Here(Box<Result<crate::bets::BetAnswer, crate::bets::PlaceError>>),
    Forwarded(Option<(u16, Value)>),
}

/// Revocation notices: those naming this session's token or user, or a lost channel,
/// make it check its token again.
impl StreamHandler<SessionCheck> for WsSession {
    fn handle(&mut self, check: SessionCheck, ctx: &mut Self::Context) {
        let Some(user) = &self.user else { return };
        let concerns = match &check.0 {
            None | Some(Notice::All) => true,
            Some(Notice::Token(hash)) => self.token_hash.as_deref() == Some(hash.as_str()),
            Some(Notice::User(u)) => *u == user.user_id,
            // Controls bind the bet path (the wallet shard), not the session.
            Some(Notice::Controls(_) | Notice::Bonus(_)) => false,
        };
        if concerns {
            self.recheck(ctx);
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(
            self.state
                .settings
                .ws
                .session_send_queue_messages_max
                .max(1),
        );
        self.state.metrics.ws_connections.inc();
        if let Some(user) = self.user.take() {
            self.open_private(user, ctx);
        }
        if let Some(rx) = self.rx.take() {
            ctx.add_stream(rx);
        }
        self.heartbeat(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.state.metrics.ws_connections.dec();
        for name in self.topics.keys() {
            self.state.hub.detach(name, self.sub_id);
        }
        if let Some(user) = &self.user {
            self.state
                .hub
                .detach(&super::user_topic(user.user_id), self.sub_id);
        }
    }
}

/// Topic messages from the hub, a topic's run at a time.
impl StreamHandler<Run> for WsSession {
    fn handle(&mut self, run: Run, ctx: &mut Self::Context) {
        if self.tx.overflowed() {
            // The hub found the queue full: messages were lost, so the client cannot trust
            // its state any more.
            self.close(ctx, protocol::CLOSE_SLOW_CONSUMER, "slow_consumer");
            return;
        }
        let Some(first) = run.first() else { return };
        let limit = self.state.settings.ws.session_send_queue_messages_max;
        match self.topics.get_mut(&*first.topic) {
            Some(Sub::Pending { buffer, .. }) => {
                if self.buffered + run.len() > limit {
                    self.close(ctx, protocol::CLOSE_SLOW_CONSUMER, "slow_consumer");
                    return;
                }
                buffer.extend(run.iter().cloned());
                self.buffered += run.len();
            }
            Some(Sub::Live) => self.deliver(&run, ctx),
            // The private topic, or a topic just unsubscribed.
            None if first.topic.starts_with("user:") => self.deliver(&run, ctx),
            None => {}
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        // The session holds a sender, so the queue never ends while it lives.
    }
}

/// Frames from the client.
impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        let msg = match msg {
            Ok(m) => m,
            Err(ws::ProtocolError::Overflow) => {
                return self.close(ctx, protocol::CLOSE_TOO_BIG, "frame_too_big")
            }
            Err(_) => return self.close(ctx, protocol::CLOSE_UNSUPPORTED_DATA, "protocol_error"),
        };
        match msg {
            ws::Message::Ping(p) => ctx.pong(&p),
            ws::Message::Pong(_) => {}
            ws::Message::Text(text) => {
                if !self.within_rate() {
                    return self.close(ctx, protocol::CLOSE_RATE_LIMITED, "rate_limited");
                }
                self.on_text(&text, ctx);
            }
            ws::Message::Binary(_) | ws::Message::Continuation(_) => {
                self.close(ctx, protocol::CLOSE_UNSUPPORTED_DATA, "binary_frame")
            }
            ws::Message::Close(_) => {
                ctx.close(Some(ws::CloseReason::from(ws::CloseCode::from(
                    protocol::CLOSE_NORMAL,
                ))));
                ctx.stop();
            }
            ws::Message::Nop => {}
        }
    }
}

/// Starts a session on an upgrade request.
pub fn start(
    state: web::Data<AppState>,
    slot: ConnectionSlot,
    user: Option<AuthUser>,
    req: &actix_web::HttpRequest,
    stream: actix_web::web::Payload,
) -> Result<actix_web::HttpResponse, actix_web::Error> {
    let frame_max = state.settings.ws.incoming_message_bytes_max;
    ws::WsResponseBuilder::new(WsSession::new(state, slot, user), req, stream)
        .frame_size(frame_max)
        .start()
}
