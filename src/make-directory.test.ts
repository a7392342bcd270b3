import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { makeDirectory } from './make-directory.js';

describe('makeDirectory', () => {
  const root = mkdtempSync(join(tmpdir(), 'sf-mkdir-'));

  it('creates every missing level with the mode, and accepts an existing directory', () => {
    const dir = join(root, 'a', 'b', 'c');
    makeDirectory(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(root, 'a')).mode & 0o777, 0o700);
    makeDirectory(dir);
  });

  it('fails (never spins) where a child cannot be made: under a file, under /proc', () => {
    writeFileSync(join(root, 'file'), '');
    assert.throws(() => makeDirectory(join(root, 'file', 'logs')), { code: 'ENOTDIR' });
    // Node's recursive mkdirSync loops forever on this one.
    assert.throws(() => makeDirectory('/proc/superfasttt-test/logs'), { code: 'ENOENT' });
    rmSync(root, { recursive: true, force: true });
  });
});
