// The bettor's page (GET /): sports, live and upcoming events with scores and clocks,
// markets with odds in the chosen format, a bet slip, open and settled bets with cash-out,
// the balance, the account (deposit, limits, self-exclusion). Only the public REST API and
// the WebSocket (docs/websocket.md) are used.
import {
  h, $, fill, api, errorText, Live, Session, showOdds, money, cents, fromCents,
  statusText, isLive, kickoff, flash, say, newKey,
} from './common.js';

const session = new Session('bettor');
const FORMAT_KEY = 'winzo.oddsFormat';
const OPEN_STATUSES = new Set(['pending', 'accepted', 'referred']);

const state = {
  format: localStorage.getItem(FORMAT_KEY) || 'decimal',
  sports: [],
  sport: null,
  events: new Map(), // event_id -> {info, markets: [market ids]}
  markets: new Map(), // market_id -> {id, event_id, name, status, in_play, feed_suspended, selections: [ids]}
  selections: new Map(), // selection_id -> {id, name, market_id, event_id, price}
  slip: [], // {selection_id, odds} (the price the bettor accepted)
  mode: 'single',
  stake: '5.00',
  systemSize: 2,
  policy: 'none',
  slipMessage: null, // {kind, text, offer?}
  placing: false,
  wallet: null,
  bets: [],
  betsTab: 'open',
  cashOut: new Map(), // bet id -> offer
  cashOutSupported: true,
};

// ---------- the live socket ----------

const live = new Live({
  token: session.token,
  onSnapshot,
  onMessage,
  onState: (s) => {
    const el = $('#live-state');
    el.textContent = s === 'live' ? 'live' : s;
    el.dataset.state = s;
  },
});
// The socket, for the browser tests (dropping and restoring it) and for debugging.
window.winzoLive = live;

function onSnapshot(topic, data) {
  if (topic.startsWith('sport:')) {
    if (topic !== `sport:${state.sport}`) return;
    sportSnapshot(data);
  } else if (topic.startsWith('event:')) {
    eventSnapshot(data);
  }
}

/** Events shown per sport (each is a topic; `ws.subscriptions_per_connection_max` is 100). */
const EVENTS_SHOWN_MAX = 60;

function sportSnapshot(data) {
  const keep = new Set();
  for (const ev of data.events || []) {
    if (ev.status === 'finished' || ev.status === 'cancelled') continue;
    if (keep.size >= EVENTS_SHOWN_MAX) break;
    keep.add(ev.event_id);
    const known = state.events.get(ev.event_id);
    if (known) Object.assign(known.info, ev);
    else state.events.set(ev.event_id, { info: { ...ev }, markets: [] });
  }
  for (const id of [...state.events.keys()]) {
    if (!keep.has(id)) {
      state.events.delete(id);
      live.unsubscribe(`event:${id}`);
    }
  }
  renderEvents();
  for (const id of keep) live.subscribe(`event:${id}`);
}

function eventSnapshot(data) {
  const ev = state.events.get(data.event_id);
  if (!ev) return;
  Object.assign(ev.info, {
    status: data.status, period: data.period, clock: data.clock,
    home_score: data.home_score, away_score: data.away_score,
  });
  ev.markets = [];
  for (const m of data.markets || []) {
    ev.markets.push(m.id);
    state.markets.set(m.id, {
      id: m.id, event_id: data.event_id, name: m.name, status: m.status,
      in_play: m.in_play, feed_suspended: m.feed_suspended,
      selections: m.selections.map((s) => s.id),
    });
    for (const s of m.selections) {
      state.selections.set(s.id, {
        id: s.id, name: s.name, market_id: m.id, event_id: data.event_id,
        price: { odds: s.odds, american: s.american, fractional: s.fractional },
      });
    }
  }
  renderEvent(data.event_id);
  renderSlip();
}

