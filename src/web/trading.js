// The trading console (GET /trading): the event tree with live status, score and clock;
// per event every market with prices, status and liability; the trader's actions; the
// staff-only bet ticker (`trading` topic); referrals; customer limits. Only the public REST
// API and the WebSocket (docs/websocket.md) are used. Nothing is optimistic: the page
// changes when the engine's topic says so, and every action answers in the status line.
import {
  h, $, fill, api, errorText, Live, Session, money, statusText, isLive, kickoff, margin,
  say, newKey,
} from './common.js';

const session = new Session('trader');
const STAFF = new Set(['support', 'moderator', 'admin']);
const TICKER_MAX = 200;
const EVENT_STATUSES = ['scheduled', 'live', 'halftime', 'finished', 'postponed', 'cancelled', 'suspended'];

const state = {
  sports: [],
  events: new Map(), // event_id -> {id, sport, league_id, league_name, home, away, start_time, status, period, clock, home_score, away_score}
  selected: null,
  markets: new Map(), // market_id -> market of the selected event (with selections)
  liability: new Map(), // market_id -> liability view
  ticker: [],
  referralsAvailable: true,
};

const status = $('#status');
function ok(text) { say(status, text, 'ok'); }
function fail(text, err) { say(status, `${text}: ${errorText(err)}`, 'error'); }

const live = new Live({ token: null, onSnapshot, onMessage, onState: (s) => {
  const el = $('#live-state');
  el.textContent = s;
  el.dataset.state = s;
} });
window.winzoLive = live;

// ---------- log in ----------

function showLogin(message) {
  $('#login').hidden = false;
  $('#console').hidden = true;
  const err = $('#login-error');
  err.hidden = !message;
  err.textContent = message || '';
  fill($('#account-bar'));
}

$('#login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const data = Object.fromEntries(new FormData(e.target));
  const r = await api('POST', '/api/v1/auth/login', { body: data });
  if (!r.ok) { showLogin(errorText(r.data)); return; }
  if (!STAFF.has(r.data.user.role)) {
    await api('POST', '/api/v1/auth/logout', { token: r.data.token });
    showLogin('This console is for trading staff (support, moderator or admin).');
    return;
  }
  session.set(r.data.token, r.data.user);
  start();
});

async function logout() {
  if (session.token) await api('POST', '/api/v1/auth/logout', { token: session.token });
  session.clear();
  live.authenticate(null);
  for (const t of [...live.topics]) live.unsubscribe(t);
  showLogin();
}

