/** Quoting for SQL we print for the operator to run (never for SQL we execute: that is parameterised). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
