// DER building blocks checked against known encodings and against Node's own certificate parser.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { initCa } from '../../src/tls/ca';
import { certificateSubject, oid, read, time, tlv, uint } from '../../src/tls/der';

test('OIDs, lengths, integers and times encode as DER requires', () => {
  assert.equal(oid('2.5.29.17').toString('hex'), '0603551d11');
  assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  assert.equal(oid('1.3.6.1.5.5.7.3.1').toString('hex'), '06082b06010505070301');
  assert.equal(tlv(0x04, Buffer.alloc(127)).subarray(0, 2).toString('hex'), '047f');
  assert.equal(tlv(0x04, Buffer.alloc(200)).subarray(0, 3).toString('hex'), '0481c8');
  assert.equal(tlv(0x04, Buffer.alloc(300)).subarray(0, 4).toString('hex'), '0482012c');
  assert.equal(uint(Buffer.from([0x80])).toString('hex'), '02020080');
  assert.equal(uint(Buffer.from([0x00, 0x00, 0x7f])).toString('hex'), '02017f');
  assert.equal(time(new Date('2030-01-02T03:04:05Z')).toString('latin1').slice(2), '300102030405Z');
  assert.equal(time(new Date('2051-01-02T03:04:05Z')).toString('latin1').slice(2), '20510102030405Z');
  const el = read(tlv(0x30, Buffer.alloc(300)), 0);
  assert.deepEqual([el.tag, el.start, el.end], [0x30, 4, 304]);
  assert.throws(() => read(Buffer.from([0x30, 0x05, 0x00]), 0), /truncated/);
});

test('certificateSubject returns the subject Name Node parses out of the certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-der-'));
  try {
    const paths = await initCa(dir, { commonName: 'Test CA, with comma' });
    const cert = new X509Certificate(readFileSync(paths.cert));
    const subject = certificateSubject(cert.raw);
    assert.equal(subject[0], 0x30);
    assert.ok(subject.includes(Buffer.from('Test CA, with comma')));
    assert.match(cert.subject, /CN=Test CA\\, with comma/);
    // For a self-signed certificate the issuer bytes are the subject bytes.
    assert.ok(cert.raw.indexOf(subject) !== cert.raw.lastIndexOf(subject));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