function start() {
  $('#login').hidden = true;
  $('#console').hidden = false;
  fill($('#account-bar'),
    h('span', {}, `${session.user.username} (${session.user.role})`),
    h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'));
  live.authenticate(session.token);
  live.subscribe('trading');
  loadTree();
  loadReferrals();
}

// ---------- the socket ----------

function onSnapshot(topic, data) {
  if (topic.startsWith('sport:')) {
    const slug = topic.slice(6);
    let unknown = false;
    for (const ev of data.events || []) {
      const known = state.events.get(ev.event_id);
      if (known) Object.assign(known, pickLive(ev));
      else if (ev.status !== 'finished' && ev.status !== 'cancelled') unknown = true;
    }
    if (unknown) loadSportEvents(slug);
    renderTree();
  } else if (topic.startsWith('event:')) {
    const id = topic.slice(6);
    if (id !== state.selected) return;
    const ev = state.events.get(id);
    if (ev) Object.assign(ev, pickLive(data));
    state.markets.clear();
    for (const m of data.markets || []) state.markets.set(m.id, m);
    renderEvent();
    renderTree();
    for (const m of state.markets.values()) loadLiability(m.id);
  } else if (topic === 'trading') {
    // The ticker has no history: its snapshot is empty and bets follow.
  }
}

function pickLive(ev) {
  const out = {};
  for (const k of ['status', 'period', 'clock', 'home_score', 'away_score']) if (ev[k] !== undefined) out[k] = ev[k];
  return out;
}

function onMessage(msg) {
  const d = msg.data || {};
  switch (msg.type) {
    case 'odds': {
      const m = state.markets.get(d.market_id);
      if (!m || msg.topic !== `event:${state.selected}`) return;
      for (const s of d.selections || []) {
        const sel = m.selections.find((x) => x.id === s.id);
        if (sel) Object.assign(sel, s);
      }
      renderMarket(m.id);
      break;
    }
    case 'market_status': {
      const m = state.markets.get(d.market_id);
      if (!m || msg.topic !== `event:${state.selected}`) return;
      Object.assign(m, { status: d.status, in_play: d.in_play, feed_suspended: d.feed_suspended });
      renderMarket(m.id);
      break;
    }
    case 'score':
    case 'event_status': {
      const ev = state.events.get(d.event_id);
      if (!ev) return;
      Object.assign(ev, pickLive(d));
      paintTreeEvent(d.event_id);
      if (d.event_id === state.selected) paintEventHead();
      break;
    }
    case 'fixture':
      if (!state.events.has(d.event_id)) loadTree();
      break;
    case 'bet':
      if (msg.topic === 'trading') addTicker(d);
      break;
    case 'referral':
      if (msg.topic === 'trading') loadReferrals();
      break;
    case 'session_ended':
    case 'auth_failed':
      session.clear();
      showLogin('Your session ended; please log in again.');
      break;
    case 'error':
      if (msg.code === 'forbidden') fail('The bet ticker is refused', msg);
      break;
    default:
      break;
  }
}

// ---------- the tree ----------

async function loadTree() {
  const r = await api('GET', '/api/v1/sports');
  if (!r.ok) { fail('Sports could not be loaded', r.data); return; }
  state.sports = r.data.sports || [];
  await Promise.all(state.sports.map((s) => loadSportEvents(s.slug)));
  for (const s of state.sports) live.subscribe(`sport:${s.slug}`);
}

async function loadSportEvents(slug) {
  const r = await api('GET', `/api/v1/sports/${encodeURIComponent(slug)}/events?limit=100&status=scheduled,live,halftime,suspended,postponed`);
  if (!r.ok) { fail(`Events of ${slug} could not be loaded`, r.data); return; }
  for (const e of r.data.events || []) {
    const known = state.events.get(e.id) || {};
    state.events.set(e.id, {
      ...known,
      id: e.id, sport: slug, league_id: e.league_id, league_name: e.league_name || 'No league',
      home: e.home_team_name, away: e.away_team_name, start_time: e.start_time,
      status: known.status || e.status,
    });
  }
  renderTree();
}

function evStatusLine(ev) {
  const bits = [statusText(ev.status)];
  if (isLive(ev.status) || ev.status === 'finished') bits.push(`${ev.home_score ?? 0}–${ev.away_score ?? 0}`);
  if (ev.period || ev.clock) bits.push([ev.period, ev.clock].filter(Boolean).join(' '));
  if (ev.status === 'scheduled') bits.push(kickoff(ev.start_time));
  return bits.join(' · ');
}

let treeShape = '';
function renderTree() {
  const tree = $('#tree');
  // Rebuilt only when events come or go (a rebuilt button would be lost under a pointer);
  // statuses and the current event are painted in place.
  const shape = JSON.stringify([state.sports.map((s) => s.slug),
    [...state.events.values()].map((e) => [e.id, e.sport, e.league_name, e.home, e.away])]);
  if (shape === treeShape) {
    for (const id of state.events.keys()) paintTreeEvent(id);
    for (const b of tree.querySelectorAll('[data-tevent]')) b.setAttribute('aria-current', b.dataset.tevent === state.selected ? 'true' : 'false');
    return;
  }
  treeShape = shape;
  const sports = state.sports.map((s) => {
    const evs = [...state.events.values()].filter((e) => e.sport === s.slug);
    const leagues = new Map();
    for (const e of evs) {
      if (!leagues.has(e.league_name)) leagues.set(e.league_name, []);
      leagues.get(e.league_name).push(e);
    }
    return h('li', {},
      h('h3', {}, s.display_name || s.name),
      h('ul', {}, [...leagues.entries()].map(([league, list]) => h('li', {},
        h('div', { class: 'league' }, league),
        h('ul', {}, list.map((e) => h('li', {}, h('button', {
          type: 'button', class: 'event-link', dataset: { tevent: e.id },
          'aria-current': e.id === state.selected ? 'true' : 'false',
          onclick: () => selectEvent(e.id),
        }, h('span', {}, `${e.home} v ${e.away}`), h('span', { class: 'ev-status' }, evStatusLine(e))))))))));
  });
  fill(tree, state.sports.length ? h('ul', {}, sports) : h('p', { class: 'muted' }, 'No sports yet.'));
}

function paintTreeEvent(id) {
  const ev = state.events.get(id);
  const el = document.querySelector(`[data-tevent="${id}"] .ev-status`);
  if (ev && el) el.textContent = evStatusLine(ev);
}

// ---------- the selected event ----------

function selectEvent(id) {
  if (state.selected) live.unsubscribe(`event:${state.selected}`);
  state.selected = id;
  state.markets.clear();
  state.liability.clear();
  renderTree();
  fill($('#event-body'), h('p', { class: 'muted' }, 'Loading markets…'));
  live.subscribe(`event:${id}`);
  renderTicker();
}

function paintEventHead() {
  const ev = state.events.get(state.selected);
  if (!ev) return;
  $('#event-title').textContent = `${ev.home} v ${ev.away}`;
  const line = $('#event-line');
  if (line) line.textContent = evStatusLine(ev);
}

async function act(label, method, path, body) {
  say(status, `${label}…`, 'info');
  const r = await api(method, path, { token: session.token, body });
  if (r.ok) ok(`${label}: done.`);
  else {
    if (r.status === 401) { session.clear(); showLogin('Your session ended; please log in again.'); }
    fail(`${label} refused`, r.data);
  }
  return r;
}

function renderEvent() {
  const ev = state.events.get(state.selected);
  if (!ev) return;
  const statusSelect = h('select', { id: 'event-status-select', 'aria-label': 'New event status' },
    EVENT_STATUSES.map((s) => h('option', { value: s, selected: s === ev.status }, statusText(s))));
  const base = `/api/v1/trading/events/${ev.id}`;
  fill($('#event-body'),
    h('p', { id: 'event-line', class: 'muted' }),
    h('div', { class: 'toolbar' },
      h('button', { type: 'button', id: 'event-suspend', onclick: () => act('Suspend event', 'POST', `${base}/suspend`) }, 'Suspend event'),
      h('button', { type: 'button', id: 'event-resume', onclick: () => act('Resume event', 'POST', `${base}/resume`) }, 'Resume event'),
      h('label', { class: 'inline' }, 'Status', statusSelect),
      h('button', { type: 'button', onclick: () => act(`Set status ${statusSelect.value}`, 'POST', `${base}/status`, { status: statusSelect.value }) }, 'Set status')),
    h('div', { id: 'markets' }, [...state.markets.values()].map((m) => h('section', {
      class: 'tmarket', id: `tm-${m.id}`, dataset: { market: m.id }, 'aria-label': m.name,
    }))));
  paintEventHead();
  for (const m of state.markets.values()) renderMarket(m.id);
}

function marketStatusLabel(m) {
  if (m.status === 'open' && m.feed_suspended) return { key: 'suspended', text: 'Suspended (feed bet stop)' };
  if (m.status === 'suspended') return { key: 'suspended', text: m.feed_suspended ? 'Suspended (trader and feed)' : 'Suspended (trader)' };
  return { key: m.status, text: statusText(m.status) || m.status };
}

function renderMarket(id) {
  const m = state.markets.get(id);
  const el = document.getElementById(`tm-${id}`);
  if (!m || !el) return;
  // Built once per snapshot; later changes are painted in place, so what the trader is
  // typing is never lost to a price, status or liability update.
  if (el.dataset.built) { paintMarketLive(m, el); return; }
  const base = `/api/v1/trading/markets/${m.id}`;
  const rows = m.selections.map((s) => h('tr', { dataset: { sel: s.id } },
      h('th', { scope: 'row' }, s.name),
      h('td', { class: 'num live-odds' }, Number(s.odds).toFixed(2)),
      h('td', {}, h('input', {
        class: 'price-input', inputmode: 'decimal', 'aria-label': `New price for ${s.name}`,
        value: s.odds, dataset: { price: s.id, base: s.odds }, oninput: () => paintMargin(m, el),
      })),
      h('td', { class: 'num l-stake' }, '–'),
      h('td', { class: 'num l-liab' }, '–'),
      h('td', {}, h('select', { 'aria-label': `Result of ${s.name}`, dataset: { result: s.id } },
        ['win', 'loss', 'push', 'void'].map((r) => h('option', { value: r, selected: r === 'loss' }, r))))));
  const confirmArea = h('div', { class: 'confirm-area' });
  fill(el,
    h('div', { class: 'tmarket-head' },
      h('h3', {}, m.name),
      h('span', { class: 'mstatus' }),
      h('span', { class: 'tag in-play', hidden: !m.in_play }, 'in play')),
    h('div', { class: 'toolbar' },
      h('button', { type: 'button', class: 'm-suspend', onclick: () => act(`Suspend ${m.name}`, 'POST', `${base}/suspend`) }, 'Suspend'),
      h('button', { type: 'button', class: 'm-resume', onclick: () => act(`Resume ${m.name}`, 'POST', `${base}/resume`) }, 'Resume'),
      h('button', { type: 'button', class: 'm-close', onclick: () => confirmThen(confirmArea, `Close ${m.name}? No more bets will be taken.`, () => act(`Close ${m.name}`, 'POST', `${base}/close`)) }, 'Close')),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {},
        h('th', {}, 'Selection'), h('th', { class: 'num' }, 'Price'), h('th', {}, 'New price'),
        h('th', { class: 'num' }, 'Stake'), h('th', { class: 'num' }, 'Liability'), h('th', {}, 'Result'))),
      h('tbody', {}, rows))),
    h('div', { class: 'toolbar' },
      h('span', { class: 'margin', 'aria-live': 'polite' }),
      h('button', { type: 'button', class: 'm-move', onclick: () => movePrices(m, el) }, 'Move prices')),
    h('p', { class: 'small muted liab-total' }),
    h('div', { class: 'toolbar' },
      h('button', { type: 'button', class: 'm-settle', onclick: () => settle(m, el, confirmArea, 'settle') }, 'Settle…'),
      h('button', { type: 'button', class: 'm-resettle', onclick: () => settle(m, el, confirmArea, 'resettle') }, 'Resettle…'),
      h('input', { class: 'void-reason', 'aria-label': `Reason to void ${m.name}`, placeholder: 'void reason' }),
      h('button', { type: 'button', class: 'm-void', onclick: () => {
        const reason = $('.void-reason', el).value.trim();
        if (!reason) { say(status, 'A void needs a reason.', 'error'); return; }
        confirmThen(confirmArea, `Void ${m.name} (“${reason}”)? Every bet on it is refunded.`, () => act(`Void ${m.name}`, 'POST', `${base}/void`, { reason }));
      } }, 'Void…')),
    confirmArea);
  el.dataset.built = '1';
  paintMarketLive(m, el);
}

