// The live dashboard in a real headless Chromium against a real Sluice: traffic from the OpenAI SDK through the
// gateway, then each of the six signals drawn with values that match it; the admin token through `/#token=`.
// Without /usr/bin/chromium this skips, except under CI, where a missing browser is a failure.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startHarness, type Harness } from '../fixtures/harness';

// Detection runs on the portable engine: compiling every built-in pack for Hyperscan takes seconds on a loaded
// machine, and the engines have their own tests. This file runs in its own process, so nothing else sees it.
process.env.SLUICE_ENGINE = 're2';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) || process.env.CI ? false : `no ${CHROMIUM} (apt-get install chromium)`;
/** dist/test-output: beside the build, never in the source tree. */
const OUTPUT = resolve(__dirname, '../../test-output');

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const KEYS = { support: 'sk-support-bot-key', billing: 'sk-billing-service-key', mallory: 'sk-mallory-key' };
/** A subject that would run script if the page ever inserted API text as HTML. */
const MALLORY = 'mallory <img src=x onerror="window.__xss=1">';

const CONFIG = `
identity:
  api_keys:
    - { fingerprint: ${sha256(KEYS.support)}, subject: support-bot, app: support, jurisdiction: EU }
    - { fingerprint: ${sha256(KEYS.billing)}, subject: billing-service, app: billing, jurisdiction: US }
    - { fingerprint: ${sha256(KEYS.mallory)}, subject: ${JSON.stringify(MALLORY)}, jurisdiction: EU }
routes:
  - { name: support, match: { subjects: [support-bot] } }
  - { name: billing, match: { subjects: [billing-service] } }
destinations: { sanctioned: [openai] }
policy:
  unsanctioned: alert
  content:
    - { id: watch-pii, action: alert, categories: [pii] }
signals:
  home_jurisdiction: US
  alerts:
    - { id: shadow-ai, kind: new_unsanctioned }
`;

let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
});
after(() => browser?.close());

/** A page that fails the test on any script error in it. */
async function openPage(errors: string[]): Promise<Page> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(6000);
  page.on('pageerror', (err) => errors.push(err.message));
  return page;
}

/** The text of each cell of the row `rowSel` in the section named `signal`. */
async function cells(page: Page, signal: string, rowSel: string): Promise<string[]> {
  const row = page.locator(`[data-signal="${signal}"] .scroll tbody ${rowSel}`);
  return row.locator('td').allTextContents();
}

