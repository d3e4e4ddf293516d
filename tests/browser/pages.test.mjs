// The bettor's page and the trading console in headless Chromium against a real engine
// (scripts/browser-test.sh starts it with the demo data and sets WINZO_URL). Every wait is
// for a condition with a deadline; nothing sleeps a fixed time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.WINZO_URL || 'http://127.0.0.1:8080';
const SHOTS = new URL('./screenshots/', import.meta.url).pathname;
const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };
const UPCOMING = 'Liverpool v Everton';
const OTHER = 'Newcastle United v Aston Villa';

let browser;
const errors = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
});

async function newPage(viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  return page;
}

async function bettorPage(viewport) {
  const page = await newPage(viewport);
  await page.goto(`${BASE}/`);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.fill('#login-form input[name=login]', 'demo');
  await page.fill('#login-form input[name=password]', 'demo-password-1');
  await page.click('#login-form button[type=submit]');
  await page.locator('#balance').filter({ hasText: /\d+\.\d\d/ }).waitFor({ timeout: 10000 });
  await eventCard(page, UPCOMING).locator('.price-btn').first().waitFor({ timeout: 10000 });
  return page;
}

async function consolePage(viewport) {
  const page = await newPage(viewport);
  await page.goto(`${BASE}/trading`);
  await page.fill('#login-form input[name=login]', 'trader');
  await page.fill('#login-form input[name=password]', 'trader-password-1');
  await page.click('#login-form button[type=submit]');
  await page.locator('.event-link', { hasText: UPCOMING }).click({ timeout: 10000 });
  await page.locator('.tmarket table').first().waitFor({ timeout: 10000 });
  return page;
}

function eventCard(page, title) {
  return page.locator('article.event', { has: page.locator('h3', { hasText: title }) });
}

/** The console's market section of `name` in the selected event, and its id. */
async function consoleMarket(page, name) {
  const section = page.locator('.tmarket', { has: page.locator('h3', { hasText: name }) });
  await section.waitFor({ timeout: 10000 });
  return { section, id: await section.getAttribute('data-market') };
}

/** Waits for the console's status line to report `label` done (or fails with its text). */
async function actionDone(page, label) {
  const status = page.locator('#status');
  await status.filter({ hasText: `${label}: done.` }).waitFor({ timeout: 10000 }).catch(async (e) => {
    throw new Error(`${label}: status line says ${JSON.stringify(await status.textContent())} (${e.message})`);
  });
}

async function balanceOf(page) {
  return (await page.locator('#balance').textContent()).trim();
}

test('a trader suspends a market and the bettor sees it suspended within a second', async () => {
  const bettor = await bettorPage();
  const trader = await consolePage();
  const { section, id } = await consoleMarket(trader, 'Match winner');
  const market = bettor.locator(`[data-market="${id}"]`);
  assert.equal(await market.getAttribute('data-status'), 'open');

  const clicked = Date.now();
  await section.locator('.m-suspend').click();
  await bettor.locator(`[data-market="${id}"].suspended`).waitFor({ timeout: 1000 });
  const took = Date.now() - clicked;
  assert.ok(took <= 1000, `shown suspended after ${took} ms`);
  assert.equal(await market.getAttribute('data-status'), 'suspended');
  assert.ok(await market.locator('.price-btn').first().isDisabled(), 'its prices cannot be picked');
  // The console shows it too, from the engine's own message.
  await section.locator('.mstatus[data-status="suspended"]').waitFor({ timeout: 2000 });
  await actionDone(trader, 'Suspend Match winner');

  await section.locator('.m-resume').click();
  await bettor.locator(`[data-market="${id}"][data-status="open"]`).waitFor({ timeout: 2000 });
  await actionDone(trader, 'Resume Match winner');
  await bettor.context().close();
  await trader.context().close();
});

test('a bettor places a parlay from the slip, sees it in open bets, the balance moves and the ticker shows it', async () => {
  const bettor = await bettorPage();
  const trader = await consolePage();
  const before = await balanceOf(bettor);

  await eventCard(bettor, UPCOMING).locator('.price-btn').first().click();
  await eventCard(bettor, OTHER).locator('.price-btn').first().click();
  await bettor.getByRole('radio', { name: 'Parlay' }).check();
  await bettor.fill('#stake', '4.00');
  await bettor.locator('#slip-figures', { hasText: 'Potential win' }).waitFor();
  await bettor.click('#place-bet');
  await bettor.locator('#slip-message', { hasText: 'Bet placed.' }).waitFor({ timeout: 10000 });

  const openBet = bettor.locator('#bets-open li.bet', { hasText: 'Parlay (2)' });
  await openBet.first().waitFor({ timeout: 5000 });
  // (waitForFunction would poll with eval, which the page's policy forbids.)
  await bettor.locator('#balance').filter({ hasNotText: before }).waitFor({ timeout: 5000 });
  const after = await balanceOf(bettor);
  assert.equal((parseFloat(before) - parseFloat(after)).toFixed(2), '4.00', `${before} -> ${after}`);

  // The staff-only ticker got it, with the risk it added.
  await trader.locator('#ticker li[data-outcome="accepted"]', { hasText: 'parlay' }).first().waitFor({ timeout: 5000 });
  assert.match(await trader.locator('#ticker li[data-outcome="accepted"]').first().textContent(), /risk \+\d+\.\d\d/);
  await bettor.context().close();
  await trader.context().close();
});