/**
 * Paints the engine's state of a market: prices (an input the trader has not edited follows
 * the live price), status, liability. Inputs being edited are left alone.
 */
function paintMarketLive(m, el) {
  for (const s of m.selections) {
    const row = el.querySelector(`tr[data-sel="${s.id}"]`);
    if (!row) continue;
    $('.live-odds', row).textContent = Number(s.odds).toFixed(2);
    const input = $('.price-input', row);
    if (input.value === input.dataset.base && document.activeElement !== input) input.value = s.odds;
    input.dataset.base = s.odds;
  }
  const st = marketStatusLabel(m);
  const badge = $('.mstatus', el);
  badge.textContent = st.text;
  badge.dataset.status = st.key;
  $('.in-play', el).hidden = !m.in_play;
  el.classList.toggle('suspended', st.key !== 'open');
  const liab = state.liability.get(m.id);
  if (liab) {
    for (const l of liab.selections || []) {
      const row = el.querySelector(`tr[data-sel="${l.selection_id}"]`);
      if (!row) continue;
      $('.l-stake', row).textContent = money(l.stake);
      $('.l-liab', row).textContent = money(l.liability);
    }
    $('.liab-total', el).textContent = `Market${liab.currency_code ? ` (${liab.currency_code})` : ''}: stake ${money(liab.total_stake)} · worst case ${money(liab.max_liability)} (limit ${money(liab.max_liability_market)})`;
  }
  paintMargin(m, el);
}

