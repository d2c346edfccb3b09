// Hybrid logical clocks, as src/hlc.rs: wall-clock milliseconds in the high
// 48 bits, a counter in the low 16, held as BigInt (stored and sent as a
// decimal string). An edit made after seeing another always carries a
// larger stamp, even when the phone's clock is behind.

const COUNTER_BITS = 16n;
const MAX = (1n << 64n) - 1n;

/** The reading for a wall-clock time with a zero counter. */
export function fromMillis(ms) {
  return BigInt(Math.max(0, Math.floor(ms))) << COUNTER_BITS;
}

/** The wall-clock part, milliseconds since the Unix epoch. */
export function millis(hlc) {
  return Number(BigInt(hlc) >> COUNTER_BITS);
}

/** The next reading after `hlc` given the wall clock `nowMs`. */
export function tick(hlc, nowMs) {
  const h = BigInt(hlc);
  const next = h < MAX ? h + 1n : MAX;
  const wall = fromMillis(nowMs);
  return next > wall ? next : wall;
}

/** Moves past a reading seen from elsewhere (a pulled change, a server reply). */
export function observe(hlc, seen) {
  const h = BigInt(hlc);
  const s = BigInt(seen || 0);
  return h > s ? h : s;
}