function onMessage(msg) {
  const d = msg.data || {};
  switch (msg.type) {
    case 'odds': {
      for (const s of d.selections || []) {
        const sel = state.selections.get(s.id);
        if (!sel) continue;
        const before = Number(sel.price.odds);
        sel.price = { odds: s.odds, american: s.american, fractional: s.fractional };
        const after = Number(s.odds);
        for (const btn of document.querySelectorAll(`[data-sel="${s.id}"]`)) {
          $('.price', btn).textContent = showOdds(sel.price, state.format);
          if (after !== before) flash(btn, after - before);
        }
      }
      if (state.slip.some((l) => state.selections.get(l.selection_id)?.market_id === d.market_id)) renderSlip();
      break;
    }
    case 'market_status': {
      const m = state.markets.get(d.market_id);
      if (!m) return;
      Object.assign(m, { status: d.status, in_play: d.in_play, feed_suspended: d.feed_suspended });
      paintMarketStatus(m);
      renderSlip();
      break;
    }
    case 'score':
    case 'event_status': {
      const ev = state.events.get(d.event_id);
      if (!ev) {
        if (msg.topic === `sport:${state.sport}`) live.resubscribe(msg.topic);
        return;
      }
      Object.assign(ev.info, d);
      paintEventHead(d.event_id);
      if (msg.type === 'event_status' && (d.status === 'finished' || d.status === 'cancelled')) {
        live.resubscribe(`sport:${state.sport}`);
      }
      break;
    }
    case 'fixture':
      if (!state.events.has(d.event_id)) live.resubscribe(`sport:${state.sport}`);
      break;
    case 'balance':
      state.wallet = { ...(state.wallet || {}), ...d };
      renderAccountBar();
      break;
    case 'bet':
      loadBets();
      break;
    case 'session_ended':
    case 'auth_failed':
      logout(false, 'Your session ended; please log in again.');
      break;
    default:
      break;
  }
}

// ---------- events ----------

function marketOpen(m) {
  return m.status === 'open' && !m.feed_suspended;
}

function marketStatusText(m) {
  if (m.feed_suspended && m.status === 'open') return 'Suspended';
  return { open: '', suspended: 'Suspended', closed: 'Closed', settled: 'Settled', voided: 'Void' }[m.status] ?? m.status;
}

function clockText(info) {
  if (isLive(info.status)) {
    const bits = [info.period, info.clock].filter(Boolean).join(' ');
    return bits ? `${statusText(info.status)} · ${bits}` : statusText(info.status);
  }
  if (info.status === 'scheduled') return kickoff(info.start_time);
  return statusText(info.status);
}

function eventTitle(info) {
  return `${info.home} v ${info.away}`;
}

function renderEvents() {
  const root = $('#events');
  const all = [...state.events.values()];
  const liveEvents = all.filter((e) => isLive(e.info.status));
  const upcoming = all.filter((e) => !isLive(e.info.status));
  const section = (title, list, id) =>
    h('section', { class: 'event-group', 'aria-labelledby': id },
      h('h2', { id }, title, ' ', h('span', { class: 'count' }, `(${list.length})`)),
      list.length ? list.map((e) => h('article', { class: 'event', id: `ev-${e.info.event_id}`, dataset: { event: e.info.event_id } }))
        : h('p', { class: 'muted' }, 'Nothing here right now.'));
  fill(root, section('Live now', liveEvents, 'live-title'), section('Upcoming', upcoming, 'upcoming-title'));
  for (const e of all) renderEvent(e.info.event_id);
}

function renderEvent(id) {
  const ev = state.events.get(id);
  const el = document.getElementById(`ev-${id}`);
  if (!ev || !el) return;
  const head = h('header', { class: 'event-head' },
    h('h3', {}, eventTitle(ev.info)),
    h('span', { class: 'score', 'aria-label': 'score' }),
    h('span', { class: 'clock' }));
  const markets = ev.markets.map((mid) => {
    const m = state.markets.get(mid);
    return h('div', { class: 'market', dataset: { market: mid } },
      h('div', { class: 'market-head' },
        h('span', { class: 'market-name' }, m.name),
        h('span', { class: 'market-state', role: 'status' })),
      h('div', { class: 'prices' }, m.selections.map((sid) => priceButton(state.selections.get(sid)))));
  });
  fill(el, head, markets.length ? markets : h('p', { class: 'muted' }, 'Loading markets…'));
  paintEventHead(id);
  for (const mid of ev.markets) paintMarketStatus(state.markets.get(mid));
}

function priceButton(sel) {
  const inSlip = state.slip.some((l) => l.selection_id === sel.id);
  return h('button', {
    type: 'button', class: 'price-btn', dataset: { sel: sel.id },
    'aria-pressed': inSlip ? 'true' : 'false',
    onclick: () => toggleSlip(sel.id),
  }, h('span', { class: 'sel-name' }, sel.name), h('span', { class: 'price' }, showOdds(sel.price, state.format)));
}

function paintEventHead(id) {
  const ev = state.events.get(id);
  const el = document.getElementById(`ev-${id}`);
  if (!ev || !el) return;
  const i = ev.info;
  el.classList.toggle('is-live', isLive(i.status));
  const score = $('.score', el);
  if (score) score.textContent = isLive(i.status) || i.status === 'finished' ? `${i.home_score ?? 0} – ${i.away_score ?? 0}` : '';
  const clock = $('.clock', el);
  if (clock) clock.textContent = clockText(i);
}

