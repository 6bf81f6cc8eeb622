/**
 * Packs the byte fields of a batch into one fresh buffer, replacing each with a view of it.
 * Crossing a thread boundary, every separate typed array costs an allocation and a clone; one
 * buffer per batch costs one allocation and is transferred, not copied. Also, the fields are
 * usually views into some larger buffer (a received frame, msgpackr's working buffer) that must
 * neither be cloned whole nor detached.
 */
export function packBytes<T>(items: T[], get: (item: T) => Uint8Array | undefined, set: (item: T, bytes: Uint8Array) => void): ArrayBuffer | undefined {
  let total = 0;
  for (const item of items) total += get(item)?.byteLength ?? 0;
  if (total === 0) return undefined;
  const buffer = new ArrayBuffer(total);
  const all = new Uint8Array(buffer);
  let at = 0;
  for (const item of items) {
    const bytes = get(item);
    if (!bytes) continue;
    all.set(bytes, at);
    set(item, all.subarray(at, at + bytes.byteLength));
    at += bytes.byteLength;
  }
  return buffer;
}