test('an odds_changed refusal offers the new price, and accepting it places the bet', async () => {
  const bettor = await bettorPage();
  const trader = await consolePage();
  const { section } = await consoleMarket(trader, 'Match winner');
  const away = eventCard(bettor, UPCOMING).locator('.price-btn').nth(2);
  const selId = await away.getAttribute('data-sel');
  await away.click();
  await bettor.locator(`#slip-body [data-leg="${selId}"]`).waitFor();

  // The bettor's socket is down while the trader moves the price: the slip still asks the
  // old one, so the engine refuses it with odds_changed.
  await bettor.evaluate(() => window.winzoLive.pause());
  await bettor.locator('#live-state[data-state="paused"]').waitFor();
  const input = section.locator(`[data-price="${selId}"]`);
  const old = Number(await input.inputValue());
  const moved = (old + 0.35).toFixed(2);
  await input.fill(moved);
  await section.locator('.margin', { hasText: '→' }).waitFor();
  await section.locator('.m-move').click();
  await actionDone(trader, 'Move prices of Match winner');

  await bettor.click('#place-bet');
  const message = bettor.locator('#slip-message');
  await message.filter({ hasText: `changed to ${moved}` }).waitFor({ timeout: 10000 });
  const accept = bettor.locator('#accept-price');
  assert.match(await accept.textContent(), new RegExp(`Accept ${moved.replace('.', '\\.')}`));
  await accept.click();
  await message.filter({ hasText: 'Bet placed.' }).waitFor({ timeout: 10000 });
  await bettor.locator('#bets-open li.bet', { hasText: `@ ${moved}` }).first().waitFor({ timeout: 5000 });
  await bettor.evaluate(() => window.winzoLive.resume());
  await bettor.context().close();
  await trader.context().close();
});

test('a price moved by the trader flashes on the bettor\'s page', async () => {
  const bettor = await bettorPage();
  const trader = await consolePage();
  const { section } = await consoleMarket(trader, 'Match winner');
  const draw = eventCard(bettor, UPCOMING).locator('.price-btn').nth(1);
  const selId = await draw.getAttribute('data-sel');
  const input = section.locator(`[data-price="${selId}"]`);
  const moved = (Number(await input.inputValue()) + 0.2).toFixed(2);
  await input.fill(moved);
  await section.locator('.m-move').click();
  await bettor.locator(`[data-sel="${selId}"].flash-up`).waitFor({ timeout: 2000 });
  assert.equal((await draw.locator('.price').textContent()).trim(), moved);
  await actionDone(trader, 'Move prices of Match winner');
  await bettor.context().close();
  await trader.context().close();
});

test('a dropped socket reconnects and shows what changed meanwhile', async () => {
  const bettor = await bettorPage();
  const trader = await consolePage();
  await trader.locator('.event-link', { hasText: OTHER }).click();
  const { section, id } = await consoleMarket(trader, 'Total goals');
  await section.locator('.mstatus[data-status="open"]').waitFor();
  const market = bettor.locator(`[data-market="${id}"]`);
  await bettor.locator(`[data-market="${id}"][data-status="open"]`).waitFor();

  await bettor.evaluate(() => window.winzoLive.pause());
  await bettor.locator('#live-state[data-state="paused"]').waitFor();
  await section.locator('.m-suspend').click();
  await actionDone(trader, 'Suspend Total goals 2.5');
  assert.equal(await market.getAttribute('data-status'), 'open', 'no news while the socket is down');

  await bettor.evaluate(() => window.winzoLive.resume());
  await bettor.locator('#live-state[data-state="live"]').waitFor({ timeout: 10000 });
  await bettor.locator(`[data-market="${id}"][data-status="suspended"]`).waitFor({ timeout: 5000 });

  // The console's own socket recovers the same way (from its snapshots).
  await trader.evaluate(() => window.winzoLive.pause());
  await trader.locator('#live-state[data-state="paused"]').waitFor();
  const res = await fetch(`${BASE}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: 'trader', password: 'trader-password-1' }),
  });
  const { token } = await res.json();
  const resumed = await fetch(`${BASE}/api/v1/trading/markets/${id}/resume`, {
    method: 'POST', headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(resumed.status, 200);
  await trader.evaluate(() => window.winzoLive.resume());
  await section.locator('.mstatus[data-status="open"]').waitFor({ timeout: 10000 });
  await bettor.locator(`[data-market="${id}"][data-status="open"]`).waitFor({ timeout: 5000 });
  await bettor.context().close();
  await trader.context().close();
});

/** A staff token for calls the test makes itself. */
async function traderToken() {
  const res = await fetch(`${BASE}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: 'trader', password: 'trader-password-1' }),
  });
  return (await res.json()).token;
}

