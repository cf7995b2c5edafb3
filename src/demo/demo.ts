// `sluice demo`: a running Sluice in front of a built-in mock provider, fed varied synthetic traffic, so a newcomer
// sees the dashboard, the audit log and the report fill without an API key or a single line of config.

import { generateKeyPairSync, createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadConfigFile, parseConfig } from '../config/load';
import type { Config } from '../config/schema';
import { SluiceError } from '../errors';
import { startSluice, type RunningSluice } from '../sluice';
import { startDemoProvider, type DemoProvider } from './provider';
import { BILLING_FINGERPRINT, SCENARIOS, TrafficDriver, type TrafficStats } from './traffic';

export const DEFAULT_DEMO_DIR = './sluice-demo-data';
/** The hosts the demo's traffic goes to, all answered by the mock provider. */
const DEMO_HOSTS = ['api.openai.com', 'api.anthropic.com', 'api.deepseek.com', 'api.groq.com'];
const ISSUER = 'https://idp.demo.sluice';
const AUDIENCE = 'sluice';
/** Requests per second: enough to fill every chart in a minute, little enough for a laptop. */
const RATE = 25;
const MAX_IN_FLIGHT = 64;
const PROGRESS_MS = 10_000;

/** The demo's own settings; a --config file overrides them key by key. */
function demoConfigYaml(dataDir: string, idpPublicKey: string): string {
  return `
listen: { proxy: 127.0.0.1:0, forward: 127.0.0.1:0, admin: 127.0.0.1:9090 }
data_dir: ${JSON.stringify(dataDir)}
destinations: { sanctioned: [openai, anthropic] }
identity:
  jwt: { key_file: ${JSON.stringify(idpPublicKey)}, issuer: ${JSON.stringify(ISSUER)}, audience: ${AUDIENCE} }
  api_keys:
    - { fingerprint: ${BILLING_FINGERPRINT}, subject: billing-service, app: billing, jurisdiction: EU }
routes:
  - { name: support-bot, match: { groups: [support] }, allow: { providers: [anthropic], tools: [lookup_order] } }
  - { name: internal-copilot, match: { groups: [engineering] }, allow: { providers: [openai, anthropic] } }
policy:
  mode: enforce
  unsanctioned: block
  outside_route: block
  content:
    - { id: no-secrets, action: block, categories: [credential], min_severity: high }
    - { id: watch-personal-data, action: alert, categories: [pii, phi, financial] }
signals:
  home_jurisdiction: EU
  alerts:
    - { id: support-pii, kind: pii_rate, route: support-bot, threshold: 0.3, window: 1m, min_requests: 20 }
    - { id: new-shadow-ai, kind: new_unsanctioned }
    - { id: slow-tail, kind: p99, threshold: 800, window: 1m, min_requests: 50 }
`;
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Mappings merge key by key; anything else in `over` replaces what `base` has. */
function overlay(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTree(v) && isTree(base[k]) ? overlay(base[k], v) : v;
  return out;
}

/** The identity provider's Ed25519 key pair, kept in the data dir so tokens stay valid across demo runs. */
async function identityKey(dataDir: string): Promise<{ privateKey: KeyObject; publicFile: string }> {
  const dir = join(dataDir, 'demo-idp');
  const privateFile = join(dir, 'private.pem');
  const publicFile = join(dir, 'public.pem');
  try {
    return { privateKey: createPrivateKey(await readFile(privateFile)), publicFile };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pair = generateKeyPairSync('ed25519');
  await writeFile(publicFile, pair.publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(privateFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { privateKey: pair.privateKey, publicFile };
}

/** The demo's config, with the `--config` file's settings over it (that file is validated on its own first, so its errors name its lines). */
async function demoConfig(configFile: string | undefined): Promise<{ config: Config; idp: KeyObject }> {
  let over: Tree = {};
  if (configFile) {
    await loadConfigFile(configFile);
    const parsed: unknown = parseYaml(await readFile(configFile, 'utf8'));
    if (isTree(parsed)) over = parsed;
  }
  const dataDir = resolve(typeof over.data_dir === 'string' ? over.data_dir : DEFAULT_DEMO_DIR);
  await mkdir(dataDir, { recursive: true });
  const { privateKey, publicFile } = await identityKey(dataDir);
  const merged = { ...overlay(parseYaml(demoConfigYaml(dataDir, publicFile)) as Tree, over), data_dir: dataDir };
  return { config: parseConfig(stringifyYaml(merged), configFile ? `the demo config with ${configFile} over it` : 'the demo config'), idp: privateKey };
}

export interface DemoOptions {
  configFile?: string;
  /** Stop after this many seconds of traffic; until `signal` otherwise. */
  durationS?: number;
  signal: AbortSignal;
  /** Where the demo says what it is doing (stdout). */
  say(line: string): void;
}

function statsLine(s: TrafficStats): string {
  return `${s.sent} requests sent: ${s.ok} answered, ${s.blocked} blocked by policy, ${s.failed} provider errors (${s.streamed} streamed, ${s.toolOffers} with tools)`;
}

export async function runDemo(opts: DemoOptions): Promise<void> {
  const { config, idp } = await demoConfig(opts.configFile);
  const provider: DemoProvider = await startDemoProvider();
  for (const host of DEMO_HOSTS) config.upstreams[host] = provider.url;
  opts.say(`Starting Sluice (data in ${config.data_dir}; compiling the detection rules takes a few seconds on the first run)…`);
  let sluice: RunningSluice;
  try {
    sluice = await startSluice({ config });
  } catch (err) {
    await provider.close();
    if ((err as SluiceError).code !== 'SLUICE_LISTEN_FAILED') throw err;
    throw new SluiceError('SLUICE_LISTEN_FAILED', `${(err as Error).message}; run the demo elsewhere with --config FILE holding e.g. listen: { admin: 127.0.0.1:9091 }`, { cause: err });
  }
  const auditDir = sluice.audit?.dir ?? join(config.data_dir, 'audit');
  const driver = new TrafficDriver(sluice.gatewayUrl, { key: idp, issuer: ISSUER, audience: AUDIENCE }, { rate: RATE, maxInFlight: MAX_IN_FLIGHT });
  opts.say(
    [
      '',
      `  Dashboard:  ${sluice.adminUrl}/`,
      `  Signals:    ${sluice.adminUrl}/signals   metrics: ${sluice.adminUrl}/metrics`,
      `  Gateway:    ${sluice.gatewayUrl}  (e.g. OPENAI_BASE_URL=${sluice.gatewayUrl}/openai/v1; the mock provider answers)`,
      `  Audit log:  ${auditDir}`,
      '',
      `Sending about ${RATE} requests/s through the gateway, in proportion:`,
      ...SCENARIOS.map((s) => `  ${String(s.weight).padStart(3)}%  ${s.about}`),
      '  and every 20th request the provider fails (500/503), every 33rd it rate-limits (429).',
      '',
      opts.durationS ? `Running for ${opts.durationS} s.` : 'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  driver.start();
  const progress = setInterval(() => opts.say(statsLine(driver.stats)), PROGRESS_MS);
  await new Promise<void>((done) => {
    if (opts.signal.aborted) return done();
    opts.signal.addEventListener('abort', () => done(), { once: true });
    if (opts.durationS) setTimeout(done, opts.durationS * 1000).unref();
  });
  clearInterval(progress);
  opts.say('Stopping: waiting for the requests under way, then sealing the audit log…');
  try {
    await driver.stop();
  } finally {
    await sluice.stop();
    await provider.close();
  }
  opts.say(statsLine(driver.stats));
  opts.say(`\nThe audit log stays in ${auditDir}. Next:\n  sluice report ${auditDir}\n  sluice verify ${auditDir}\n  sluice tail ${auditDir} --filter policy.decision=block`);
}
