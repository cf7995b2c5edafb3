// The `sluice` command, run as a real child process: help, version, usage errors, config errors,
// and a full start → serve → SIGTERM → exit 0 cycle on ports chosen by the OS.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { curlThrough } from '../fixtures/curl';
import { mockReplyText, startMockProvider, type MockProvider } from '../fixtures/mock-provider';
import { hyperscanAvailable } from '../../src/detect/hyperscan';

// Tests run from dist/test/cli/.
const ROOT = join(__dirname, '..', '..', '..');
const BIN = join(ROOT, 'bin', 'sluice.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let mock: MockProvider;
let dir: string;
const children = new Set<ChildProcess>();

before(async () => {
  mock = await startMockProvider();
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await mock?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The environment without anything that could steer the CLI from outside the test. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('SLUICE_CONFIG' in extra)) delete env.SLUICE_CONFIG;
  return env;
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  exited: Promise<number | string>;
}

function spawnCli(args: string[], env: NodeJS.ProcessEnv = cleanEnv()): Run {
  // cwd in the temp dir: `data_dir: ./sluice-data` must not land in the repository.
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs to completion; the process is killed if it outlives `timeoutMs`. */
async function runCli(args: string[], env?: NodeJS.ProcessEnv, timeoutMs = 5000) {
  const r = spawnCli(args, env);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), timeoutMs);
  const code = await r.exited;
  clearTimeout(timer);
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

function logLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** Waits for the JSON log line with `msg`; fails early if the process exits first. */
/** Waits for the `nth` log line with message `msg` (1 = the first). */
async function waitForLog(r: Run, msg: string, timeoutMs = 5000, nth = 1): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  let exitedWith: number | string | null = null;
  void r.exited.then((c) => (exitedWith = c));
  for (;;) {
    const line = logLines(r.stderr()).filter((l) => l.msg === msg)[nth - 1];
    if (line) return line;
    if (exitedWith !== null) throw new Error(`sluice exited (${exitedWith}) before logging "${msg}":\n${r.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no "${msg}" log line within ${timeoutMs} ms:\n${r.stderr()}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

function writeConfig(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

// Detection compiles every rule pack at start; only the test about it pays for that.
const goodConfig = (detect = `detect:\n  enabled: false\n`) =>
  `listen: {proxy: 127.0.0.1:0, forward: 127.0.0.1:0, admin: 127.0.0.1:0}\n` +
  `upstreams:\n  api.openai.com: ${mock.url}\n` +
  `limits:\n  shutdown_grace_ms: 3000\n` +
  detect;

test('--version prints the package.json version', async () => {
  for (const r of await Promise.all([runCli(['--version']), runCli(['-v'])])) {
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${VERSION}\n`);
  }
});

test('--help exits 0 and describes start; no command prints help and exits 2', async () => {
  const [r, none] = await Promise.all([runCli(['--help']), runCli([])]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /sluice start/);
  assert.match(r.stdout, /--config/);
  assert.match(r.stdout, /SLUICE_CONFIG/);
  assert.equal(none.code, 2);
  assert.match(none.stdout, /Usage:/);
});

test('an unknown command or option exits 2 with usage', async () => {
  const [r, opt, missing] = await Promise.all([runCli(['frobnicate']), runCli(['start', '--frob']), runCli(['start', '--config'])]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.match(r.stderr, /Usage:/);
  assert.equal(opt.code, 2);
  assert.match(opt.stderr, /unknown option --frob/);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--config needs a file name/);
});

test('start --config with an invalid file exits 1 naming file:line and each key', async () => {
  const bad = writeConfig('bad.yaml', `listen:\n  proxy: 127.0.0.1:99999\n  bogus_key: 1\n`);
  const [r, absent] = await Promise.all([runCli(['start', '--config', bad]), runCli(['start', `--config=${join(dir, 'absent.yaml')}`])]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /SLUICE_CONFIG_INVALID/);
  assert.match(r.stderr, /bad\.yaml:3: listen\.bogus_key: unknown key/);
  assert.match(r.stderr, /bad\.yaml:2: listen\.proxy: .*99999/);
  assert.doesNotMatch(r.stderr, /sluice started/);

  assert.equal(absent.code, 1);
  assert.match(absent.stderr, /SLUICE_CONFIG_INVALID: cannot read config file .*absent\.yaml/);
});

test('start exits 1 with SLUICE_LISTEN_FAILED when a port is taken', async () => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const cfg = writeConfig('busy.yaml', `listen: {proxy: 127.0.0.1:0, forward: 127.0.0.1:0, admin: 127.0.0.1:${port}}\ndetect: {enabled: false}\n`);
    const r = await runCli(['start', '--config', cfg]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /SLUICE_LISTEN_FAILED: admin cannot listen on 127\.0\.0\.1:\d+/);
  } finally {
    blocker.close();
  }
});

