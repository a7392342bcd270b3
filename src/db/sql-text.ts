/**
 * Quotes an identifier as PostgreSQL's quote_ident does for any name: in double quotes, inner
 * double quotes doubled. Used for the SQL we print for the operator to run, and for the DDL that
 * cannot take parameters (CREATE ROLE, GRANT, DROP SCHEMA: identifiers, not values), where the names
 * come from our own validated tenant names; values are always bound as parameters.
 */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
