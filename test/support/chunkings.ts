/**
 * Ways to cut a byte stream into the chunks a socket might deliver, for split-at-every-offset
 * properties of protocol readers and relays (any protocol): every two-way split, splits at chosen
 * offsets, and a fast-check arbitrary of random chunkings biased towards line ends, where
 * framing bugs hide (a chunk ending right after `\r\n`).
 */
import fc from 'fast-check';

/** `bytes` cut at `offsets` (any order, duplicates and out-of-range ones ignored); never empty chunks. */
export function splitAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const cuts = [...new Set(offsets.filter((o) => o > 0 && o < bytes.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  return out.filter((b) => b.length > 0);
}

/** Every split of `bytes` into two non-empty chunks, in order of the offset. */
export function* everyTwoWaySplit(bytes: Buffer): Generator<{ offset: number; chunks: Buffer[] }> {
  for (let offset = 1; offset < bytes.length; offset++) yield { offset, chunks: [bytes.subarray(0, offset), bytes.subarray(offset)] };
}

/** Offsets just after each `\n` (a chunk that ends on a complete line). */
export function lineEnds(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) out.push(i + 1);
  return out;
}

/**
 * Random chunkings of `bytes`: up to `maxCuts` cut points, half of them (when there are any)
 * drawn from the line ends, the rest anywhere; for streams up to 4 KiB, single-byte chunkings too.
 */
export function chunkings(bytes: Buffer, maxCuts = 64): fc.Arbitrary<Buffer[]> {
  const ends = lineEnds(bytes);
  const anywhere = fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) });
  const cut = ends.length > 0 ? fc.oneof(fc.constantFrom(...ends), anywhere) : anywhere;
  const random = fc.array(cut, { maxLength: maxCuts }).map((offsets) => splitAt(bytes, offsets));
  if (bytes.length > 4096) return random;
  return fc.oneof({ weight: 9, arbitrary: random }, { weight: 1, arbitrary: fc.constant([...bytes].map((b) => Buffer.from([b]))) });
}
