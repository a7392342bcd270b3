// The supported range of PostgreSQL majors, as a pure function (test/versions.test.ts runs the servers).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  POSTGRES_MAX_SUPPORTED,
  POSTGRES_MIN_SUPPORTED,
  serverMajor,
  unsupportedServerWarning,
} from './server-version.js';

describe('supported PostgreSQL versions', () => {
  it('the range is 14 to 18', () => {
    assert.deepEqual([POSTGRES_MIN_SUPPORTED, POSTGRES_MAX_SUPPORTED], [14, 18]);
  });

  it('reads the major from server_version in its usual forms', () => {
    assert.equal(serverMajor('16.14'), 16);
    assert.equal(serverMajor('18beta1'), 18);
    assert.equal(serverMajor('19devel'), 19);
    assert.equal(serverMajor('17.2 (Debian 17.2-1.pgdg120+1)'), 17);
    assert.equal(serverMajor('9.6.24'), 9);
    assert.equal(serverMajor('unknown'), undefined);
  });

  it('no warning from 14 to 18', () => {
    for (const version of ['14.0', '14.23', '15.18', '16.14', '17.10', '18.4', '18beta1'])
      assert.equal(unsupportedServerWarning(version), undefined, version);
  });

  it('warns below and above, naming the version and the range', () => {
    assert.match(
      unsupportedServerWarning('13.23')!,
      /^PostgreSQL 13\.23 is older than the supported versions \(PostgreSQL 14 to 18\)/,
    );
    assert.match(
      unsupportedServerWarning('19.0')!,
      /^PostgreSQL 19\.0 is newer than the supported versions \(PostgreSQL 14 to 18\)/,
    );
    assert.match(unsupportedServerWarning('20devel')!, /PostgreSQL 20devel is newer/);
    assert.match(unsupportedServerWarning('mystery')!, /cannot tell its major version; supported: PostgreSQL 14 to 18/);
  });
});
