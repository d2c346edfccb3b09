// Exact fixed-point quantities, as in the Rust core (src/amount.rs): a value
// is a BigInt count of 10^-scale units, so 0,1 km + 0,2 km is 0,3 km here as
// on the server. Binary floats never touch a quantity.
//
// parseTyped follows Amount::parse_typed (src/typed.rs) rule by rule and in the same order,
// so a refusal has the same kind on the device and in Rust; the shared cases
// in tests/fixtures/validation-cases.json hold the two together.

/** The largest number of units the server can hold (a Rust i64). */
export const MAX_UNITS = 9223372036854775807n;

const SPACES = new Set([" ", "\t", "\n", "\r", "\u00a0", "\u202f"]);
const DIGITS = "0123456789";

/** A space a keyboard or a copied figure may put around a typed number. */
export function isTypedSpace(c) {
  return SPACES.has(c);
}

function trimTyped(text) {
  let start = 0;
  let end = text.length;
  while (start < end && SPACES.has(text[start])) start++;
  while (end > start && SPACES.has(text[end - 1])) end--;
  return text.slice(start, end);
}

function allDigits(text) {
  for (const c of text) if (!DIGITS.includes(c)) return false;
  return true;
}

/**
 * Reads a number as a surveyor types it at `scale` digits after the mark:
 * spaces around it ignored, decimal comma ("1,5") or dot ("1.5"), zeros at
 * the end of the decimals allowed. Answers
 *   {ok: true, amount: {units, scale}}   (units a BigInt)
 *   {ok: true, amount: null}             (blank: the field is cleared)
 *   {ok: false, kind}                    (kind as in Rust's Refusal::kind)
 */
export function parseTyped(text, scale) {
  const t = trimTyped(String(text ?? ""));
  if (t === "") return { ok: true, amount: null };
  for (const c of t) {
    if (!(DIGITS.includes(c) || c === "." || c === "," || c === "-" || SPACES.has(c))) {
      return { ok: false, kind: "not_a_number" };
    }
  }
  const negative = t.startsWith("-");
  const digits = negative ? t.slice(1) : t;
  if (digits.includes("-")) return { ok: false, kind: "not_a_number" };
  let marks = 0;
  let spaced = false;
  for (const c of digits) {
    if (c === "." || c === ",") marks++;
    if (SPACES.has(c)) spaced = true;
  }
  if (spaced || marks > 1) return { ok: false, kind: "ambiguous" };
  const at = marks === 1 ? digits.search(/[.,]/) : digits.length;
  const intPart = digits.slice(0, at);
  let fracPart = digits.slice(at + 1);
  if (intPart === "" || (marks === 1 && fracPart === "")) {
    return { ok: false, kind: "not_a_number" };
  }
  if (negative && /[1-9]/.test(digits)) return { ok: false, kind: "negative" };
  fracPart = fracPart.replace(/0+$/, "");
  if (fracPart.length > scale) {
    return scale === 0
      ? { ok: false, kind: "whole_numbers_only" }
      : { ok: false, kind: "too_many_decimals" };
  }
  const units = BigInt(intPart + fracPart + "0".repeat(scale - fracPart.length));
  if (units > MAX_UNITS) return { ok: false, kind: "too_large" };
  return { ok: true, amount: { units, scale } };
}

/** Reads a plain dot decimal as the server sends it ("200", "12.5"). */
export function parseDecimal(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text ?? ""));
  if (!m) throw new Error(`not a decimal: ${JSON.stringify(text)}`);
  const frac = m[3] ?? "";
  const units = BigInt(m[2] + frac);
  return { units: m[1] ? -units : units, scale: frac.length };
}

/** -1, 0 or 1: compares quantities of any scales exactly. */
export function compare(a, b) {
  const scale = Math.max(a.scale, b.scale);
  const x = a.units * 10n ** BigInt(scale - a.scale);
  const y = b.units * 10n ** BigInt(scale - b.scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The plain dot decimal without trailing zeros: "61.5", "440", "0.3". */
export function format(amount) {
  const negative = amount.units < 0n;
  const abs = negative ? -amount.units : amount.units;
  const div = 10n ** BigInt(amount.scale);
  const int = abs / div;
  const frac = (abs % div).toString().padStart(amount.scale, "0").replace(/0+$/, "");
  return (negative ? "-" : "") + int.toString() + (frac ? "." + frac : "");
}

/** A dot decimal written for people: a decimal comma in Vietnamese ("1,5"). */
export function display(decimal, lang = "vi") {
  const text = String(decimal ?? "");
  return lang === "vi" ? text.replace(".", ",") : text;
}
