// Shared assertions for validator tests: exact valid/invalid outcomes, with the reason when one is expected.
// Kept tiny so each test reads as a table of inputs and verdicts.

import assert from 'node:assert/strict';
import type { ValidationResult } from '../../../src/detect/validators/index.js';

export function accepts(r: ValidationResult, label: string): void {
  assert.equal(r.valid, true, `${label}: expected valid, got ${JSON.stringify(r)}`);
  assert.equal(typeof r.confidence, 'number', `${label}: confidence missing`);
  assert.ok(r.confidence! >= 0 && r.confidence! <= 1, `${label}: confidence out of range`);
}

export function rejects(r: ValidationResult, label: string, reason?: string): void {
  assert.equal(r.valid, false, `${label}: expected invalid, got ${JSON.stringify(r)}`);
  if (reason !== undefined) assert.equal(r.reason, reason, `${label}: reason`);
}
