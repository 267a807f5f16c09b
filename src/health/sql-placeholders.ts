// The gateway's queries mark their one parameter with `?`; node-postgres binds
// `$1`, `$2`. The conversion leaves `?` alone inside string literals, quoted
// identifiers and comments, where it is text, not a parameter.

/** `?` -> `$n` outside quotes and comments; returns the text and how many parameters it has. */
export function toPgPlaceholders(sql: string): { text: string; parameters: number } {
  let text = "";
  let parameters = 0;
  let i = 0;
  while (i < sql.length) {
    const skipped = skipQuotedOrComment(sql, i);
    if (skipped > i) {
      text += sql.slice(i, skipped);
      i = skipped;
    } else if (sql[i] === "?") {
      text += `$${++parameters}`;
      i++;
    } else {
      text += sql[i];
      i++;
    }
  }
  return { text, parameters };
}

/** The index after a literal, identifier or comment starting at `i`, or `i` when none starts there. */
function skipQuotedOrComment(sql: string, i: number): number {
  const two = sql.slice(i, i + 2);
  if (two === "--") return endOf(sql, "\n", i + 2);
  if (two === "/*") return endOf(sql, "*/", i + 2);
  const ch = sql[i];
  // A doubled quote inside a literal ('it''s') closes and reopens it: same result.
  if (ch === "'" || ch === '"') return endOf(sql, ch, i + 1);
  return i;
}

function endOf(sql: string, terminator: string, from: number): number {
  const at = sql.indexOf(terminator, from);
  return at < 0 ? sql.length : at + terminator.length;
}
