// --tenants files as spreadsheets and scripts write them: quoted fields, a byte order mark, CRLF,
// ; as the separator, JSON lines; malformed input refused (exit 2) naming the line.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../errors.js';
import { readTenantsFile } from './tenants-file.js';
import { tenantSpecs } from './tenants.js';

const dir = mkdtempSync(join(tmpdir(), 'sf-tenants-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let count = 0;
function file(content: string, ext = 'csv'): string {
  const path = join(dir, `tenants-${++count}.${ext}`);
  writeFileSync(path, content);
  return path;
}

function refused(path: string, message: RegExp, fix?: RegExp): void {
  assert.throws(
    () => readTenantsFile(path),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `${String(error)} is not a ConfigError`);
      assert.equal(error.exitCode, 2);
      assert.match(error.message, message);
      assert.ok(error.message.includes(path), `${error.message} names the file`);
      if (fix) assert.match(error.fix ?? '', fix);
      return true;
    },
  );
}

const BOM = '\uFEFF';

describe('tenants file: CSV', () => {
  it('a header line and rows; cells trimmed, empty cells left out, blank and # lines skipped', () => {
    const path = file(
      '# tenants of the spring batch\n' +
        'name, email ,first_name,last_name,phone\n\n' +
        'alpha, admin@alpha.example ,Alice,Martin,+33612345678\n   \n' +
        '#beta,x,y,z,\nbeta,admin@beta.example,Bob,Durand,\n',
    );
    assert.deepEqual(readTenantsFile(path), [
      { name: 'alpha', email: 'admin@alpha.example', first_name: 'Alice', last_name: 'Martin', phone: '+33612345678' },
      { name: 'beta', email: 'admin@beta.example', first_name: 'Bob', last_name: 'Durand' },
    ]);
  });

  it('quoted fields hold commas, doubled quotes and line breaks; an unquoted " stays as it is', () => {
    const path = file(
      'name,first_name,last_name\n' +
        'alpha,"Anne, Marie","Martin ""the elder"""\n' +
        'beta,"Two\nlines",Bob "the" Builder\n' +
        'gamma,  "  kept spaces  "  ,x\n',
    );
    assert.deepEqual(readTenantsFile(path), [
      { name: 'alpha', first_name: 'Anne, Marie', last_name: 'Martin "the elder"' },
      { name: 'beta', first_name: 'Two\nlines', last_name: 'Bob "the" Builder' },
      { name: 'gamma', first_name: '  kept spaces  ', last_name: 'x' },
    ]);
  });

  it('a UTF-8 byte order mark before the header is not part of the first column', () => {
    const path = file(`${BOM}name,email\nalpha,admin@alpha.example\n`);
    assert.deepEqual(readTenantsFile(path), [{ name: 'alpha', email: 'admin@alpha.example' }]);
  });

  it('CRLF line endings, inside quoted fields too', () => {
    const path = file('name,last_name\r\nalpha,"Martin,\r\nJr."\r\nbeta,Durand\r\n\r\n');
    assert.deepEqual(readTenantsFile(path), [
      { name: 'alpha', last_name: 'Martin,\r\nJr.' },
      { name: 'beta', last_name: 'Durand' },
    ]);
  });

  it('; as the separator, detected from the header line: commas are then plain characters', () => {
    const path = file(
      'name;email;last_name\nalpha;admin@alpha.example;Martin, Jr.\nbeta;admin@beta.example;"Du;rand"\n',
    );
    assert.deepEqual(readTenantsFile(path), [
      { name: 'alpha', email: 'admin@alpha.example', last_name: 'Martin, Jr.' },
      { name: 'beta', email: 'admin@beta.example', last_name: 'Du;rand' },
    ]);
  });

  it('what a French-locale spreadsheet exports: BOM, ; and CRLF together, quoted header included', () => {
    const path = file(
      `${BOM}"name";"email";"first_name";"last_name";"phone"\r\n` +
        '"alpha";"admin@alpha.example";"Élodie";"Dupont, née Martin";""\r\n',
    );
    assert.deepEqual(readTenantsFile(path), [
      { name: 'alpha', email: 'admin@alpha.example', first_name: 'Élodie', last_name: 'Dupont, née Martin' },
    ]);
  });

  it('a header line alone gives no rows (tenantSpecs then asks for a tenant)', () => {
    assert.deepEqual(readTenantsFile(file('name,email\n')), []);
    assert.throws(() => tenantSpecs([], file('name,email\n')), /invalid tenants/);
  });

  it('the rows reach the tenant specs: a quoted last name with a comma is the super admin last name', () => {
    const [spec] = tenantSpecs([], file('name,email,last_name\r\nalpha,admin@alpha.example,"Martin, Jr."\r\n'));
    assert.equal(spec?.schema, 'tenant_alpha');
    assert.deepEqual(spec?.admin, {
      email: 'admin@alpha.example',
      firstName: undefined,
      lastName: 'Martin, Jr.',
      phone: undefined,
    });
  });
});

