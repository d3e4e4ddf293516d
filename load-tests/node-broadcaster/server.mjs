// A minimal Node `ws` broadcaster: the second baseline of `winzo-load ws-compare`
// (issue 16), beside the Rust one in load-tests/src/bin/plain_broadcaster.rs. It speaks
// exactly what that one speaks, so the same clients and price moves can be pointed at it:
//
// - `GET /ws` upgrades. A client sends `{"op": "subscribe", "id", "topics": [..]}` and gets,
//   per topic, a snapshot-shaped answer `{"type": "snapshot", "topic", "id", "seq",
//   "data": {"markets": []}}`, then the topic's messages. `ping` gets `pong`; any other op
//   an `error`.
// - `POST /api/v1/trading/markets/<market id>/prices?event_id=<event id>` with the engine's
//   body `{"prices": [{"selection_id", "odds"}]}`: the engine's `odds` message (decimal,
//   American and fractional prices, converted as the engine converts them) is serialized
//   once into the envelope `{"type", "topic", "seq", "data"}`, and the same bytes are sent
//   to every subscriber of `event:<event id>`; the answer is `200 {"seq", "subscribers"}`.
// - A subscriber whose unsent data (`bufferedAmount`) reaches as many bytes as the queue
//   bound in messages would hold is dropped from its topics and closed with 4008
//   `slow_consumer`, as the engine and the Rust broadcaster do when their queue is full.
// - `GET /readyz` answers 200.
//
// Run: node server.mjs [port (18082)] [queue bound in messages (1024)]
// No state beyond the subscribers and a sequence number per topic; no database.
import http from 'node:http';
import { WebSocketServer } from 'ws';

const arg = (i, fallback) => {
  const n = Number.parseInt(process.argv[i] ?? '', 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
};
const port = arg(2, 18082);
const queueMessages = arg(3, 1024);

// Largest request body read.
const REQUEST_BYTES_MAX = 64 * 1024;
const PRICES_PATH = /^\/api\/v1\/trading\/markets\/(.*)\/prices$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// topic name -> { seq, subs: Set of sockets }
const topics = new Map();

function topicNamed(name) {
  let topic = topics.get(name);
  if (!topic) {
    topic = { seq: 0, subs: new Set() };
    topics.set(name, topic);
  }
  return topic;
}

// Serializes the envelope once and sends the same bytes to every subscriber; one whose
// backlog is full is closed instead. Answers the new seq and the subscribers reached.
function publish(name, type, data) {
  const topic = topicNamed(name);
  topic.seq += 1;
  const frame = Buffer.from(JSON.stringify({ type, topic: name, seq: topic.seq, data }));
  const limit = queueMessages * frame.length;
  for (const ws of topic.subs) {
    if (ws.bufferedAmount >= limit) {
      leaveAll(ws);
      ws.close(4008, 'slow_consumer');
    } else {
      ws.send(frame, { binary: false });
    }
  }
  return { seq: topic.seq, subscribers: topic.subs.size };
}

// The topics each socket is subscribed to, to drop it from all of them when it goes.
const subscriptions = new WeakMap();

function leaveAll(ws) {
  for (const name of subscriptions.get(ws) ?? []) topics.get(name)?.subs.delete(ws);
  subscriptions.delete(ws);
}

// The answers to one client message, worded as plain_broadcaster words them.
function answers(ws, text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return [{ code: 'malformed', type: 'error' }];
  }
  const isObject = typeof msg === 'object' && msg !== null && !Array.isArray(msg);
  const { op, id = null, topics: wanted } = isObject ? msg : {};
  if (op === 'subscribe') {
    if (!Array.isArray(wanted)) return [];
    const mine = subscriptions.get(ws) ?? new Set();
    subscriptions.set(ws, mine);
    return wanted
      .filter((name) => typeof name === 'string')
      .map((name) => {
        const topic = topicNamed(name);
        topic.subs.add(ws);
        mine.add(name);
        return { type: 'snapshot', topic: name, id, seq: topic.seq, data: { markets: [] } };
      });
  }
  if (op === 'ping') return [{ id, type: 'pong' }];
  return [{ code: 'unknown_op', id, type: 'error' }];
}

