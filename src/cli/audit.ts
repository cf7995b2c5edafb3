// The audit log's commands: `sluice verify` (the whole log, one record's inclusion proof, or a proof's check)
// and `sluice audit rotate-key`. main.ts hands each its arguments as given.

import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfigFile } from '../config/load';
import { defaultConfig } from '../config/schema';
import { DEFAULT_AUDIT_DIR, eachArg, unexpected, usage } from './args';


/** Anything that stops the check itself (unreadable files, bad keys) exits 2, so 1 always means "damaged". */
function cannotCheck(err: unknown): Error {
  return Object.assign(err as Error, { exitCode: 2 });
}

interface VerifyArgs {
  dir: string;
  pubkeys: string[];
  proof?: string;
  checkProof?: string;
}

function parseVerifyArgs(argv: readonly string[]): VerifyArgs {
  const out: VerifyArgs = { dir: DEFAULT_AUDIT_DIR, pubkeys: [] };
  let dir: string | null = null;
  eachArg(argv, (name, value) => {
    if (name === '--pubkey') out.pubkeys.push(value());
    else if (name === '--proof') out.proof = value();
    else if (name === '--check-proof') out.checkProof = value();
    else if (name.startsWith('-') || dir !== null) throw unexpected(name);
    else dir = name;
  });
  if (out.proof !== undefined && out.checkProof !== undefined) throw usage('--proof and --check-proof are separate uses of verify');
  if (dir !== null) out.dir = dir;
  return out;
}

/**
 * `sluice verify [DIR] [--pubkey FILE]...`: exit 0 intact, 1 damaged, 2 when it cannot check.
 * `sluice verify --proof SEQ|EXCHANGE_ID [DIR]` prints an inclusion proof; `--check-proof FILE` checks one.
 */
export async function verifyCommand(argv: readonly string[]): Promise<void> {
  const args = parseVerifyArgs(argv);
  const { readPublicKeyDir, readPublicKeyFile } = await import('../audit/keys.js');
  const { checkProof, proveRecord, verifyLog } = await import('../audit/verify.js');
  const { stat } = await import('node:fs/promises');
  const dir = resolve(args.dir);

  if (args.proof !== undefined) {
    const target = /^\d+$/.test(args.proof) ? Number(args.proof) : args.proof;
    const proof = await proveRecord(dir, target).catch((err: unknown) => {
      throw (err as { code?: string }).code === 'SLUICE_AUDIT_PROOF' ? err : cannotCheck(err);
    });
    process.stdout.write(`${JSON.stringify(proof, null, 2)}\n`);
    return;
  }

  let keys;
  try {
    keys = args.pubkeys.length > 0 ? await Promise.all(args.pubkeys.map((p) => readPublicKeyFile(p))) : await readPublicKeyDir(join(dir, 'keys'));
  } catch (err) {
    throw cannotCheck(err);
  }
  if (keys.length === 0) throw usage(`no public key: pass --pubkey FILE (no .pub files in ${join(dir, 'keys')})`);
  if (args.pubkeys.length === 0) {
    process.stdout.write(
      `note: trusting the public keys found in ${join(dir, 'keys')} (${keys.map((k) => k.key_id).join(', ')}); ` +
        'anyone who can write the log can write there too: pass --pubkey FILE with a key obtained separately\n',
    );
  }

  if (args.checkProof !== undefined) {
    let proof: unknown;
    try {
      proof = JSON.parse(await readFile(args.checkProof, 'utf8'));
    } catch (err) {
      throw cannotCheck(new Error(`cannot read proof ${args.checkProof}: ${(err as Error).message}`, { cause: err }));
    }
    const r = checkProof(proof, keys);
    process.stdout.write(`${r.ok ? 'valid' : 'invalid'}: ${r.message}\n`);
    process.exitCode = r.ok ? 0 : 1;
    return;
  }

  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) throw usage(`no audit directory at ${dir}`);
  let r;
  try {
    r = await verifyLog(dir, { publicKeys: keys });
  } catch (err) {
    throw cannotCheck(err);
  }
  for (const p of r.problems) {
    process.stdout.write(`${join(dir, p.file)}${p.line ? `:${p.line}` : ''}${p.seq !== undefined ? ` seq ${p.seq}` : ''}: ${p.kind}: ${p.message}\n`);
  }
  const pruned = r.pruned.length > 0 ? `, pruned on purpose: ${r.pruned.map((x) => `${x.first_seq}..${x.last_seq}`).join(', ')}` : '';
  const summary = `${r.records} records in ${r.batches} batches, ${r.segments} segments, last seq ${r.last_seq}${pruned}; keys ${r.keys.join(', ')}`;
  process.stdout.write(r.ok ? `intact: ${summary}\n` : `damaged: ${r.problems.length} problem${r.problems.length > 1 ? 's' : ''}; ${summary}\n`);
  process.exitCode = r.ok ? 0 : 1;
}

/** `sluice audit rotate-key [--config FILE]`: a new signing key; the next writer start hands over to it. */
export async function auditCommand(argv: readonly string[]): Promise<void> {
  let configPath = process.env.SLUICE_CONFIG;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      configPath = argv[++i];
      if (!configPath) throw usage('--config needs a file name');
    } else if (a.startsWith('--config=')) configPath = a.slice('--config='.length);
    else if (a.startsWith('-')) throw usage(`unknown option ${a}`);
    else rest.push(a);
  }
  const [sub, ...extra] = rest;
  if (sub !== 'rotate-key') throw usage(sub ? `unknown audit subcommand "${sub}"` : 'audit needs a subcommand: rotate-key');
  if (extra.length > 0) throw usage(`unexpected argument ${extra[0]}`);
  const config = configPath ? await loadConfigFile(configPath) : defaultConfig();
  const { defaultKeyFile, rotateKey } = await import('../audit/keys.js');
  const keyFile = config.audit.key_file ?? defaultKeyFile(config.data_dir);
  const auditDir = config.audit.dir ?? join(config.data_dir, 'audit');
  const r = await rotateKey(keyFile, { auditDir });
  process.stderr.write(
    `rotated the audit signing key ${r.old_key_id} → ${r.new_key_id}. A running Sluice keeps signing with the old key; ` +
      'on its next start it writes a key_rotation record sealed by the old key, then signs with the new one. New public key:\n',
  );
  process.stdout.write(`${r.public_key_file}\n`);
}