function paintMarketStatus(m) {
  if (!m) return;
  for (const el of document.querySelectorAll(`[data-market="${m.id}"]`)) {
    const open = marketOpen(m);
    el.classList.toggle('suspended', !open);
    el.dataset.status = open ? 'open' : (m.feed_suspended ? 'suspended' : m.status);
    const st = $('.market-state', el);
    if (st) st.textContent = marketStatusText(m);
    for (const b of el.querySelectorAll('.price-btn')) b.disabled = !open;
  }
}

// ---------- sports ----------

async function loadSports() {
  const r = await api('GET', '/api/v1/sports');
  if (!r.ok) {
    fill($('#events'), h('p', { class: 'error' }, `Could not load sports: ${errorText(r.data)}`));
    return;
  }
  state.sports = r.data.sports || [];
  const wanted = new URLSearchParams(location.hash.slice(1)).get('sport');
  chooseSport(state.sports.some((s) => s.slug === wanted) ? wanted : state.sports.find((s) => s.slug === 'football')?.slug || state.sports[0]?.slug);
}

function renderSports() {
  fill($('#sports'), state.sports.map((s) => h('button', {
    type: 'button', class: 'sport-tab', 'aria-current': s.slug === state.sport ? 'true' : 'false',
    onclick: () => chooseSport(s.slug),
  }, s.display_name || s.name)));
}

function chooseSport(slug) {
  if (!slug) {
    fill($('#events'), h('p', { class: 'muted' }, 'No sports yet.'));
    return;
  }
  if (state.sport) live.unsubscribe(`sport:${state.sport}`);
  for (const id of state.events.keys()) live.unsubscribe(`event:${id}`);
  state.events.clear();
  state.sport = slug;
  history.replaceState(null, '', `#sport=${encodeURIComponent(slug)}`);
  renderSports();
  fill($('#events'), h('p', { class: 'muted' }, 'Loading events…'));
  live.subscribe(`sport:${slug}`);
}

// ---------- the bet slip ----------

function toggleSlip(selectionId) {
  const i = state.slip.findIndex((l) => l.selection_id === selectionId);
  if (i >= 0) state.slip.splice(i, 1);
  else {
    const sel = state.selections.get(selectionId);
    if (!sel) return;
    state.slip.push({ selection_id: selectionId, odds: sel.price.odds });
  }
  state.slipMessage = null;
  if (state.mode === 'parlay' && state.slip.length < 2) state.mode = 'single';
  for (const b of document.querySelectorAll(`[data-sel="${selectionId}"]`)) b.setAttribute('aria-pressed', i >= 0 ? 'false' : 'true');
  renderSlip();
}

/** Odds ×10^4 as a BigInt (decimal odds have 4 places). */
function odds4(s) {
  const [a, b = ''] = String(s).split('.');
  return BigInt(a) * 10000n + BigInt((b + '0000').slice(0, 4));
}

function combinations(n, k) {
  const out = [];
  const pick = (start, acc) => {
    if (acc.length === k) { out.push(acc.slice()); return; }
    for (let i = start; i < n; i++) { acc.push(i); pick(i + 1, acc); acc.pop(); }
  };
  pick(0, []);
  return out;
}

/** Lines, total stake and potential win (cents) of the slip, or null when incomplete. */
function slipFigures() {
  const unit = cents(state.stake);
  const n = state.slip.length;
  if (unit === null || unit <= 0 || n === 0) return null;
  const odds = state.slip.map((l) => odds4(l.odds));
  const lineWin = (idx) => {
    let v = BigInt(unit);
    for (const i of idx) v = (v * odds[i]) / 10000n;
    return v;
  };
  let lines;
  let win = 0n;
  if (state.mode === 'single') {
    lines = n;
    for (let i = 0; i < n; i++) win += lineWin([i]);
  } else if (state.mode === 'parlay') {
    if (n < 2) return null;
    lines = 1;
    win = lineWin([...Array(n).keys()]);
  } else {
    const k = Math.min(state.systemSize, n - 1);
    if (n < 3 || k < 2) return null;
    const combos = combinations(n, k);
    lines = combos.length;
    for (const c of combos) win += lineWin(c);
  }
  return { lines, total: unit * lines, win: Number(win) };
}

function legLabel(l) {
  const sel = state.selections.get(l.selection_id);
  if (!sel) return { title: 'Selection', sub: '' };
  const m = state.markets.get(sel.market_id);
  const ev = state.events.get(sel.event_id);
  return { title: sel.name, sub: `${m ? m.name : ''}${ev ? ` · ${eventTitle(ev.info)}` : ''}` };
}