function paintMargin(m, el) {
  const now = margin(m.selections.map((s) => s.odds));
  const next = margin(m.selections.map((s) => el.querySelector(`[data-price="${s.id}"]`)?.value));
  const fmt = (v) => (v === null || !Number.isFinite(v) ? '–' : `${v.toFixed(2)}%`);
  $('.margin', el).textContent = `Margin ${fmt(now)} → ${fmt(next)}`;
}

async function movePrices(m, el) {
  const prices = [];
  for (const s of m.selections) {
    const v = el.querySelector(`[data-price="${s.id}"]`).value.trim();
    if (v && Number(v) !== Number(s.odds)) prices.push({ selection_id: s.id, odds: v });
  }
  if (!prices.length) { say(status, 'No price changed.', 'error'); return; }
  const r = await act(`Move prices of ${m.name}`, 'POST', `/api/v1/trading/markets/${m.id}/prices`, { prices });
  if (r.ok) {
    // The inputs follow the live prices again (the engine's `odds` message paints them).
    for (const p of prices) {
      const input = el.querySelector(`[data-price="${p.selection_id}"]`);
      if (input) input.dataset.base = input.value;
    }
  }
}

function confirmThen(area, question, action) {
  const yes = h('button', { type: 'button', class: 'danger confirm-yes' }, 'Confirm');
  const no = h('button', { type: 'button' }, 'Cancel');
  fill(area, h('div', { class: 'confirm', role: 'alertdialog', 'aria-label': 'Confirm' }, h('p', {}, question), h('div', { class: 'actions' }, yes, no)));
  yes.addEventListener('click', async () => { fill(area); await action(); });
  no.addEventListener('click', () => fill(area));
  yes.focus();
}

