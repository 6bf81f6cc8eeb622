/**
 * Peer data in messages and logs. Whatever a peer sends (a decoded msgpack value: any type,
 * bigint included, nested without end, strings of many megabytes) is shown through these two
 * functions, which never throw and never return more than a bounded amount of text: a
 * description that throws would escape the socket handler and end the process, and one that
 * echoes a 60 MB string would flood the logs.
 */

/** Longest description of a peer value, in characters (enough to recognise it). */
export const DESCRIBE_MAX_CHARS = 80;
/** Longest peer-supplied text (an `error` message, a lane's "how") kept in a log line. */
export const PEER_TEXT_MAX_CHARS = 2000;

/**
 * `text` cut to `max` characters, saying how much was left out. Safe for any input: a
 * non-string is described instead.
 */
export function boundText(text: unknown, max = PEER_TEXT_MAX_CHARS): string {
  if (typeof text !== 'string') return describePeerValue(text);
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/**
 * A short, human-readable description of any value a peer sent: strings quoted, numbers and
 * bigints as numbers (a huge bigint by its size), containers by their type and size. Never
 * throws; at most `max` characters.
 */
export function describePeerValue(value: unknown, max = DESCRIBE_MAX_CHARS): string {
  let text: string;
  try {
    text = describe(value, max);
  } catch {
    text = 'a value that cannot be shown';
  }
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function describe(value: unknown, max: number): string {
  switch (typeof value) {
    case 'string':
      // JSON.stringify only the part shown: quoting a 60 MB string first would copy it.
      return value.length <= max ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'bigint': {
      // Decimal conversion of a bigint of millions of digits takes seconds; hex is linear.
      const hexDigits = (value < 0n ? -value : value).toString(16).length;
      return hexDigits <= 16 ? `${value}n` : `a ${hexDigits * 4}-bit bigint`;
    }
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length} item(s)`;
  if (ArrayBuffer.isView(value)) return `${value.byteLength} bytes of binary data`;
  if (value instanceof Date) return 'a date';
  if (value instanceof Map) return `a map of ${value.size} entries`;
  const keys = Object.keys(value as object);
  const shown = keys.slice(0, 5).map((k) => describe(k, 20));
  return `a map with keys ${shown.join(', ')}${keys.length > 5 ? `, … (${keys.length} keys)` : ''}`;
}
