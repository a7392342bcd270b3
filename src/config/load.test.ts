import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MASK, redact } from '../redact.js';
import { registerUrlPassword } from './load.js';

it('the password of a URL is a secret as the URL parses it: a raw @ in it included', () => {
  registerUrlPassword('postgres://app:ab@cd-url-secret-1@db.example:5432/app');
  assert.equal(redact('echoed: ab@cd-url-secret-1'), `echoed: ${MASK}`);
  assert.equal(redact('echoed: ab'), 'echoed: ab', 'two characters are not masked (they would mask words)');
});

it('and as far as the first @ when the URL does not parse, percent-decoded too', () => {
  registerUrlPassword('postgres://app:p%40ss-word-2@[bad/app');
  assert.equal(redact('p%40ss-word-2 and p@ss-word-2'), `${MASK} and ${MASK}`);
});
