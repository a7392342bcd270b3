// The SCRAM-SHA-256 verifier checked against RFC 5802 / 7677 computed independently here (Hi as the
// RFC writes it, not pbkdf2Sync), and against the RFC 7677 exchange; test/provision.test.ts logs in.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { generatePassword, scramVerifier } from './scram.js';

const hmac = (key: Buffer, data: string | Buffer) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((byte, i) => byte ^ (b[i] ?? 0)));

/** RFC 5802 section 2.2: Hi(str, salt, i) = U1 XOR U2 XOR ... XOR Ui, U1 = HMAC(str, salt + INT(1)). */
function hi(password: string, salt: Buffer, iterations: number): Buffer {
  const key = Buffer.from(password, 'utf8');
  let u = hmac(key, Buffer.concat([salt, Buffer.from([0, 0, 0, 1])]));
  let result = u;
  for (let i = 1; i < iterations; i++) {
    u = hmac(key, u);
    result = xor(result, u);
  }
  return result;
}

const VERIFIER = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;

function parse(verifier: string) {
  const match = VERIFIER.exec(verifier);
  assert.ok(match, `not PostgreSQL's SCRAM-SHA-256 format: ${verifier}`);
  const [, iterations = '', salt = '', storedKey = '', serverKey = ''] = match;
  return {
    iterations: Number(iterations),
    salt: Buffer.from(salt, 'base64'),
    storedKey: Buffer.from(storedKey, 'base64'),
    serverKey: Buffer.from(serverKey, 'base64'),
  };
}

describe('scramVerifier', () => {
  it("has PostgreSQL's format: 4096 iterations, a 16-byte salt, 32-byte StoredKey and ServerKey", () => {
    const v = parse(scramVerifier('Correct-Horse-42'));
    assert.equal(v.iterations, 4096);
    assert.equal(v.salt.length, 16);
    assert.equal(v.storedKey.length, 32);
    assert.equal(v.serverKey.length, 32);
  });

  it('StoredKey and ServerKey are those of RFC 5802 for the password, salt and iterations', () => {
    for (const password of ['Correct-Horse-42', generatePassword(), 'a', 'with space and "quotes"']) {
      const v = parse(scramVerifier(password));
      const salted = hi(password, v.salt, v.iterations);
      assert.deepEqual(v.storedKey, sha256(hmac(salted, 'Client Key')), password);
      assert.deepEqual(v.serverKey, hmac(salted, 'Server Key'), password);
      // And not those of another password.
      const other = hi(`${password}x`, v.salt, v.iterations);
      assert.notDeepEqual(v.storedKey, sha256(hmac(other, 'Client Key')));
    }
  });

  it('a fresh random salt each time: the same password never gives the same verifier', () => {
    const verifiers = new Set(Array.from({ length: 20 }, () => scramVerifier('same-password')));
    assert.equal(verifiers.size, 20);
  });

  it('the given salt is used as is: deterministic for a fixed salt', () => {
    const salt = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    assert.equal(scramVerifier('pw-1234', salt), scramVerifier('pw-1234', salt));
    assert.deepEqual(parse(scramVerifier('pw-1234', salt)).salt, salt);
  });

  it('verifies the client proof of the RFC 7677 example exchange, and signs as its server does', () => {
    // RFC 7677 section 3: user "user", password "pencil".
    const v = parse(scramVerifier('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64')));
    const authMessage = [
      'n=user,r=rOprNGfwEbeRWgbNEkqO',
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    ].join(',');
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    // What the server does with only the verifier: recover ClientKey from the proof, hash, compare.
    const clientKey = xor(proof, hmac(v.storedKey, authMessage));
    assert.deepEqual(sha256(clientKey), v.storedKey);
    assert.equal(hmac(v.serverKey, authMessage).toString('base64'), '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    // A proof computed from another password is refused.
    const wrong = parse(scramVerifier('pencil2', v.salt));
    assert.notDeepEqual(sha256(xor(proof, hmac(wrong.storedKey, authMessage))), wrong.storedKey);
  });
});

describe('generatePassword', () => {
  it('24 random bytes by default: 32 characters of the base64url alphabet', () => {
    for (let i = 0; i < 50; i++) assert.match(generatePassword(), /^[A-Za-z0-9_-]{32}$/);
  });

  it('the length follows the byte count (18 bytes: 24 characters), no padding', () => {
    assert.match(generatePassword(18), /^[A-Za-z0-9_-]{24}$/);
    assert.match(generatePassword(16), /^[A-Za-z0-9_-]{22}$/);
    assert.equal(Buffer.from(generatePassword(18), 'base64url').length, 18);
  });

  it('survives URLs, .env files and shells unquoted, and never repeats', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const password = generatePassword();
      assert.equal(encodeURIComponent(password), password);
      assert.doesNotMatch(password, /[\s'"`$\\#=&;|<>()*?[\]{}!~]/);
      seen.add(password);
    }
    assert.equal(seen.size, 200);
  });

  it('uses the whole alphabet (not a narrower one)', () => {
    const chars = new Set(Array.from({ length: 200 }, () => generatePassword()).join(''));
    assert.equal(chars.size, 64);
  });
});
