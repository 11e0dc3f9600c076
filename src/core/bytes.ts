/**
 * Buffer.copy and Buffer.fill for the few bytes of one value (a cell of a row). Below a few dozen
 * bytes a plain loop is several times cheaper than the native calls' argument checks; masking
 * makes several such copies per row (bench/masking-bench.ts).
 */
const SHORT = 32;

/** Copies src[from, to) to dst at `at`; returns how many bytes. */
export function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n > SHORT) return src.copy(dst, at, from, to);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i]!;
  return n;
}

/** Sets dst[from, to) to `byte`. */
export function fillBytes(dst: Buffer, byte: number, from: number, to: number): void {
  if (to - from > SHORT) dst.fill(byte, from, to);
  else for (let i = from; i < to; i++) dst[i] = byte;
}