function renderSlip() {
  const body = $('#slip-body');
  if (!state.slip.length) {
    fill(body, h('p', { class: 'muted' }, 'Pick a price to start a bet.'), slipMessage());
    return;
  }
  const legs = h('ul', { class: 'slip-legs' }, state.slip.map((l) => {
    const sel = state.selections.get(l.selection_id);
    const m = sel && state.markets.get(sel.market_id);
    const lbl = legLabel(l);
    const moved = sel && sel.price.odds !== l.odds;
    const closed = m && !marketOpen(m);
    return h('li', { class: `slip-leg${closed ? ' suspended' : ''}`, dataset: { leg: l.selection_id } },
      h('div', {}, h('strong', {}, lbl.title), h('div', { class: 'muted small' }, lbl.sub)),
      h('div', { class: 'leg-odds' },
        h('span', { class: 'price' }, showOdds(sel && !moved ? sel.price : { odds: l.odds }, state.format)),
        moved ? h('button', { type: 'button', class: 'link', onclick: () => { l.odds = sel.price.odds; renderSlip(); } },
          `Price now ${showOdds(sel.price, state.format)}: accept`) : null,
        closed ? h('span', { class: 'tag' }, marketStatusText(m)) : null),
      h('button', { type: 'button', class: 'icon', 'aria-label': `Remove ${lbl.title}`, onclick: () => toggleSlip(l.selection_id) }, '×'));
  }));
  const n = state.slip.length;
  const modes = [['single', 'Singles', n >= 1], ['parlay', 'Parlay', n >= 2], ['system', 'System', n >= 3]];
  if (!modes.find(([m, , ok]) => m === state.mode && ok)) state.mode = 'single';
  const modeTabs = h('div', { class: 'modes', role: 'radiogroup', 'aria-label': 'Bet type' }, modes.map(([m, label, ok]) =>
    h('label', { class: 'mode' }, h('input', {
      type: 'radio', name: 'mode', value: m, checked: state.mode === m, disabled: !ok,
      onchange: () => { state.mode = m; state.slipMessage = null; renderSlip(); },
    }), label)));
  const system = state.mode === 'system'
    ? h('label', {}, 'Lines of ', h('select', {
      id: 'system-size', onchange: (e) => { state.systemSize = Number(e.target.value); renderSlip(); },
    }, [...Array(n - 2).keys()].map((i) => {
      const k = i + 2;
      return h('option', { value: k, selected: k === Math.min(state.systemSize, n - 1) }, `${k} of ${n}`);
    })))
    : null;
  const f = slipFigures();
  const stake = h('label', {}, state.mode === 'single' ? 'Stake per single' : state.mode === 'system' ? 'Stake per line' : 'Stake',
    h('input', {
      id: 'stake', type: 'text', inputmode: 'decimal', autocomplete: 'off', value: state.stake,
      oninput: (e) => { state.stake = e.target.value; const fig = slipFigures(); $('#slip-figures').textContent = figuresText(fig); },
    }));
  const policy = h('label', {}, 'If the price changes',
    h('select', { id: 'odds-policy', onchange: (e) => { state.policy = e.target.value; } },
      [['none', 'Refuse (ask me)'], ['higher', 'Accept higher prices'], ['any', 'Accept any price']].map(([v, t]) =>
        h('option', { value: v, selected: state.policy === v }, t))));
  const place = h('button', {
    type: 'button', id: 'place-bet', class: 'primary', disabled: state.placing,
    onclick: placeBets,
  }, state.placing ? 'Placing…' : session.token ? 'Place bet' : 'Log in to bet');
  fill(body, legs, modeTabs, system, stake, policy,
    h('p', { id: 'slip-figures', class: 'figures', 'aria-live': 'polite' }, figuresText(f)),
    place, slipMessage(),
    h('button', { type: 'button', class: 'link', onclick: () => { state.slip = []; state.slipMessage = null; renderEvents(); renderSlip(); } }, 'Clear slip'));
}

function figuresText(f) {
  if (!f) return 'Enter a stake.';
  const lines = f.lines > 1 ? `${f.lines} ${state.mode === 'single' ? 'bets' : 'lines'} · ` : '';
  return `${lines}Total stake ${fromCents(f.total)} · Potential win ${fromCents(f.win)}`;
}

function slipMessage() {
  const m = state.slipMessage;
  if (!m) return null;
  return h('div', { class: `notice ${m.kind}`, role: m.kind === 'error' ? 'alert' : 'status', id: 'slip-message' },
    h('p', {}, m.text),
    m.offer ? h('button', { type: 'button', id: 'accept-price', onclick: m.offer.accept }, m.offer.label) : null);
}