async function marketSettings(token, id, body) {
  const res = await fetch(`${BASE}/api/v1/trading/markets/${id}/settings`, {
    method: 'PATCH', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

test('a trader counters a referred bet with a lower stake and the bettor takes it', async () => {
  const trader = await consolePage();
  const { id } = await consoleMarket(trader, 'Match winner');
  const token = await traderToken();
  // Referral on for this market: a stake above 5.00 goes to the desk for a minute.
  await marketSettings(token, id, { referral_window_ms: 60000, max_stake: '5.00' });
  try {
    const bettor = await bettorPage();
    await bettor.locator(`[data-market="${id}"] .price-btn`).first().click();
    await bettor.fill('#stake', '8.00');
    await bettor.click('#place-bet');
    await bettor.locator('#slip-message', { hasText: 'referred to the trading desk' }).waitFor({ timeout: 10000 });
    const referred = bettor.locator('#bets-open li.bet[data-status="referred"]').first();
    await referred.waitFor({ timeout: 5000 });
    const betId = await referred.getAttribute('data-bet');
    await referred.locator('[data-referral="pending"]').waitFor();
    const held = await balanceOf(bettor);

    // The desk sees it and counters with a lower stake.
    const item = trader.locator(`#referrals li[data-referral="${betId}"]`);
    await item.waitFor({ timeout: 10000 });
    assert.match(await item.textContent(), /stake 8\.00/);
    await item.getByRole('button', { name: 'Counter…' }).click();
    await item.getByLabel('Counter stake').fill('3.00');
    await item.getByRole('button', { name: 'Send counter-offer' }).click();
    await actionDone(trader, 'Referral counter');
    await trader.locator(`#referrals li[data-referral="${betId}"][data-status="countered"]`).waitFor({ timeout: 5000 });

    // The bettor's side changes: the counter-offer shows on their bet, and taking it
    // leaves the bet open at 3.00 with the other 5.00 back in the balance.
    const offer = bettor.locator(`li.bet[data-bet="${betId}"] [data-referral="countered"]`);
    await offer.waitFor({ timeout: 5000 });
    assert.match(await offer.textContent(), /stake 3\.00/);
    await offer.getByRole('button', { name: 'Take it' }).click();
    const taken = bettor.locator(`#bets-open li.bet[data-bet="${betId}"][data-status="accepted"]`);
    await taken.waitFor({ timeout: 5000 });
    assert.match(await taken.locator('.bet-figures').textContent(), /Stake 3\.00/);
    await bettor.locator('#balance').filter({ hasNotText: held }).waitFor({ timeout: 5000 });
    assert.equal((parseFloat(await balanceOf(bettor)) - parseFloat(held)).toFixed(2), '5.00');
    // And the desk's queue no longer holds it.
    await trader.locator(`#referrals li[data-referral="${betId}"]`).waitFor({ state: 'detached', timeout: 10000 });
    await bettor.context().close();
  } finally {
    await marketSettings(token, id, { referral_window_ms: 0, max_stake: '10000.00' });
    await trader.context().close();
  }
});

test('screenshots of both pages at desktop and phone width', async () => {
  for (const [name, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const bettor = await bettorPage(viewport);
    await eventCard(bettor, UPCOMING).locator('.price-btn').first().click();
    await eventCard(bettor, OTHER).locator('.price-btn').first().click();
    await bettor.locator('#slip-figures', { hasText: 'Potential win' }).waitFor();
    await bettor.screenshot({ path: `${SHOTS}bettor-${name}.png`, fullPage: name === 'phone' });
    const trader = await consolePage(viewport);
    await trader.locator('#ticker li').first().waitFor();
    await trader.locator('.liab-total', { hasText: 'worst case' }).first().waitFor({ timeout: 5000 });
    await trader.screenshot({ path: `${SHOTS}trading-${name}.png`, fullPage: name === 'phone' });
    await bettor.context().close();
    await trader.context().close();
  }
  assert.deepEqual(errors, [], 'no script errors on the pages');
});
