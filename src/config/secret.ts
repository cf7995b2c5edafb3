// Reads a secret (a bearer token) from a file the configuration names, once at start.
// The error names the config key and the file, so the operator knows which setting to fix.

import { readFile } from 'node:fs/promises';
import { SluiceError } from '../errors';

/** The file's content without surrounding whitespace (a trailing newline is usual); empty is an error. */
export async function readSecretFile(file: string, key: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${key}: ${file} cannot be read (${(err as Error).message})`, { cause: err });
  }
  const secret = text.trim();
  if (secret === '') throw new SluiceError('SLUICE_CONFIG_INVALID', `${key}: ${file} is empty; put the token in it`);
  return secret;
}
