// Secrets never reach the output: every registered value, in the encodings a library could echo it
// in, and the password of any URL-looking text. The registry is per process (this file's own).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MASK, redact, registerSecret } from './redact.js';

describe('redact', () => {
  it('masks a registered secret wherever it appears, every occurrence', () => {
    registerSecret('Kx7-registered-Secret');
    assert.equal(
      redact('key=Kx7-registered-Secret\n{"k":"Kx7-registered-Secret"} (Kx7-registered-SecretKx7-registered-Secret)'),
      `key=${MASK}\n{"k":"${MASK}"} (${MASK}${MASK})`,
    );
    assert.equal(redact('nothing secret here'), 'nothing secret here');
  });

  it('masks the percent-encoded form (a URL or query string that embeds it)', () => {
    const secret = 'p@ss w/rd:42?&=';
    registerSecret(secret);
    const encoded = encodeURIComponent(secret);
    assert.equal(encoded, 'p%40ss%20w%2Frd%3A42%3F%26%3D');
    assert.equal(redact(`GET /?token=${encoded} failed`), `GET /?token=${MASK} failed`);
    assert.equal(redact(`password=${secret}`), `password=${MASK}`);
  });

  it('masks the JSON-escaped form (a secret with quotes, backslashes or a tab in a JSON log line)', () => {
    const secret = 'quo"te\\back\tslash';
    registerSecret(secret);
    const line = JSON.stringify({ error: `bad key ${secret}` });
    assert.ok(!line.includes(secret), 'the JSON form differs from the raw one');
    assert.equal(redact(line), JSON.stringify({ error: `bad key ${MASK}` }));
  });

  it('masks the trimmed value too (the same secret read without its padding)', () => {
    registerSecret('  padded-Secret-77\n');
    assert.equal(redact('value padded-Secret-77 end'), `value ${MASK} end`);
  });

  it('ignores empty and very short values (they would mask ordinary words), from 4 characters on masks', () => {
    registerSecret(undefined);
    registerSecret('');
    registerSecret('abc');
    registerSecret('  xy  '); // 6 characters, but its trimmed form is 2: only the padded form is kept
    assert.equal(redact('abc xy'), 'abc xy');
    assert.equal(redact('[  xy  ]'), `[${MASK}]`);
    registerSecret('wxyz');
    assert.equal(redact('wxyz and wxyzw'), `${MASK} and ${MASK}w`);
  });

  it('masks the longest secret first, so one containing another is masked whole', () => {
    registerSecret('tok9');
    registerSecret('tok9-and-more-of-it');
    assert.equal(redact('a tok9-and-more-of-it b tok9 c'), `a ${MASK} b ${MASK} c`);
  });

  it('masks the password of any URL, registered or not, keeping scheme, user and host', () => {
    assert.equal(
      redact('connect postgres://app:Unregistered1@db:5432/app?sslmode=require failed'),
      `connect postgres://app:${MASK}@db:5432/app?sslmode=require failed`,
    );
    assert.equal(
      redact('smtp://mailer:Pw2@smtp.example:587 and HTTPS://k:Pw3@s3.example/'),
      `smtp://mailer:${MASK}@smtp.example:587 and HTTPS://k:${MASK}@s3.example/`,
    );
    assert.equal(redact('postgresql://:Pw4@db/app'), `postgresql://:${MASK}@db/app`);
    assert.equal(redact('postgres://app:@db/app'), `postgres://app:${MASK}@db/app`);
  });

  it('masks the whole of a registered password that holds an @, inside a URL too', () => {
    registerSecret('ab@cdef-secret');
    const out = redact('connect postgres://u:ab@cdef-secret@db/app failed');
    assert.ok(!out.includes('cdef-secret'), out);
    assert.equal(out, `connect postgres://u:${MASK}@db/app failed`);
  });

  it('leaves URLs without a password, host:port pairs and email addresses alone', () => {
    for (const text of [
      'postgres://app@db:5432/app',
      'https://s3.example:9000/bucket',
      'db.internal:5432',
      'admin@example.com',
      'mailto:admin@example.com',
      'time 12:30 @ noon',
    ])
      assert.equal(redact(text), text);
  });

  it('property: a registered secret never appears in the output, whatever surrounds it', () => {
    const secret = fc.string({ unit: fc.constantFrom(...'AZaz09-_.~!$%&+,;=:/?#[]@ "\\\n'), minLength: 4 });
    const text = fc.string({ unit: fc.constantFrom(...'ab:/@ \n"%'), maxLength: 30 });
    fc.assert(
      fc.property(secret, text, text, (s, before, after) => {
        registerSecret(s);
        const out = redact(before + s + after);
        assert.ok(!out.includes(s), JSON.stringify(out));
        assert.ok(!redact(before + encodeURIComponent(s) + after).includes(encodeURIComponent(s)));
        assert.ok(!redact(JSON.stringify(before + s + after)).includes(JSON.stringify(s).slice(1, -1)));
      }),
      { numRuns: 300 },
    );
  });
});