describe('tenants file: JSON lines', () => {
  it('one object per line, with a BOM, CRLF, blank and # lines', () => {
    const path = file(
      `${BOM}{"name":"alpha","email":"admin@alpha.example"}\r\n\r\n# later\r\n` +
        '{"name":"beta","s3_access_key":"k","s3_secret_key":"s"}\r\n',
      'jsonl',
    );
    assert.deepEqual(readTenantsFile(path), [
      { name: 'alpha', email: 'admin@alpha.example' },
      { name: 'beta', s3_access_key: 'k', s3_secret_key: 's' },
    ]);
  });

  it('a line that is not JSON, or not an object, is refused naming its line in the file', () => {
    refused(file('{"name":"alpha"}\n\n# comment\n{"name":\n', 'jsonl'), /line 4 of .* is not valid JSON/);
    refused(file('{"name":"alpha"}\nnull\n', 'jsonl'), /line 2 of .* is not a JSON object/);
    refused(file('{"name":"alpha"}\n["beta"]\n', 'jsonl'), /line 2 of .* is not a JSON object/);
  });
});

describe('tenants file: malformed input is refused (exit 2) naming the line', () => {
  it('an unterminated quote: the line where it opens', () => {
    refused(
      file('name,last_name\nalpha,Martin\n\n# next\nbeta,"Durand\ngamma,Petit\n'),
      /line 5 of .* opens a quoted field that is never closed/,
      /close the quote/,
    );
    refused(file('name;last_name\r\n"alpha;Martin\r\n'), /line 2 of .* opens a quoted field that is never closed/);
  });

  it('characters after a closing quote', () => {
    refused(
      file('name,last_name\nalpha,Martin\nbeta,"Du"rand\n'),
      /line 3 of .* has characters after the closing quote/,
    );
  });

  it('a row with more fields than the header (an unquoted separator), or fewer', () => {
    refused(
      file('name,email,last_name\nalpha,admin@alpha.example,Martin\nbeta,admin@beta.example,Martin, Jr.\n'),
      /line 3 of .* has 4 field\(s\), its header line 3/,
      /quote a value that holds the separator ,/,
    );
    refused(
      file('name;email;last_name\r\nalpha;admin@alpha.example\r\n'),
      /line 2 of .* has 2 field\(s\), its header line 3/,
    );
    // The line counted in the file, multi-line quoted fields and comments included.
    refused(
      file('name,last_name\nalpha,"Two\nlines"\n# x\nbeta\n'),
      /line 5 of .* has 1 field\(s\), its header line 2/,
    );
  });

  it('no header line with a name column', () => {
    refused(file('alpha,admin@alpha.example\n'), /has no header line with a name column/, /first line: name,email/);
    refused(file(`${BOM}Name,email\nalpha,x\n`), /has no header line with a name column/);
    refused(file(''), /has no header line with a name column/);
  });

  it('a file that cannot be read', () => {
    refused(join(dir, 'missing.csv'), /cannot read .* \(ENOENT\)/);
  });
});