// Decimal odds as the engine accepts them: digits, at most 4 places, 1.0001 to
// 999999.9999. Answers the price in ten-thousandths.
function parseOdds(text) {
  const m = typeof text === 'string' && text.length <= 24 && /^(\d+)(?:\.(\d{1,4}))?$/.exec(text);
  if (!m) throw new Error(`odds: not decimal odds with at most 4 places: ${JSON.stringify(text)}`);
  const t = BigInt(m[1]) * 10000n + BigInt((m[2] ?? '').padEnd(4, '0'));
  if (t < 10001n || t > 9999999999n) throw new Error(`odds: out of range: ${text}`);
  return Number(t);
}

const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b));

// The three ways the engine shows a price given in ten-thousandths (src/domain/odds.rs):
// decimal with 4 places; American rounded half away from zero (+(d-1)*100 from 2.0 up,
// -100/(d-1) below); fractional as d-1 over 10,000, reduced.
function showOdds(t) {
  const profit = t - 10000;
  const decimal = `${Math.floor(t / 10000)}.${String(t % 10000).padStart(4, '0')}`;
  const american =
    t >= 20000
      ? `+${Math.floor((profit + 50) / 100)}`
      : `-${Math.floor((2_000_000 + profit) / (2 * profit))}`;
  const g = gcd(profit, 10000);
  return { american, fractional: `${profit / g}/${10000 / g}`, odds: decimal };
}

// The engine's `odds` data for a prices body, byte for byte as plain_broadcaster writes it
// (its serde_json sorts the keys).
function oddsData(event, market, body) {
  if (!UUID.test(event) || !UUID.test(market)) throw new Error('not a UUID');
  const { prices } = JSON.parse(body) ?? {};
  if (!Array.isArray(prices)) throw new Error('no prices');
  const selections = prices.map((p) => {
    const { american, fractional, odds } = showOdds(parseOdds(p?.odds ?? ''));
    return { american, fractional, id: p?.selection_id ?? null, odds };
  });
  return { event_id: event.toLowerCase(), market_id: market.toLowerCase(), selections };
}

function reply(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function route(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/readyz') {
    return reply(res, 200, { status: 'ready' });
  }
  if (req.method === 'GET' && url.pathname === '/ws') return reply(res, 400, {});
  const market = PRICES_PATH.exec(url.pathname)?.[1];
  const event = url.searchParams.get('event_id');
  if (req.method !== 'POST' || market === undefined || event === null) {
    return reply(res, 404, { error: { code: 'not_found' } });
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > REQUEST_BYTES_MAX) return req.destroy();
    chunks.push(chunk);
  }
  let data;
  try {
    data = oddsData(event, market, Buffer.concat(chunks).toString());
  } catch (e) {
    return reply(res, 400, { error: { code: 'validation_failed', message: e.message } });
  }
  reply(res, 200, publish(`event:${event}`, 'odds', data));
}

const server = http.createServer((req, res) => {
  route(req, res).catch(() => req.destroy());
});
// Upgrades to any other path are refused by `ws` itself.
const wss = new WebSocketServer({
  server,
  path: '/ws',
  perMessageDeflate: false,
  clientTracking: false,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    for (const answer of answers(ws, data.toString())) ws.send(JSON.stringify(answer));
  });
  ws.on('close', () => leaveAll(ws));
  // A socket error is followed by 'close'; nothing else to do.
  ws.on('error', () => {});
});
server.listen(port, '127.0.0.1', () => {
  console.error(`node ws broadcaster on 127.0.0.1:${port}, queue ${queueMessages} messages`);
});