test('start serves on OS-chosen ports: healthz, an SDK call through the gateway, SIGHUP reloads rules, SIGTERM → exit 0', async () => {
  const rulesDir = join(dir, 'hup-rules');
  mkdirSync(rulesDir, { recursive: true });
  const pack = (pattern: string) => `pack: mine\nrules:\n  - id: project-codename\n    category: other\n    severity: low\n    pattern: '${pattern}'\n`;
  writeFileSync(join(rulesDir, 'mine.yaml'), pack('PROJECT-[A-Z]{4}'));
  const cfg = writeConfig('good.yaml', goodConfig(`detect:\n  threads: 1\n  rules: [${JSON.stringify(rulesDir)}]\n`));
  const r = spawnCli(['start', '--config', cfg]);
  try {
    const started = await waitForLog(r, 'sluice started', 60_000);
    assert.equal(started.level, 'info');
    assert.equal(started.version, VERSION);
    assert.equal(started.config, cfg);
    // Which engine runs is said at start (SLUICE_ENGINE=re2 runs of the suite see re2 here).
    assert.match(started.detection as string, /^(hyperscan \(Hyperscan [^)]+\)|re2 \([^)]+\)), \d+ rules, 1 threads$/);
    if (process.env.SLUICE_ENGINE === 're2') assert.match(started.detection as string, /^re2 \(SLUICE_ENGINE=re2\)/);
    // A fresh data_dir has no compiled-rules cache yet; RE2 has nothing to cache.
    assert.equal(started.rules_compiled, process.env.SLUICE_ENGINE === 're2' || !hyperscanAvailable() ? 'uncached' : 'compile');
    const rules = Number(/(\d+) rules/.exec(started.detection as string)![1]);

    // A bad pack is refused and the running rules stay; a good one is swapped in.
    writeFileSync(join(rulesDir, 'mine.yaml'), pack('PROJECT-(?=X)'));
    r.child.kill('SIGHUP');
    const refused = await waitForLog(r, 'reload refused; the running version stays', 60_000);
    assert.equal(refused.trigger, 'SIGHUP');
    assert.equal(refused.code, 'SLUICE_RULE_INVALID');
    assert.match(refused.error as string, /mine\.yaml:\d+: rules\[0\]\(project-codename\)\.pattern: lookahead/);
    writeFileSync(join(rulesDir, 'mine.yaml'), pack('PROJECT-[A-Z]{4}') + `  - id: other-codename\n    category: other\n    severity: low\n    pattern: 'ORCA-[0-9]{3}'\n`);
    r.child.kill('SIGHUP');
    const reloaded = await waitForLog(r, 'reloaded', 60_000);
    assert.equal(reloaded.rules, rules + 1);
    assert.match(reloaded.policy_version as string, /^[0-9a-f]{16}$/);
    const gateway = started.gateway as string;
    const admin = started.admin as string;
    assert.match(gateway, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(started.forward_proxy as string, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(new URL(gateway).port, '0');

    const health = await fetch(`${admin}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`${admin}/readyz`);
    assert.equal(ready.status, 200);
    await ready.arrayBuffer();

    const openai = new OpenAI({ baseURL: `${gateway}/openai/v1`, apiKey: 'sk-cli', maxRetries: 0, timeout: 5000 });
    const reply = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'from the cli' }] });
    assert.equal(reply.choices[0]?.message.content, mockReplyText('from the cli'));
    assert.equal(mock.requests.at(-1)?.headers.authorization, 'Bearer sk-cli');

    // The CA was created on this first start; curl trusting it goes through the forward proxy's interception.
    assert.equal(started.ca, join(dir, 'sluice-data', 'ca', 'ca.pem'));
    const viaProxy = await curlThrough(started.forward_proxy as string, [
      '--cacert', started.ca as string,
      'https://api.openai.com/v1/chat/completions',
      '-H', 'content-type: application/json',
      '--data-binary', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'via https_proxy' }] }),
    ]);
    assert.equal(viaProxy.status, 200, viaProxy.stderr);
    assert.equal(JSON.parse(viaProxy.body).choices[0].message.content, mockReplyText('via https_proxy'));

    r.child.kill('SIGTERM');
    assert.equal(await r.exited, 0, r.stderr());
    const msgs = logLines(r.stderr()).map((l) => l.msg);
    assert.deepEqual(msgs.slice(-2), ['draining', 'stopped']);
    assert.equal(logLines(r.stderr()).find((l) => l.msg === 'draining')?.signal, 'SIGTERM');
  } finally {
    if (r.child.exitCode === null) r.child.kill('SIGKILL');
  }
});

test('SLUICE_CONFIG names the file; SIGTERM drains an in-flight stream before exiting 0', async () => {
  const cfg = writeConfig('env.yaml', goodConfig());
  const r = spawnCli(['start'], cleanEnv({ SLUICE_CONFIG: cfg }));
  try {
    const started = await waitForLog(r, 'sluice started');
    assert.equal(started.config, cfg);
    const gateway = started.gateway as string;
    assert.notEqual(new URL(gateway).port, '8080', 'ports come from the file, not the embedded defaults');

    const res = await fetch(`${gateway}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mock-behavior': 'slow', 'x-mock-chunks': '12' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'drain' }], stream: true }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    r.child.kill('SIGTERM');
    const draining = await waitForLog(r, 'draining');
    assert.equal(draining.in_flight, 1);
    assert.equal(draining.grace_ms, 3000);

    let text = '';
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    assert.match(text, /data: \[DONE\]/, 'the stream in flight at SIGTERM completed');
    assert.equal(await r.exited, 0, r.stderr());
    assert.equal(logLines(r.stderr()).at(-1)?.msg, 'stopped');
  } finally {
    if (r.child.exitCode === null) r.child.kill('SIGKILL');
  }
});

test('a second signal during the drain exits 1 at once', async () => {
  const cfg = writeConfig('twice.yaml', goodConfig());
  const r = spawnCli(['start', '--config', cfg]);
  try {
    const started = await waitForLog(r, 'sluice started');
    const res = await fetch(`${started.gateway as string}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mock-behavior': 'slow', 'x-mock-chunks': '200' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hold' }], stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    r.child.kill('SIGINT');
    await waitForLog(r, 'draining');
    const t0 = Date.now();
    r.child.kill('SIGINT');
    assert.equal(await r.exited, 1);
    assert.ok(Date.now() - t0 < 2000, 'did not wait for the grace period');
    assert.ok(logLines(r.stderr()).some((l) => l.msg === 'second signal, exiting now'));
    await reader.cancel().catch(() => undefined);
  } finally {
    if (r.child.exitCode === null) r.child.kill('SIGKILL');
  }
});

test('reload: a config edit takes effect within 2 s under load with no failed request; a bad edit is refused; POST /admin/reload', async () => {
  const base = `listen: {proxy: 127.0.0.1:0, forward: 127.0.0.1:0, admin: 127.0.0.1:0}\n` +
    `upstreams:\n  api.openai.com: ${mock.url}\n  api.deepseek.com: ${mock.url}\n` +
    `destinations: { sanctioned: [openai] }\ndetect: { enabled: false }\n`;
  const policy = (unsanctioned: string) => `policy: { mode: enforce, unsanctioned: ${unsanctioned} }\n`;
  const cfg = writeConfig('reload.yaml', base + policy('alert'));
  const r = spawnCli(['start', '--config', cfg]);
  try {
    const started = await waitForLog(r, 'sluice started', 60_000);
    const gateway = started.gateway as string;
    const admin = started.admin as string;
    const chat = (provider: string) =>
      fetch(`${gateway}/${provider}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
      }).then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      });
    assert.equal(await chat('deepseek'), 200, 'unsanctioned is only an alert at first');

    // Load on a sanctioned route for the whole test: no reload may fail a request.
    let stop = false;
    const statuses: number[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      while (!stop) statuses.push(await chat('openai').catch(() => -1));
    });

    const t0 = Date.now();
    writeFileSync(cfg, base + policy('block'));
    let blockedAfter = -1;
    while (Date.now() - t0 < 10_000) {
      if ((await chat('deepseek')) === 403) {
        blockedAfter = Date.now() - t0;
        break;
      }
      await new Promise((res) => setTimeout(res, 25));
    }
    assert.ok(blockedAfter >= 0, 'the edit took effect');
    assert.ok(blockedAfter <= 2000, `the edit took ${blockedAfter} ms to take effect`);
    const first = await waitForLog(r, 'reloaded');
    assert.equal(first.trigger, 'file change');

    // A broken edit is refused and the running version stays.
    writeFileSync(cfg, base + policy('block') + 'polcy: {}\n');
    const refused = await waitForLog(r, 'reload refused; the running version stays');
    assert.equal(refused.code, 'SLUICE_CONFIG_INVALID');
    assert.match(refused.error as string, /polcy: unknown key/);
    assert.equal(await chat('deepseek'), 403);

    // Fixed by hand, applied through the admin listener.
    writeFileSync(cfg, base + policy('allow'));
    await waitForLog(r, 'reloaded', 5000, 2);
    const res = await fetch(`${admin}/admin/reload`, { method: 'POST' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; policy_version: string };
    assert.equal(body.status, 'reloaded');
    assert.match(body.policy_version, /^[0-9a-f]{16}$/);
    assert.notEqual(body.policy_version, first.policy_version);
    assert.equal(await chat('deepseek'), 200);

    stop = true;
    await Promise.all(workers);
    assert.ok(statuses.length > 20, `load ran (${statuses.length} requests)`);
    assert.deepEqual([...new Set(statuses)], [200], 'no request failed during reloads');
  } finally {
    if (r.child.exitCode === null) r.child.kill('SIGKILL');
  }
});