const REFUSALS = {
  market_suspended: () => 'This market is suspended right now; try again when it reopens.',
  market_closed: () => 'This market is closed.',
  insufficient_funds: (d) => `Not enough funds${d.available ? `: ${money(d.available)} available` : ''}.`,
  stake_too_low: (d) => `The stake is below the minimum${d.min_stake ? ` of ${money(d.min_stake)}` : ''}.`,
  stake_too_high: (d) => `The stake is above the maximum${d.max_stake ? ` of ${money(d.max_stake)}` : ''}.`,
  liability_exceeded: () => 'The book cannot take this bet at this size; try a smaller stake.',
  limit_exceeded: (d) => `This bet would go over your ${d.period || ''} stake limit (set in your account).`.replace('  ', ' '),
  account_restricted: () => 'Your account cannot bet right now.',
  event_started: () => 'The event has started: its pre-match prices are closed.',
  duplicate_leg: () => 'Two selections from one market cannot be combined; use singles.',
  correlated_legs: () => 'These selections depend on each other and cannot be combined; use singles.',
  unknown_selection: () => 'A selection is no longer offered; remove it from the slip.',
  verification_required: () => 'Your account must be verified before betting.',
  unauthorized: () => 'Your session has ended; please log in again.',
};

function refusalText(err) {
  const f = REFUSALS[err.code];
  return f ? f(err.details || {}) : errorText(err);
}

async function placeOne(body) {
  const r = await api('POST', '/api/v1/bets', { body, token: session.token });
  if (r.status === 401) logout(false, 'Your session has ended; please log in again.');
  return r;
}

async function placeBets() {
  if (!session.token) { openAuth('login'); return; }
  const unit = cents(state.stake);
  if (unit === null || unit <= 0) {
    state.slipMessage = { kind: 'error', text: 'Enter a stake such as 5.00.' };
    renderSlip();
    return;
  }
  const stake = fromCents(unit);
  const legs = state.slip.map((l) => ({ selection_id: l.selection_id, odds: l.odds }));
  const bodies = state.mode === 'single'
    ? legs.map((leg) => ({ type: 'single', stake, legs: [leg] }))
    : [{ type: state.mode, stake, legs, ...(state.mode === 'system' ? { system_size: Math.min(state.systemSize, legs.length - 1) } : {}) }];
  state.placing = true;
  state.slipMessage = { kind: 'info', text: 'Placing… in-play bets wait for the market\'s bet delay.' };
  renderSlip();
  const accepted = [];
  let refusal = null;
  for (const b of bodies) {
    const r = await placeOne({ ...b, odds_change: state.policy, idempotency_key: newKey('slip') });
    if (r.ok) accepted.push(r.data);
    else { refusal = { err: r.data, body: b }; break; }
  }
  state.placing = false;
  if (accepted.length) {
    const placedIds = new Set(accepted.flatMap((b) => b.legs.map((l) => l.selection_id)));
    if (state.mode === 'single') state.slip = state.slip.filter((l) => !placedIds.has(l.selection_id));
    else if (!refusal) state.slip = [];
    renderEvents();
    loadBets();
    refreshWallet();
  }
  if (refusal) {
    const { err } = refusal;
    const text = (accepted.length ? `${accepted.length} bet(s) placed. ` : '') + refusalText(err);
    state.slipMessage = { kind: 'error', text };
    if (err.code === 'odds_changed') offerNewPrice(err, refusal.body);
  } else {
    const referred = accepted.some((b) => b.status === 'referred');
    state.slipMessage = referred
      ? { kind: 'ok', text: 'Bet referred to the trading desk: its decision shows in My bets.' }
      : { kind: 'ok', text: accepted.length > 1 ? `${accepted.length} bets placed.` : 'Bet placed.' };
  }
  renderSlip();
}

/** `odds_changed`: the engine's current price, offered to accept (and live prices beside it). */
function offerNewPrice(err, body) {
  const current = err.details?.current_odds;
  const legIds = new Set(body.legs.map((l) => l.selection_id));
  // The leg whose asked price differs from its current one (the page's live price, or the
  // engine's for a single).
  const changed = state.slip.filter((l) => legIds.has(l.selection_id)).find((l) => {
    const live = state.selections.get(l.selection_id)?.price.odds;
    return (body.legs.length === 1 && current) || (live && live !== l.odds) || (current && Number(live) === Number(current));
  }) || state.slip.find((l) => legIds.has(l.selection_id));
  if (!changed || !current) return;
  const price = { odds: current };
  const sel = state.selections.get(changed.selection_id);
  if (sel && Number(sel.price.odds) === Number(current)) Object.assign(price, sel.price);
  state.slipMessage.text = `The price of ${sel ? sel.name : 'a selection'} changed to ${showOdds(price, state.format)}.`;
  state.slipMessage.offer = {
    label: `Accept ${showOdds(price, state.format)} and place`,
    accept: () => {
      changed.odds = String(current);
      state.slipMessage = null;
      placeBets();
    },
  };
}

// ---------- account: login, balance, bets ----------

