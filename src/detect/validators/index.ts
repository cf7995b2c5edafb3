// Validator table the detection engine consults after a regex hit, keyed by detector id.
// Re-exports each family so rules and tests can reach helpers (Luhn, entropy, length tables) directly.

import { validateAbaRouting, validateIban } from './bank.js';
import { validateDea, validateNpi } from './health.js';
import { validateNino, validateSin, validateSsn } from './national-id.js';
import { validateE164, validateEmail, validateIpv4, validateIpv6, validateNanpPhone } from './network.js';
import { validateCard } from './payment.js';
import { validateGenericSecret, validateJwt, validatePemPrivateKey } from './secrets.js';
import type { Validator } from './types.js';

export type { Validator, ValidatorContext, ValidationResult } from './types.js';
export { NO_CONTEXT } from './types.js';
export * from './bank.js';
export * from './checksum.js';
export * from './context.js';
export * from './health.js';
export * from './national-id.js';
export * from './network.js';
export * from './payment.js';
export * from './secrets.js';

/** Defaults only: test cards suppressed, 20-char / 3.5-bit secrets. Use cardValidator()/genericSecretValidator() to vary. */
export const VALIDATORS: Readonly<Record<string, Validator>> = Object.freeze({
  'credit-card': (m, c) => validateCard(m, c),
  iban: validateIban,
  'aba-routing': validateAbaRouting,
  'us-ssn': validateSsn,
  'uk-nino': validateNino,
  'ca-sin': validateSin,
  npi: validateNpi,
  'dea-number': validateDea,
  email: validateEmail,
  ipv4: validateIpv4,
  ipv6: validateIpv6,
  'phone-e164': validateE164,
  'phone-nanp': validateNanpPhone,
  jwt: validateJwt,
  'pem-private-key': validatePemPrivateKey,
  'generic-secret': (m, c) => validateGenericSecret(m, c),
});
