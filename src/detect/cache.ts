// On-disk cache of compiled Hyperscan databases, so a restart with unchanged rules skips the multi-second compile.
// Keyed by everything the compiled bytes depend on; a missing, stale or unreadable entry just means compiling.

import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8';
import { hyperscanVersion } from './hyperscan';
import type { RuleSet } from './rules';
import type { DetectorPrebuilt } from './scan';

/**
 * The entry's file name for a rule set: SHA-256 over the Hyperscan version, the CPU (a database is compiled for
 * the host's instruction set) and, in order, each rule's pattern, flags and engine role.
 */
export function cacheKey(ruleSet: RuleSet): string {
  const h = createHash('sha256');
  h.update(`v1\0${hyperscanVersion()}\0${process.arch}\0${cpus()[0]?.model ?? ''}\0`);
  for (const r of ruleSet.rules) h.update(`${r.pattern}\0${r.caseless ? 'i' : ''}${r.minCount !== undefined ? 's' : ''}\0`);
  return `hyperscan-${h.digest('hex').slice(0, 32)}.db`;
}

/** The cached compiled engines, or undefined when there is no usable entry. */
export async function readCached(dir: string, key: string): Promise<DetectorPrebuilt | undefined> {
  try {
    const v = v8Deserialize(await readFile(join(dir, key))) as DetectorPrebuilt;
    return v && typeof v === 'object' && v.main && Array.isArray(v.main.widths) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Writes an entry atomically (temp file + rename), so a crash mid-write never leaves a torn entry behind. */
export async function writeCached(dir: string, key: string, prebuilt: DetectorPrebuilt): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `${key}.${process.pid}.tmp`);
  await writeFile(tmp, v8Serialize(prebuilt), { mode: 0o600 });
  await rename(tmp, join(dir, key));
}