function renderAccountBar() {
  const bar = $('#account-bar');
  if (!session.token) {
    fill(bar,
      h('button', { type: 'button', onclick: () => openAuth('login') }, 'Log in'),
      h('button', { type: 'button', class: 'primary', onclick: () => openAuth('register') }, 'Join'));
    return;
  }
  const w = state.wallet;
  const bonus = w && w.bonus_balance && Number(w.bonus_balance) > 0
    ? h('span', { class: 'bonus', id: 'bonus-balance' }, `Bonus ${money(w.bonus_balance)}`) : null;
  fill(bar,
    h('span', { class: 'balance', id: 'balance', 'aria-live': 'polite' }, w ? money(w.balance, w.currency_code) : '…'),
    bonus,
    h('button', { type: 'button', onclick: openAccount }, session.user?.username || 'Account'),
    h('button', { type: 'button', class: 'link', onclick: () => logout(true) }, 'Log out'));
}

async function refreshWallet() {
  if (!session.token) return;
  const r = await api('GET', '/api/v1/wallet', { token: session.token });
  if (r.ok) state.wallet = r.data;
  else if (r.status === 401) return logout(false, 'Your session has ended; please log in again.');
  renderAccountBar();
}

async function loadBets() {
  if (!session.token) {
    fill($('#mybets-body'), h('p', { class: 'muted' }, 'Log in to see your bets.'));
    return;
  }
  const r = await api('GET', '/api/v1/bets?limit=50', { token: session.token });
  if (!r.ok) {
    fill($('#mybets-body'), h('p', { class: 'error' }, errorText(r.data)));
    return;
  }
  state.bets = r.data.bets || [];
  renderBets();
  loadCashOutOffers();
}

function betStatusText(b) {
  return {
    accepted: 'Open', pending: 'Pending', referred: 'Referred', settled_win: 'Won', settled_loss: 'Lost',
    settled_push: 'Push', voided: 'Void', cancelled: 'Cancelled', cashed_out: 'Cashed out', rejected: 'Rejected',
  }[b.status] || b.status;
}

function renderBets() {
  const open = state.bets.filter((b) => OPEN_STATUSES.has(b.status));
  const settled = state.bets.filter((b) => !OPEN_STATUSES.has(b.status));
  const list = state.betsTab === 'open' ? open : settled;
  const tab = (id, label, count) => h('button', {
    type: 'button', role: 'tab', id: `bets-tab-${id}`, 'aria-selected': state.betsTab === id ? 'true' : 'false',
    onclick: () => { state.betsTab = id; renderBets(); },
  }, `${label} (${count})`);
  fill($('#mybets-body'),
    h('div', { class: 'tabs', role: 'tablist' }, tab('open', 'Open', open.length), tab('settled', 'Settled', settled.length)),
    list.length ? h('ul', { class: 'bets', id: `bets-${state.betsTab}` }, list.map(betItem)) : h('p', { class: 'muted' }, 'No bets here.'));
}

function betItem(b) {
  const legs = (b.legs || []).map((l) => {
    const sel = state.selections.get(l.selection_id);
    const name = l.selection_name || sel?.name || 'Selection';
    const ev = l.event_name || (sel && state.events.get(sel.event_id) ? eventTitle(state.events.get(sel.event_id).info) : '');
    return h('li', {}, `${name} @ ${showOdds({ odds: l.odds }, 'decimal')}`, ev ? h('span', { class: 'muted small' }, ` · ${ev}`) : null);
  });
  const offer = state.cashOut.get(b.id);
  return h('li', { class: 'bet', dataset: { bet: b.id, status: b.status } },
    h('div', { class: 'bet-head' },
      h('strong', {}, b.type === 'system' ? `System ${b.metadata?.system_size ?? ''}/${(b.legs || []).length}` : b.type === 'parlay' ? `Parlay (${(b.legs || []).length})` : 'Single'),
      h('span', { class: `tag status-${b.status}` }, betStatusText(b))),
    h('ul', { class: 'legs' }, legs),
    h('div', { class: 'bet-figures' }, `Stake ${money(b.stake)} · Odds ${Number(b.total_odds).toFixed(2)} · To win ${money(b.potential_win)}`,
      b.cashed_out_amount && Number(b.cashed_out_amount) > 0 ? ` · Cashed out ${money(b.cashed_out_amount)}` : ''),
    referralLine(b),
    offer ? h('button', { type: 'button', class: 'cashout', onclick: () => cashOut(b, offer) }, `Cash out ${money(offer.amount)}`) : null);
}

// While a bet waits for the trading desk (or a counter-offer waits for the bettor), the
// list is read again every few seconds besides the private channel's `bet` messages, so a
// decision shows even if a message was missed (the desk's window is seconds long).
setInterval(() => {
  if (session.token && state.bets.some((b) => b.status === 'referred')) loadBets();
}, 3000);

