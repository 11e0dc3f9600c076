/** How long ago, or how long from now, in words people read at a glance ("12 min", "in 3 h"). */

/** A span of time, rounded to the unit that matters: "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** "3 min ago" or "in 2 h" relative to `now`. */
export function relative(iso: string, now: number): string {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  return t <= now ? `${span(now - t)} ago` : `in ${span(t - now)}`;
}
