// The README's variable and exit-code tables and .env.example are generated from the schema:
// they must match it, so the documentation cannot drift from what the program accepts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { generated } from '../build/docs.js';

it('README.md and .env.example are up to date with the schema (npm run docs)', () => {
  for (const [file, content] of Object.entries(generated())) {
    assert.equal(
      readFileSync(new URL(`../${file}`, import.meta.url), 'utf8'),
      content,
      `${file} is out of date: run npm run docs`,
    );
  }
});
