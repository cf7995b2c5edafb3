import assert from 'node:assert/strict';
import { test } from 'node:test';
import { uuidv7 } from '../../src/pipeline/exchange';

test('uuidv7 ids are RFC 9562 version 7, unique and sorted by creation', () => {
  const ids = Array.from({ length: 5000 }, () => uuidv7());
  for (const id of ids.slice(0, 50)) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  const future = Date.now() + 3_600_000;
  assert.equal(parseInt(uuidv7(future).replace(/-/g, '').slice(0, 12), 16), future, 'the first 48 bits are the timestamp');
  const a = uuidv7(future);
  assert.ok(uuidv7(future - 5_000) > a, 'a clock step back never makes ids go backwards');
});
