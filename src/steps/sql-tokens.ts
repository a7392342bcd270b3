/**
 * PostgreSQL's SQL, read as tokens: enough to know what a migration creates (the tables, triggers,
 * rules and policies of schema-owner.ts, the tables of migration-plan.ts) without running it.
 */

export interface Token {
  kind: 'word' | 'quoted' | 'string' | 'punct';
  /** word: lowercased (as PostgreSQL folds it); quoted identifier: as written; string: its content. */
  value: string;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;

/** A dollar-quote's opening tag: $$ or $name$. */
const DOLLAR_TAG = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/;

/** Statements of an SQL script as tokens: comments dropped, strings and quoted identifiers kept whole. */
export function statements(sql: string): Token[][] {
  const out: Token[][] = [];
  let current: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charAt(i);
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      // Block comments nest in PostgreSQL.
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      }
    } else if (c === "'" || ((c === 'E' || c === 'e') && sql[i + 1] === "'")) {
      const escapes = c !== "'";
      i += escapes ? 2 : 1;
      let value = '';
      while (i < n) {
        if (escapes && sql[i] === '\\') {
          value += sql.slice(i, i + 2);
          i += 2;
        } else if (sql[i] === "'" && sql[i + 1] === "'") {
          value += "'";
          i += 2;
        } else if (sql[i] === "'") {
          i++;
          break;
        } else value += sql[i++];
      }
      current.push({ kind: 'string', value });
    } else if (c === '"') {
      let value = '';
      i++;
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (sql[i] === '"') {
          i++;
          break;
        } else value += sql[i++];
      }
      current.push({ kind: 'quoted', value });
    } else if (c === '$' && DOLLAR_TAG.test(sql.slice(i, i + 66))) {
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 66))?.[0] ?? '$$';
      const end = sql.indexOf(tag, i + tag.length);
      const stop = end < 0 ? n : end;
      current.push({ kind: 'string', value: sql.slice(i + tag.length, stop) });
      i = end < 0 ? n : end + tag.length;
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(sql.charAt(j))) j++;
      current.push({ kind: 'word', value: sql.slice(i, j).toLowerCase() });
      i = j;
    } else if (c === ';') {
      if (current.length > 0) out.push(current);
      current = [];
      i++;
    } else {
      current.push({ kind: 'punct', value: c });
      i++;
    }
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Reads a possibly qualified name at `i`; returns its last part (migrations never qualify) and where it ends. */
export function nameAt(tokens: Token[], i: number): { name: string; next: number } | undefined {
  const first = tokens[i];
  if (!first || (first.kind !== 'word' && first.kind !== 'quoted')) return undefined;
  let name = first.value;
  let next = i + 1;
  for (
    let part = tokens[next + 1];
    tokens[next]?.value === '.' && tokens[next]?.kind === 'punct';
    part = tokens[next + 1]
  ) {
    if (part?.kind !== 'word' && part?.kind !== 'quoted') break;
    name = part.value;
    next += 2;
  }
  return { name, next };
}
