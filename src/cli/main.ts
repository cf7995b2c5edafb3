// The `sluice` command: `start` runs the appliance; `--help` and `--version` describe it.
// Later subcommands (scan, rules, verify, tail, report, ca) register in COMMANDS.

import { readFileSync, watch } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { loadConfigFile } from '../config/load';
import { defaultConfig, type Config } from '../config/schema';
import { SluiceError } from '../errors';
import { log } from '../log';

const HELP = `sluice — AI egress inspection proxy

Usage:
  sluice start [--config FILE]   run the proxy (gateway, forward proxy, admin)
  sluice scan [FILE…|-] [--rules DIR] [--json]
                                 scan files (or stdin: '-' or no FILE) for sensitive data
  sluice rules test [DIR]        check every rule's examples (built-ins, plus DIR's packs)
  sluice ca init [--config FILE] [--force]
                                 create the interception CA under data_dir (EC P-256)
  sluice ca path [--config FILE] print the CA certificate's path, for clients to trust
  sluice tail [-f] [DIR] [--filter FIELD=VALUE]... [--json]
                                 print audit records (DIR default ./sluice-data/audit)
  sluice verify [DIR] [--pubkey FILE]...
                                 check the audit log end to end (DIR default ./sluice-data/audit)
  sluice verify --proof SEQ|EXCHANGE_ID [DIR]
                                 print one record's inclusion proof (JSON)
  sluice verify --check-proof FILE [--pubkey FILE]... [DIR]
                                 check an inclusion proof offline
  sluice audit rotate-key [--config FILE]
                                 new audit signing key; the next start hands over to it
  sluice report [DIR] [--since T] [--until T] [--format md|json|html] [--pubkey FILE]...
                                 the period's report from the audit log (DIR default ./sluice-data/audit)
  sluice demo [--config FILE] [--duration S]
                                 run Sluice with a mock provider and synthetic traffic; watch the dashboard
  sluice --help                  show this help
  sluice --version               print the version

The config file may also be given as SLUICE_CONFIG. Without one, Sluice runs on
embedded defaults: gateway on 127.0.0.1:8080, forward proxy on 127.0.0.1:8081,
admin (/healthz, /readyz) on 127.0.0.1:9090, data under ./sluice-data.

Point an SDK at the gateway, e.g. OPENAI_BASE_URL=http://127.0.0.1:8080/openai/v1

scan uses the built-in rule packs plus any --rules DIR (repeatable; a rule there
replaces the built-in of the same id). It prints one line per finding,
FILE:OFFSET RULE SEVERITY CONFIDENCE "MASKED", the value with its middle masked;
--json prints one object per line instead: {"rule","category","severity",
"confidence","start","end","masked"} (+ "count" for score rules such as code
languages, + "file" when given several inputs). Offsets are in characters
(UTF-16 code units). The engine in use goes to stderr; SLUICE_ENGINE=re2 forces
the RE2 engine.
Exit status of scan: 0 no findings, 1 findings, 2 usage or rule/file error.

rules test loads the built-in packs (and DIR's, when given) and checks each rule's
examples: every match example must be found by that rule, every no_match example
not. It prints one line per failure and a summary, N rules, M examples, K failures.
Exit status of rules test: 0 all hold, 1 any failure, 2 usage or invalid pack.

verify recomputes every record's hash and the hash chain between records, each
batch's Merkle root, the chain between checkpoints and every checkpoint's Ed25519
signature. It trusts the --pubkey keys, or without one the .pub files in DIR/keys
(and says so), plus keys handed over by a key_rotation under a trusted key. It
prints one line per problem, FILE:LINE seq N: KIND: MESSAGE, then a summary.
Exit status of verify: 0 intact, 1 damaged, 2 usage error or the log unreadable.

tail prints every record in sequence order, one line each: time, #seq, type,
decision, subject, route, provider/host, model, status, findings and latency,
whichever the record has; --json prints the record lines as written. Checkpoint
lines are not printed. --filter FIELD=VALUE (repeatable, all must hold) keeps
records whose dotted FIELD equals VALUE, e.g. --filter identity.subject=alice.
-f starts at the live segment and follows it across rotation until interrupted.

report reads the audit log alone and prints, for records with since <= time < until,
the six signals (destinations, PII rate per route, cross-region share, failure rate
by destination, latency percentiles, unauthorised attempts), top identities and
findings, blocked attempts, alerts, and the log's verification result (--pubkey
keys, else DIR/keys). T is an ISO 8601 date or time (2026-11-01, 2026-11-26T10:00Z)
or a duration back from now (30m, 24h, 7d); both default to unbounded.
Exit status of report: 0 verified intact, 1 produced but the log did not verify,
2 usage error or the log unreadable.

demo starts Sluice in front of a built-in mock provider (data under
./sluice-demo-data, admin on 127.0.0.1:9090) and sends varied traffic through it
until Ctrl-C, or for --duration seconds. --config FILE overrides the demo's
settings key by key (listen addresses, data_dir, policy).
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

interface Parsed {
  command: string;
  config?: string;
  /** scan: inputs ('-' is stdin), extra rule directories, JSON output. rules: [subcommand, DIR?]. */
  files: string[];
  rules: string[];
  json: boolean;
  force: boolean;
}

function parseArgs(argv: string[]): Parsed {
  const out: Parsed = { command: '', files: [], rules: [], json: false, force: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (out.command === 'scan') {
      if (a === '--json') {
        out.json = true;
        continue;
      }
      if (a === '--rules') {
        const v = argv[++i];
        if (!v) throw usage('--rules needs a directory');
        out.rules.push(v);
        continue;
      }
      if (a.startsWith('--rules=')) {
        out.rules.push(a.slice('--rules='.length));
        continue;
      }
      if (a === '-' || !a.startsWith('-')) {
        out.files.push(a);
        continue;
      }
    }
    if ((out.command === 'rules' || out.command === 'ca') && !a.startsWith('-')) {
      out.files.push(a);
      continue;
    }
    if (out.command === 'tail' && a !== '--help' && a !== '-h') {
      out.files.push(a); // parsed by parseTailArgs
      continue;
    }
    if ((out.command === 'verify' || out.command === 'audit' || out.command === 'report' || out.command === 'demo') && a !== '--help' && a !== '-h') {
      out.files.push(a); // parsed in cli/audit.ts, cli/report.ts, cli/demo.ts
      continue;
    }
    if (out.command === 'ca' && a === '--force') {
      out.force = true;
      continue;
    }
    if (a === '--help' || a === '-h') out.command = 'help';
    else if (a === '--version' || a === '-v') out.command = 'version';
    else if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (!v) throw usage('--config needs a file name');
      out.config = v;
    } else if (a.startsWith('--config=')) out.config = a.slice('--config='.length);
    else if (a.startsWith('-')) throw usage(`unknown option ${a}`);
    else if (!out.command) out.command = a;
    else throw usage(`unexpected argument ${a}`);
  }
  return out;
}

function usage(message: string): Error {
  return Object.assign(new Error(`${message}\n\n${HELP}`), { exitCode: 2 });
}

/**
 * Calls `onChange` shortly after `file` changes. Watches the directory, not the file: editors and config
 * management replace files by rename, which a watch on the old inode would miss.
 */
function watchFile(file: string, onChange: () => void): void {
  const dir = dirname(resolve(file));
  const name = basename(file);
  let timer: NodeJS.Timeout | null = null;
  try {
    const w = watch(dir, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (timer) clearTimeout(timer);
      // Writes arrive in pieces; wait for the burst to end (well inside the 2 s a change must take).
      timer = setTimeout(onChange, 250);
    });
    w.on('error', (err) => log('warn', 'config file watch stopped; use SIGHUP or POST /admin/reload', { error: err.message }));
    w.unref();
  } catch (err) {
    log('warn', 'cannot watch the config file; use SIGHUP or POST /admin/reload', { error: (err as Error).message });
  }
}

async function start(configPath: string | undefined): Promise<void> {
  const path = configPath ?? process.env.SLUICE_CONFIG;
  const config: Config = path ? await loadConfigFile(path) : defaultConfig();
  // A request may fail, the process may not: anything that escapes is logged and serving goes on.
  process.on('uncaughtException', (err) => log('error', 'uncaught exception', { code: 'SLUICE_INTERNAL', error: err.stack ?? String(err) }));
  process.on('unhandledRejection', (err) => log('error', 'unhandled rejection', { code: 'SLUICE_INTERNAL', error: String(err) }));
  // Loaded here so --help and --version work even if the native server module cannot load.
  const { startSluice } = await import('../sluice.js');
  const { chooseEngine } = await import('../detect/engine.js');
  const engine = config.detect.enabled ? chooseEngine() : undefined;
  const sluice = await startSluice({ config, ...(path ? { reloadConfig: () => loadConfigFile(path) } : {}) });
  // SIGHUP, an edit of the config file, or POST /admin/reload: policy and rule packs reload atomically; a bad
  // file is refused, logged, and the running version stays.
  const reload = (trigger: string) =>
    sluice.reload().then(
      (r) => log('info', 'reloaded', { trigger, ...r }),
      (err: unknown) => log('error', 'reload refused; the running version stays', { trigger, code: (err as SluiceError).code, error: (err as Error).message }),
    );
  process.on('SIGHUP', () => void reload('SIGHUP'));
  if (path) watchFile(path, () => void reload('file change'));
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      log('warn', 'second signal, exiting now', { signal: sig });
      process.exit(1);
    }
    log('info', 'draining', { signal: sig, in_flight: sluice.relay.inFlight, grace_ms: config.limits.shutdown_grace_ms });
    sluice.stop().then(
      () => {
        log('info', 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log('error', 'shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Logged last: a supervisor that signals as soon as it reads this line must find the handlers in place.
  log('info', 'sluice started', {
    version: version(),
    config: path ?? '(embedded defaults)',
    gateway: sluice.gatewayUrl,
    forward_proxy: sluice.forwardUrl,
    admin: sluice.adminUrl,
    ...(sluice.ports.transparent ? { transparent: `${config.listen.transparent!.host}:${sluice.ports.transparent}` } : {}),
    ca: sluice.caCert,
    detection: engine ? `${engine.name} (${engine.why}), ${sluice.inspector!.ruleSet.rules.length} rules, ${config.detect.threads} threads` : 'disabled',
    ...(sluice.inspector ? { rules_compiled: sluice.inspector.stats().compiled } : {}),
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function scan(args: Parsed): Promise<void> {
  // Errors in scan exit 2, so 1 always means "findings".
  try {
    const { Detector } = await import('../detect/scan.js');
    const { BUILTIN_RULES_DIR } = await import('../detect/rules.js');
    const { readFile } = await import('node:fs/promises');
    const inputs = args.files.length > 0 ? args.files : ['-'];
    const { chooseEngine } = await import('../detect/engine.js');
    const engine = chooseEngine();
    const detector = await Detector.create([BUILTIN_RULES_DIR, ...args.rules], { prefer: engine.name });
    process.stderr.write(`engine: ${engine.name} (${engine.why})\n`);
    let found = 0;
    for (const input of inputs) {
      let text: string;
      try {
        text = input === '-' ? await readStdin() : await readFile(input, 'utf8');
      } catch (err) {
        throw new Error(`cannot read ${input}: ${(err as Error).message}`, { cause: err });
      }
      const name = input === '-' ? '<stdin>' : input;
      for (const f of detector.scan(text)) {
        found++;
        if (args.json) {
          const o: Record<string, unknown> = {
            rule: f.rule,
            category: f.category,
            severity: f.severity,
            confidence: f.confidence,
            start: f.start,
            end: f.end,
            masked: f.masked,
          };
          if (f.count !== undefined) o.count = f.count;
          if (inputs.length > 1) o.file = name;
          process.stdout.write(`${JSON.stringify(o)}\n`);
        } else {
          process.stdout.write(`${name}:${f.start} ${f.rule} ${f.severity} ${f.confidence} ${JSON.stringify(f.masked)}\n`);
        }
      }
    }
    process.exitCode = found > 0 ? 1 : 0;
  } catch (err) {
    throw Object.assign(err as Error, { exitCode: 2 });
  }
}

async function rules(args: Parsed): Promise<void> {
  const [sub, dir, ...extra] = args.files;
  if (sub !== 'test') throw usage(sub ? `unknown rules subcommand "${sub}"` : 'rules needs a subcommand: test');
  if (extra.length > 0) throw usage(`unexpected argument ${extra[0]}`);
  // Invalid packs exit 2, so 1 always means "an example failed".
  try {
    const { BUILTIN_RULES_DIR, loadRulePacks } = await import('../detect/rules.js');
    const { runRuleExamples } = await import('../detect/scan.js');
    const ruleSet = await loadRulePacks(dir ? [BUILTIN_RULES_DIR, dir] : [BUILTIN_RULES_DIR]);
    const failures = runRuleExamples(ruleSet);
    for (const f of failures) {
      process.stdout.write(`rule ${f.rule}: example ${JSON.stringify(f.example)} expected ${f.kind === 'match' ? 'match' : 'no match'}\n`);
    }
    const examples = ruleSet.rules.reduce((n, r) => n + r.examples.match.length + r.examples.no_match.length, 0);
    process.stdout.write(`${ruleSet.rules.length} rules, ${examples} examples, ${failures.length} failures\n`);
    process.exitCode = failures.length > 0 ? 1 : 0;
  } catch (err) {
    throw Object.assign(err as Error, { exitCode: 2 });
  }
}

/**
 * `ca init` creates the CA (refusing to replace one without --force) and prints its certificate path;
 * `ca path` prints that path, or fails when there is no CA yet. Clients trust that file (NODE_EXTRA_CA_CERTS,
 * SSL_CERT_FILE, REQUESTS_CA_BUNDLE or the system store).
 */
async function ca(args: Parsed): Promise<void> {
  const [sub, ...extra] = args.files;
  if (sub !== 'init' && sub !== 'path') throw usage(sub ? `unknown ca subcommand "${sub}"` : 'ca needs a subcommand: init or path');
  if (extra.length > 0) throw usage(`unexpected argument ${extra[0]}`);
  if (args.force && sub !== 'init') throw usage('--force applies to ca init only');
  const path = args.config ?? process.env.SLUICE_CONFIG;
  const config: Config = path ? await loadConfigFile(path) : defaultConfig();
  const { caPaths, initCa, CertificateAuthority } = await import('../tls/ca.js');
  if (sub === 'init') {
    const paths = await initCa(config.data_dir, { force: args.force });
    process.stderr.write(`created a CA; its key is ${paths.key} (mode 0600). Clients trust the certificate:\n`);
    process.stdout.write(`${paths.cert}\n`);
    return;
  }
  // An enterprise CA from the config is what clients trust then; otherwise Sluice's own under data_dir.
  const { ca_cert, ca_key } = config.tls;
  const paths = ca_cert && ca_key ? { cert: resolve(ca_cert), key: resolve(ca_key) } : caPaths(config.data_dir);
  await CertificateAuthority.load(paths, { chain: config.tls.ca_chain }); // proves the pair loads before anyone is told to trust it
  process.stdout.write(`${paths.cert}\n`);
}

export async function main(argv: string[]): Promise<void> {
  try {
    const args = parseArgs(argv);
    switch (args.command) {
      case 'help':
      case '':
        process.stdout.write(HELP);
        if (!args.command) process.exitCode = 2;
        return;
      case 'version':
        process.stdout.write(`${version()}\n`);
        return;
      case 'start':
        await start(args.config);
        return;
      case 'scan':
        await scan(args);
        return;
      case 'rules':
        await rules(args);
        return;
      case 'ca':
        await ca(args);
        return;
      case 'tail': {
        const { parseTailArgs, tail } = await import('../audit/tail.js');
        let opts;
        try {
          opts = parseTailArgs(args.files);
        } catch (err) {
          throw usage((err as Error).message);
        }
        await tail(opts);
        return;
      }
      case 'verify':
        await (await import('./audit.js')).verifyCommand(args.files);
        return;
      case 'audit':
        await (await import('./audit.js')).auditCommand(args.files);
        return;
      case 'report':
        await (await import('./report.js')).reportCommand(args.files, version());
        return;
      case 'demo':
        await (await import('./demo.js')).demoCommand(args.files);
        return;
      default:
        throw usage(`unknown command "${args.command}"`);
    }
  } catch (err) {
    const code = err instanceof SluiceError ? err.code : undefined;
    process.stderr.write(`sluice: ${code ? `${code}: ` : ''}${(err as Error).message}\n`);
    process.exitCode = (err as { exitCode?: number }).exitCode ?? 1;
  }
}