async function generateTraffic(h: Harness): Promise<number> {
  const client = (key: string, base: string) => new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/${base}`, apiKey: key, maxRetries: 0 });
  const chat = (c: OpenAI, content: string, headers?: Record<string, string>) =>
    c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { headers });
  const support = client(KEYS.support, 'openai/v1');
  const billing = client(KEYS.billing, 'openai/v1');
  await chat(support, 'summarise the open tickets');
  await chat(support, 'customer jane.doe@acme-corp.com (SSN 536-22-1987) wants a refund');
  await chat(billing, 'forecast next quarter');
  await chat(billing, 'reconcile the invoices');
  await assert.rejects(chat(billing, 'this one fails upstream', { 'x-mock-behavior': 'error', 'x-mock-status': '503' }), (err: { status?: number }) => {
    assert.equal(err.status, 503);
    return true;
  });
  // Shadow AI: DeepSeek is not sanctioned; policy alerts and lets it through.
  await chat(client(KEYS.support, 'deepseek'), 'try the cheaper model');
  await chat(client(KEYS.mallory, 'deepseek'), 'nobody will notice');
  return 7;
}

test('the dashboard draws all six signals from live traffic, escapes API text, and follows the window selector', { skip, timeout: 18_000 }, async (t) => {
  const h = await startHarness(CONFIG, (c) => {
    c.detect.enabled = true;
    c.detect.threads = 0;
  });
  const errors: string[] = [];
  try {
    const sent = await generateTraffic(h);
    for (let i = 0; i < sent; i++) await h.nextExchange();

    const page = await openPage(errors);
    const signalRequests: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/signals') signalRequests.push(r.url());
    });
    await page.goto(`${h.sluice.adminUrl}/`);
    for (const signal of ['destinations', 'pii', 'cross-region', 'failures', 'latency', 'unauthorized', 'alerts']) {
      await page.waitForSelector(`[data-signal="${signal}"][data-rendered="true"]`);
    }

    // 1. Destinations: DeepSeek listed as not sanctioned, OpenAI as sanctioned, with their request counts, and a chart.
    const deepseek = await cells(page, 'destinations', 'tr[data-host="api.deepseek.com"]');
    assert.equal(deepseek[1], 'deepseek');
    assert.match(deepseek[2] ?? '', /^(shadow|unsanctioned)$/, 'DeepSeek is not sanctioned');
    assert.equal(deepseek[3], '2');
    const openai = await cells(page, 'destinations', 'tr[data-host="api.openai.com"]');
    assert.deepEqual(openai.slice(1, 4), ['openai', 'sanctioned', '5']);
    assert.equal(await page.locator('[data-signal="destinations"] .uplot canvas').count(), 1, 'the trend chart is drawn');
    const legend = (await page.locator('[data-signal="destinations"] .u-legend').textContent()) ?? '';
    assert.match(legend, /api\.deepseek\.com \((shadow|unsanctioned)\)/);

    // 2. PII per route: one of support's three exchanges carried PII; billing's none.
    const support = await cells(page, 'pii', 'tr[data-route="support"]');
    assert.deepEqual(support.slice(0, 4), ['support', '33%', '1', '3']);
    assert.match(support[4] ?? '', /\bpii [1-9]/);
    const billing = await cells(page, 'pii', 'tr[data-route="billing"]');
    assert.deepEqual(billing.slice(0, 4), ['billing', '0%', '0', '3']);

    // 3. Cross-region: EU callers reached the US (OpenAI) and China (DeepSeek); the home jurisdiction is the US.
    assert.equal((await cells(page, 'cross-region', 'tr[data-from="EU"][data-to="US"]'))[2], '2');
    assert.equal((await cells(page, 'cross-region', 'tr[data-from="EU"][data-to="CN"]'))[2], '2');
    assert.notEqual(await page.locator('[data-signal="cross-region"] .headline .big').textContent(), '0%');

    // 4. Failures, worst first: the 503 is OpenAI's one failure in five.
    const worst = await page.locator('[data-signal="failures"] .scroll tbody tr').first().locator('td').allTextContents();
    assert.deepEqual(worst.slice(0, 4), ['api.openai.com', '20%', '1', '5']);
    assert.deepEqual((await cells(page, 'failures', 'tr[data-host="api.deepseek.com"]')).slice(1, 3), ['0%', '0']);

    // 5. Latency: headline percentiles and the percentile chart.
    const total = (await page.locator('[data-signal="latency"] [data-metric="total"] dd').textContent()) ?? '';
    assert.match(total, /^p50 [\d.]+ ms · p99 [\d.]+ ms/);
    assert.equal(await page.locator('[data-signal="latency"] .uplot canvas').count(), 1, 'the percentile chart is drawn');
    assert.match((await page.locator('[data-signal="latency"] .u-legend').textContent()) ?? '', /p50.*p90.*p99.*p99\.9/s);

    // 6. Unauthorised attempts: who and where, the hostile subject shown as text and never run.
    assert.equal(await page.locator('[data-signal="unauthorized"] .headline .big').textContent(), '2');
    const bySupport = await cells(page, 'unauthorized', 'tr[data-subject="support-bot"]');
    assert.deepEqual([bySupport[1], bySupport[3], bySupport[4]], ['support-bot', 'api.deepseek.com', 'deepseek']);
    const mallory = await cells(page, 'unauthorized', 'tr[data-host="api.deepseek.com"]:not([data-subject="support-bot"])');
    assert.equal(mallory[1], MALLORY);
    assert.equal(await page.locator('[data-signal="unauthorized"] img').count(), 0);
    assert.equal(await page.evaluate('window.__xss'), undefined);

    // Alerts: the new-unsanctioned rule fired for DeepSeek.
    assert.match((await page.locator('[data-signal="alerts"] .alert-list').textContent()) ?? '', /shadow-ai.*deepseek/s);

    mkdirSync(OUTPUT, { recursive: true });
    const shot = join(OUTPUT, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);

    // The window selector asks for the new window at once and says which one it shows.
    const asked = page.waitForRequest((r) => r.url().endsWith('/signals?window=1m'));
    await page.selectOption('#window', '1m');
    await asked;
    await page.locator('#status', { hasText: 'window 1m' }).waitFor();
    assert.match(page.url(), /\?window=1m$/);
    assert.ok(signalRequests.every((u) => /\/signals\?window=(5m|1m)$/.test(u)), signalRequests.join(' '));
    assert.deepEqual(errors, [], 'no script errors');
    await page.context().close();
  } finally {
    await h.close();
  }
});

test('beyond loopback: /#token= authenticates the page and leaves the address bar; without it the page asks for the token', { skip, timeout: 10_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-dashboard-'));
  const token = randomBytes(24).toString('base64url');
  const tokenFile = join(dir, 'admin-token');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const h = await startHarness('', (c) => {
    c.listen.admin = { host: '0.0.0.0', port: 0 };
    c.admin.token_file = tokenFile;
  });
  const errors: string[] = [];
  try {
    const res = await fetch(`${h.sluice.gatewayUrl}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await h.nextExchange();
    // Reached over loopback; the listener is bound to every address, so it still wants the token.
    const base = `http://127.0.0.1:${new URL(h.sluice.adminUrl).port}/`;

    const page = await openPage(errors);
    const auths: Array<string | undefined> = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/signals') auths.push(r.headers().authorization);
    });
    await page.goto(`${base}#token=${encodeURIComponent(token)}`);
    await page.waitForSelector('[data-signal="destinations"][data-rendered="true"] tr[data-host="api.openai.com"]');
    assert.equal(page.url(), base, 'the token is gone from the address bar');
    assert.equal(await page.evaluate(`sessionStorage.getItem('sluice.admin.token')`), token);
    assert.equal(await page.locator('#auth').isHidden(), true);
    assert.ok(auths.length > 0 && auths.every((a) => a === `Bearer ${token}`), 'every /signals call carries the token');
    // A reload keeps working: the token stays in this tab's sessionStorage.
    await page.reload();
    await page.waitForSelector('[data-signal="destinations"][data-rendered="true"]');
    await page.context().close();

    // A fresh tab without the token: the auth message, no data; pasting the token renders.
    const bare = await openPage(errors);
    await bare.goto(base);
    await bare.waitForSelector('#auth:not([hidden])');
    assert.match((await bare.locator('#auth').textContent()) ?? '', /requires a bearer token.*#token=/s);
    assert.match((await bare.locator('#status').textContent()) ?? '', /token is required/);
    assert.equal(await bare.locator('[data-signal="destinations"]').getAttribute('data-rendered'), 'false');
    await bare.fill('#auth-token', token);
    await bare.click('#auth-form button[type="submit"]');
    await bare.waitForSelector('[data-signal="destinations"][data-rendered="true"]');
    assert.equal(await bare.locator('#auth').isHidden(), true);
    await bare.context().close();

    // A wrong token is refused and forgotten.
    const wrong = await openPage(errors);
    await wrong.goto(`${base}#token=not-the-token`);
    await wrong.waitForSelector('#auth:not([hidden])');
    assert.match((await wrong.locator('#status').textContent()) ?? '', /token was refused/);
    assert.equal(await wrong.evaluate(`sessionStorage.getItem('sluice.admin.token')`), null);
    await wrong.context().close();
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
