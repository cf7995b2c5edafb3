// What a finding may say about the value it found: a masked form for people and an HMAC digest for correlation.
// The raw value stays inside the scan call unless the caller asks for it.

import { createHmac, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SluiceError } from '../errors';

/** Longest run of mask characters; longer values (a PEM block, a code span) are elided with "…". */
const MAX_STARS = 24;

/**
 * Keeps up to 4 characters at each end (a quarter of the value at most, so short values stay mostly hidden):
 * `4111111111111111` → `4111********1111`, `536-22-1987` → `53*******87`. Counts code points, not UTF-16 units.
 */
export function maskValue(value: string): string {
  // Long values (a code region can be megabytes) need only their ends: no need to split them into code points.
  if (value.length > 4 * MAX_STARS) {
    const head = Array.from(value.slice(0, 8)).slice(0, 4).join('');
    const tail = Array.from(value.slice(-8)).slice(-4).join('');
    return head + '*'.repeat(MAX_STARS) + '…' + tail;
  }
  const cps = Array.from(value);
  const keep = Math.min(4, Math.floor(cps.length / 4));
  const middle = cps.length - 2 * keep;
  const stars = '*'.repeat(Math.min(middle, MAX_STARS)) + (middle > MAX_STARS ? '…' : '');
  return cps.slice(0, keep).join('') + stars + cps.slice(cps.length - keep).join('');
}

/** Hex HMAC-SHA256 of the value: equal values give equal digests under one key, and the key never leaves data_dir. */
export function digestValue(key: Buffer, value: string): string {
  return createHmac('sha256', key).update(value, 'utf8').digest('hex');
}

export const FINDING_KEY_FILE = 'finding-hmac.key';

/**
 * Reads the digest key from `<dataDir>/finding-hmac.key`, creating it (32 random bytes, mode 0600) on first run.
 * A key that exists but is unreadable or too short is an error, never silently replaced: replacing it would break
 * correlation with every digest already in the audit log.
 */
export async function loadFindingKey(dataDir: string): Promise<Buffer> {
  const file = join(dataDir, FINDING_KEY_FILE);
  let key: Buffer;
  try {
    key = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `cannot read the finding digest key ${file}: ${(err as Error).message}`, { cause: err });
    }
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    key = randomBytes(32);
    // Written whole to a private temp file, then linked into place: link fails if the key already exists, so two
    // processes starting together agree on one key, and nobody ever reads a half-written file.
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, key, { mode: 0o600, flag: 'wx' });
      await link(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadFindingKey(dataDir);
      throw new SluiceError('SLUICE_CONFIG_INVALID', `cannot create the finding digest key ${file}: ${(e as Error).message}`, { cause: e });
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }
  if (key.length < 32) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `finding digest key ${file} is ${key.length} bytes; expected 32. Restore it from backup, or delete it to start a new key (earlier digests will no longer correlate).`);
  }
  return key;
}