function settle(m, el, area, kind) {
  const results = m.selections.map((s) => ({ selection_id: s.id, result: el.querySelector(`[data-result="${s.id}"]`).value }));
  const text = results.map((r) => `${m.selections.find((s) => s.id === r.selection_id).name}: ${r.result}`).join(', ');
  confirmThen(area, `${kind === 'settle' ? 'Settle' : 'Resettle'} ${m.name} with ${text}?`,
    () => act(`${kind === 'settle' ? 'Settle' : 'Resettle'} ${m.name}`, 'POST', `/api/v1/trading/markets/${m.id}/${kind}`, { results }));
}

const liabilityTimers = new Map();
function loadLiability(marketId) {
  clearTimeout(liabilityTimers.get(marketId));
  liabilityTimers.set(marketId, setTimeout(async () => {
    const r = await api('GET', `/api/v1/trading/markets/${marketId}/liability`, { token: session.token });
    if (!r.ok) return;
    state.liability.set(marketId, r.data);
    renderMarket(marketId);
  }, 250));
}

// ---------- the bet ticker ----------

function addTicker(bet) {
  state.ticker.unshift(bet);
  if (state.ticker.length > TICKER_MAX) state.ticker.length = TICKER_MAX;
  for (const leg of bet.legs || []) if (state.markets.has(leg.market_id)) loadLiability(leg.market_id);
  renderTicker();
}

