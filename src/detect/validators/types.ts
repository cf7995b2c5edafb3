// Shapes shared by every validator: what a detection engine hands over after a regex hit, and what it gets back.
// Kept apart from index.ts so family modules can import them without a cycle through the table.

/** Text around the candidate, as the engine saw it (up to ~64 chars each side). */
export interface ValidatorContext {
  before: string;
  after: string;
}

/**
 * `reason` explains a rejection; on acceptance it names what was recognised (brand, country…)
 * so a finding can say more than "matched".
 */
export interface ValidationResult {
  valid: boolean;
  /** 0..1; only set on accepted candidates. */
  confidence?: number;
  reason?: string;
}

export type Validator = (match: string, context: ValidatorContext) => ValidationResult;

export const NO_CONTEXT: ValidatorContext = Object.freeze({ before: '', after: '' });

export function reject(reason: string): ValidationResult {
  return { valid: false, reason };
}