/** A referred bet: waiting for the desk, or the desk's counter-offer to take or decline. */
function referralLine(b) {
  const ref = b.referral;
  if (!ref || (ref.status !== 'pending' && ref.status !== 'countered')) return null;
  if (ref.status === 'pending') {
    return h('div', { class: 'referral muted small', dataset: { referral: 'pending' } }, 'Waiting for the trading desk to decide.');
  }
  const terms = [`stake ${money(ref.counter_stake ?? b.stake)}`, `odds ${Number(ref.counter_odds ?? b.total_odds).toFixed(2)}`].join(' @ ');
  const answer = (accept) => async () => {
    const r = await api('POST', `/api/v1/bets/${b.id}/offer`, { token: session.token, body: { accept } });
    if (!r.ok) alertBox(`Counter-offer: ${errorText(r.data)}`);
    await loadBets();
    refreshWallet();
  };
  return h('div', { class: 'referral', dataset: { referral: 'countered' } },
    h('span', {}, `Counter-offer: ${terms}`),
    h('button', { type: 'button', class: 'offer-accept', onclick: answer(true) }, 'Take it'),
    h('button', { type: 'button', class: 'offer-decline', onclick: answer(false) }, 'Decline'));
}

/** Cash-out offers of open bets (API.md "Cash-out"); no offer, or no endpoint, no button. */
async function loadCashOutOffers() {
  if (!state.cashOutSupported || !session.token) return;
  const open = state.bets.filter((b) => b.status === 'accepted').slice(0, 10);
  state.cashOut.clear();
  for (const b of open) {
    const r = await api('GET', `/api/v1/bets/${b.id}/cash-out`, { token: session.token });
    if (r.ok && r.data?.amount) state.cashOut.set(b.id, r.data);
    else if (r.status === 404 && r.data?.code === 'not_found' && /no route/.test(r.data?.message || '')) {
      state.cashOutSupported = false; // this engine has no cash-out yet
      break;
    }
  }
  if (state.cashOut.size) renderBets();
}

async function cashOut(bet, offer) {
  const r = await api('POST', `/api/v1/bets/${bet.id}/cash-out`, {
    token: session.token,
    body: { quote_id: offer.quote_id, idempotency_key: newKey('cashout') },
  });
  if (r.ok) say($('#live-state'), 'Cashed out', 'ok');
  else alertBox(`Cash-out refused: ${errorText(r.data)}`);
  await loadBets();
  refreshWallet();
}

function alertBox(text) {
  state.slipMessage = { kind: 'error', text };
  renderSlip();
}

// ---------- login and registration ----------

function openAuth(mode) {
  const dlg = $('#auth-dialog');
  $('#auth-title').textContent = mode === 'login' ? 'Log in' : 'Create an account';
  const msg = h('p', { class: 'notice', role: 'alert', hidden: true });
  const field = (label, name, type = 'text', extra = {}) =>
    h('label', {}, label, h('input', { name, type, required: true, ...extra }));
  const form = mode === 'login'
    ? h('form', { id: 'login-form' },
      field('Username or email', 'login', 'text', { autocomplete: 'username' }),
      field('Password', 'password', 'password', { autocomplete: 'current-password' }))
    : h('form', { id: 'register-form' },
      field('Username', 'username', 'text', { autocomplete: 'username', minlength: 3 }),
      field('Email', 'email', 'email', { autocomplete: 'email' }),
      field('Password', 'password', 'password', { autocomplete: 'new-password', minlength: 10 }),
      field('Date of birth', 'date_of_birth', 'date'));
  form.append(msg,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, mode === 'login' ? 'Log in' : 'Create account'),
      h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'),
      h('button', { type: 'button', class: 'link', onclick: () => openAuth(mode === 'login' ? 'register' : 'login') },
        mode === 'login' ? 'New here? Create an account' : 'Have an account? Log in')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    msg.hidden = true;
    if (mode === 'register') {
      const r = await api('POST', '/api/v1/auth/register', { body: data });
      if (!r.ok) { msg.hidden = false; msg.textContent = errorText(r.data); return; }
    }
    const r = await api('POST', '/api/v1/auth/login', {
      body: { login: mode === 'login' ? data.login : data.username, password: data.password },
    });
    if (!r.ok) { msg.hidden = false; msg.textContent = errorText(r.data); return; }
    session.set(r.data.token, r.data.user);
    dlg.close();
    afterLogin();
  });
  fill($('#auth-body'), form);
  if (!dlg.open) dlg.showModal();
  $('input', form).focus();
}

function afterLogin() {
  live.authenticate(session.token);
  renderAccountBar();
  refreshWallet();
  loadBets();
  renderSlip();
}