function selectionName(id) {
  for (const m of state.markets.values()) {
    const s = m.selections.find((x) => x.id === id);
    if (s) return s.name;
  }
  return null;
}

function renderTicker() {
  const onlyEvent = $('#ticker-this-event').checked && state.selected;
  const customer = $('#ticker-customer').value.trim().toLowerCase();
  const shown = state.ticker.filter((b) =>
    (!onlyEvent || (b.legs || []).some((l) => l.event_id === state.selected))
    && (!customer || String(b.user_id).toLowerCase().startsWith(customer)));
  fill($('#ticker'), shown.length ? shown.map((b) => {
    const legs = (b.legs || []).map((l) => `${selectionName(l.selection_id) || l.selection_id.slice(0, 8)} @ ${Number(l.odds).toFixed(2)}`).join(', ');
    const when = new Date(b.at).toLocaleTimeString();
    return h('li', { dataset: { outcome: b.outcome } },
      h('span', {}, `${when} ${b.type} `),
      b.outcome === 'accepted'
        ? h('span', {}, `stake ${money(b.stake)} · risk +${money(b.risk)}${b.base && b.base.currency_code !== b.currency_code ? ` ${b.currency_code} (${money(b.base.risk)} ${b.base.currency_code})` : ''} · `)
        : h('strong', {}, `${b.code} · `),
      h('span', {}, legs, ' · '),
      h('button', { type: 'button', class: 'link', onclick: () => lookUpCustomer(b.user_id) }, `customer ${String(b.user_id).slice(0, 8)}`));
  }) : h('li', { class: 'muted' }, 'No bets yet.'));
}

$('#ticker-this-event').addEventListener('change', renderTicker);
$('#ticker-customer').addEventListener('input', renderTicker);

// ---------- referrals ----------

async function loadReferrals() {
  const box = $('#referrals');
  if (!state.referralsAvailable || !session.token) return;
  const r = await api('GET', '/api/v1/trading/referrals', { token: session.token });
  if (!r.ok) {
    if (r.status === 404 || r.status === 405) {
      state.referralsAvailable = false;
      fill(box, h('p', { class: 'muted' }, 'Bet referral is not available on this engine yet.'));
    } else fill(box, h('p', { class: 'error' }, errorText(r.data)));
    return;
  }
  const list = r.data.referrals || r.data.items || (Array.isArray(r.data) ? r.data : []);
  // A counter-offer being written is left alone while the same referrals wait.
  const writing = box.querySelector('.counter-form:not([hidden])');
  const ids = list.map((ref) => `${ref.bet_id}:${ref.status}`).join();
  if (writing && box.dataset.ids === ids) return;
  box.dataset.ids = ids;
  fill(box, list.length ? h('ul', { class: 'ticker' }, list.map(referralItem)) : h('p', { class: 'muted' }, 'No referrals waiting.'));
}

