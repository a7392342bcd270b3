// Command-line options: what is accepted, and every refusal a ConfigError (exit 2) naming the argument.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseOptions, type OptionSpec } from './cli-options.js';
import { ConfigError } from './errors.js';

const spec: OptionSpec = {
  flags: ['--force', '--json'],
  values: ['--out-dir', '--format'],
  repeatable: ['--tenant'],
};

const parse = (...args: string[]) => parseOptions('provision', args, spec);

function refused(args: string[], message: string | RegExp): void {
  assert.throws(
    () => parse(...args),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `${String(error)} is not a ConfigError`);
      assert.equal(error.exitCode, 2);
      if (typeof message === 'string') assert.equal(error.message, message);
      else assert.match(error.message, message);
      assert.equal(error.fix, 'run with --help to see the commands and their options');
      return true;
    },
  );
}

describe('parseOptions', () => {
  it('nothing given: empty flags, values and lists', () => {
    assert.deepEqual(parse(), { flags: new Set(), values: new Map(), lists: new Map() });
  });

  it('flags, values and repeatable options, in any order', () => {
    const o = parse('--tenant', 'a', '--force', '--out-dir', '/srv/envs', '--tenant', 'b', '--json');
    assert.deepEqual(o.flags, new Set(['--force', '--json']));
    assert.deepEqual(o.values, new Map([['--out-dir', '/srv/envs']]));
    assert.deepEqual(o.lists, new Map([['--tenant', ['a', 'b']]]));
  });

  it('--name=VALUE is --name VALUE, and keeps any = in the value', () => {
    const o = parse('--out-dir=/srv/a=b', '--tenant=a', '--tenant', 'b');
    assert.equal(o.values.get('--out-dir'), '/srv/a=b');
    assert.deepEqual(o.lists.get('--tenant'), ['a', 'b']);
  });

  it('a value option given twice keeps the last value', () => {
    assert.equal(parse('--format', 'text', '--format=json').values.get('--format'), 'json');
  });

  it('a flag given twice is set once', () => {
    assert.deepEqual(parse('--force', '--force').flags, new Set(['--force']));
  });

  it('the argument after --name is its value, even if it starts with a dash', () => {
    assert.equal(parse('--out-dir', '-weird').values.get('--out-dir'), '-weird');
    assert.deepEqual(parse('--tenant', '--force').lists.get('--tenant'), ['--force']);
    assert.deepEqual(parse('--tenant', '--').lists.get('--tenant'), ['--']);
  });

  it('a missing value is refused, naming the option', () => {
    refused(['--out-dir'], '--out-dir needs a value');
    refused(['--force', '--tenant'], '--tenant needs a value');
  });

  it('an empty value is refused, naming the option', () => {
    refused(['--out-dir='], '--out-dir needs a value');
    refused(['--out-dir', ''], '--out-dir needs a value');
    refused(['--tenant', 'a', '--tenant='], '--tenant needs a value');
  });

  it('an unknown option is refused, naming it as typed', () => {
    refused(['--nope'], 'unexpected argument for provision: --nope');
    refused(['--nope=1'], 'unexpected argument for provision: --nope=1');
    refused(['--tenant', 'a', '--Force'], 'unexpected argument for provision: --Force');
  });

  it('a flag given a value is refused', () => {
    refused(['--force=yes'], 'unexpected argument for provision: --force=yes');
    refused(['--force='], 'unexpected argument for provision: --force=');
  });

  it('positional arguments, short options and -- are refused', () => {
    refused(['alpha'], 'unexpected argument for provision: alpha');
    refused(['--force', 'alpha'], 'unexpected argument for provision: alpha');
    refused(['-f'], 'unexpected argument for provision: -f');
    refused(['-fj'], 'unexpected argument for provision: -fj');
    refused(['-'], 'unexpected argument for provision: -');
    refused(['--', '--force'], 'unexpected argument for provision: --');
  });

  it('the first problem is the one reported', () => {
    refused(['--nope', '--out-dir'], 'unexpected argument for provision: --nope');
    refused(['--out-dir=', '--nope'], '--out-dir needs a value');
  });

  it('the command is named in the message', () => {
    assert.throws(() => parseOptions('check', ['--tenant', 'x'], { flags: ['--json'] }), {
      message: 'unexpected argument for check: --tenant',
    });
  });
});