async function logout(callServer, why) {
  if (callServer && session.token) await api('POST', '/api/v1/auth/logout', { token: session.token });
  session.clear();
  state.wallet = null;
  state.bets = [];
  live.authenticate(null);
  renderAccountBar();
  loadBets();
  if (why) {
    state.slipMessage = { kind: 'error', text: why };
  }
  renderSlip();
}

// ---------- account: deposit, limits, self-exclusion ----------

async function openAccount() {
  const dlg = $('#account-dialog');
  const status = h('p', { class: 'notice', role: 'status', id: 'account-status' });
  const depositForm = h('form', { id: 'deposit-form' },
    h('h3', {}, 'Deposit'),
    h('label', {}, 'Amount', h('input', { name: 'amount', inputmode: 'decimal', required: true, value: '20.00' })),
    h('button', { type: 'submit', class: 'primary' }, 'Deposit'),
    h('p', { class: 'muted small' }, 'Payments go through the sandbox processor.'));
  depositForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const c = cents(new FormData(depositForm).get('amount'));
    if (c === null || c <= 0) { say(status, 'Enter an amount such as 20.00.', 'error'); return; }
    const r = await api('POST', '/api/v1/wallet/deposits', {
      token: session.token, body: { amount: fromCents(c), idempotency_key: newKey('deposit') },
    });
    if (r.ok) say(status, `Deposit ${r.data.status}: ${money(r.data.amount, r.data.currency_code)}.`, 'ok');
    else say(status, `Deposit refused: ${errorText(r.data)}`, 'error');
    refreshWallet();
  });

  const prefs = await api('GET', '/api/v1/me/preferences', { token: session.token });
  const limits = prefs.ok ? prefs.data.betting_limits || {} : {};
  const limitsForm = h('form', { id: 'limits-form' },
    h('h3', {}, 'Stake limits'),
    ['daily', 'weekly', 'monthly'].map((p) => h('label', {}, `${p[0].toUpperCase()}${p.slice(1)} limit`,
      h('input', { name: p, inputmode: 'decimal', value: limits[p] ?? '' }))),
    limits.pending && Object.keys(limits.pending).length
      ? h('p', { class: 'muted small' }, `Pending increases: ${JSON.stringify(limits.pending)}`) : null,
    h('button', { type: 'submit' }, 'Save limits'),
    h('p', { class: 'muted small' }, 'Lower limits apply at once; higher ones after a cooling-off period.'));
  limitsForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(limitsForm));
    const body = {};
    for (const p of ['daily', 'weekly', 'monthly']) if (data[p]) body[p] = data[p];
    const r = await api('PATCH', '/api/v1/me/preferences', { token: session.token, body: { betting_limits: body } });
    say(status, r.ok ? 'Limits saved.' : `Limits refused: ${errorText(r.data)}`, r.ok ? 'ok' : 'error');
  });

  const confirmBox = h('div', { hidden: true },
    h('p', { class: 'error' }, 'You will be logged out and unable to bet or deposit until the period ends. This cannot be undone.'),
    h('button', { type: 'button', class: 'danger', id: 'confirm-exclusion' }, 'Yes, exclude me'));
  const exclusionForm = h('form', { id: 'exclusion-form' },
    h('h3', {}, 'Take a break'),
    h('label', {}, 'Self-exclude for (days)', h('input', { name: 'days', type: 'number', min: 1, value: 30, required: true })),
    h('button', { type: 'submit', class: 'danger' }, 'Self-exclude…'),
    confirmBox);
  exclusionForm.addEventListener('submit', (e) => {
    e.preventDefault();
    confirmBox.hidden = false;
    $('#confirm-exclusion').focus();
  });
  confirmBox.querySelector('button').addEventListener('click', async () => {
    const days = Number(new FormData(exclusionForm).get('days'));
    const r = await api('POST', '/api/v1/me/self-exclusion', { token: session.token, body: { days } });
    if (r.ok) {
      dlg.close();
      logout(false, `You are self-excluded for ${days} days.`);
    } else say(status, `Self-exclusion refused: ${errorText(r.data)}`, 'error');
  });

  fill($('#account-body'), status, depositForm, limitsForm, exclusionForm,
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => dlg.close() }, 'Close')));
  if (!dlg.open) dlg.showModal();
}

// ---------- start ----------

const formatSelect = $('#odds-format');
formatSelect.value = state.format;
formatSelect.addEventListener('change', () => {
  state.format = formatSelect.value;
  localStorage.setItem(FORMAT_KEY, state.format);
  renderEvents();
  renderSlip();
  renderBets();
});

renderAccountBar();
renderSlip();
loadSports();
if (session.token) {
  refreshWallet();
  loadBets();
}