function referralItem(ref) {
  const bet = ref.bet || ref;
  const id = ref.bet_id || bet.id;
  const cur = bet.currency_code ? ` ${bet.currency_code}` : '';
  const inBase = ref.base && ref.base.currency_code !== bet.currency_code
    ? ` (${money(ref.base.liability)} ${ref.base.currency_code})` : '';
  const until = ref.status === 'countered' ? ref.counter_expires_at : ref.expires_at;
  const left = until ? Math.max(0, Math.round((new Date(until) - Date.now()) / 1000)) : null;
  const decide = (body) => async () => {
    const r = await act(`Referral ${body.decision}`, 'POST', `/api/v1/trading/referrals/${id}`, body);
    if (r.ok || r.status === 409) loadReferrals();
    return r;
  };
  const head = h('span', {}, `${bet.type || 'bet'} stake ${money(bet.stake)}${cur} @ ${bet.total_odds ? Number(bet.total_odds).toFixed(2) : '–'}`
    + ` · adds ${money(ref.liability ?? ref.liability_added)}${cur}${inBase}`);
  const timer = left !== null ? h('span', { class: 'tag' }, `${left}s left`) : null;
  if (ref.status === 'countered') {
    const terms = [ref.counter_stake ? `stake ${money(ref.counter_stake)}` : null, ref.counter_odds ? `odds ${Number(ref.counter_odds).toFixed(2)}` : null]
      .filter(Boolean).join(', ');
    return h('li', { dataset: { referral: id, status: 'countered' } }, head, timer,
      h('div', { class: 'muted small' }, `Counter-offer sent (${terms}); waiting for the bettor.`));
  }
  // The counter-offer: a lower stake and/or (a single only) other odds, as the API takes.
  const form = h('form', { class: 'counter-form', hidden: true, onsubmit: async (e) => {
    e.preventDefault();
    const body = { decision: 'counter' };
    const stake = form.elements.stake.value.trim();
    const odds = form.elements.odds.value.trim();
    if (stake) body.stake = stake;
    if (odds) body.odds = odds;
    if (!stake && !odds) { fail('Counter-offer', { code: 'validation_failed', message: 'give a lower stake or other odds' }); return; }
    form.hidden = true;
    const r = await decide(body)();
    if (!r.ok) form.hidden = false;
  } },
  h('label', {}, 'Stake ', h('input', { name: 'stake', inputmode: 'decimal', placeholder: money(bet.stake), size: 8, 'aria-label': 'Counter stake' })),
  bet.type === 'single' ? h('label', {}, ' Odds ', h('input', { name: 'odds', inputmode: 'decimal', placeholder: bet.total_odds, size: 7, 'aria-label': 'Counter odds' })) : h('input', { name: 'odds', type: 'hidden', value: '' }),
  h('button', { type: 'submit' }, 'Send counter-offer'));
  return h('li', { dataset: { referral: id, status: ref.status || 'pending' } }, head, timer,
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: decide({ decision: 'accept' }) }, 'Accept'),
      h('button', { type: 'button', class: 'counter', onclick: () => { form.hidden = !form.hidden; if (!form.hidden) form.elements.stake.focus(); } }, 'Counter…'),
      h('button', { type: 'button', class: 'danger', onclick: decide({ decision: 'reject' }) }, 'Reject')),
    form);
}

setInterval(() => { if (session.token && state.referralsAvailable) loadReferrals(); }, 5000);

// ---------- customers ----------

function lookUpCustomer(id) {
  $('#customer-id').value = id;
  loadCustomer(id);
}

$('#customer-find').addEventListener('submit', (e) => {
  e.preventDefault();
  loadCustomer($('#customer-id').value.trim());
});

async function loadCustomer(id) {
  const box = $('#customer');
  const r = await api('GET', `/api/v1/trading/users/${encodeURIComponent(id)}`, { token: session.token });
  if (!r.ok) { fill(box, h('p', { class: 'error' }, errorText(r.data))); return; }
  const u = r.data;
  const form = h('form', { id: 'customer-form', class: 'grid-form' },
    h('label', {}, 'Status', h('select', { name: 'status' }, ['active', 'suspended', 'banned', 'pending'].map((s) => h('option', { value: s, selected: s === u.status }, s)))),
    h('label', {}, 'Stake factor', h('input', { name: 'stake_factor', value: u.stake_factor ?? '1.000', inputmode: 'decimal' })),
    h('label', {}, 'Max stake (empty: none)', h('input', { name: 'max_stake', value: u.max_stake ?? '', inputmode: 'decimal' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save customer')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const body = { status: data.status, stake_factor: data.stake_factor, max_stake: data.max_stake === '' ? null : data.max_stake };
    const res = await act(`Update ${u.username}`, 'PATCH', `/api/v1/trading/users/${u.id}`, body);
    if (res.ok) loadCustomer(u.id);
  });
  fill(box,
    h('p', {}, h('strong', {}, u.username), ` · ${u.email} · balance ${money(u.balance)}`),
    form);
}

// ---------- start ----------

if (session.token && STAFF.has(session.user?.role)) start();
else showLogin();
