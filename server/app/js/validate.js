// Checks a value typed into the report form before it is saved, by the same
// rules as the server (src/validate.rs, check_typed): the typed text, the
// most one village can report, and "of which" parts never above their
// whole. tests/fixtures/validation-cases.json, generated from the Rust core,
// is run against this module in the browser (tests/browser/app_sync.rs).

import { compare, display, format, parseDecimal, parseTyped } from "./amount.js";

/** Digits after the mark for an indicator as Bootstrap sends it. */
export function scaleOf(indicator) {
  if (indicator.kind === "VALUE_KIND_INTEGER") return 0;
  return Number(indicator.scale ?? 0);
}

function name(indicator, lang) {
  const n = lang === "vi" ? indicator.nameVi : indicator.nameEn;
  return n || indicator.code;
}

function messages(kind, indicator, p) {
  const unit = indicator.unit ? ` ${indicator.unit}` : "";
  const vi = (d) => display(d, "vi");
  switch (kind) {
    case "not_a_number":
      return {
        vi: "Hãy nhập một số, ví dụ 12 hoặc 1,5.",
        en: "Type a number, e.g. 12 or 1,5.",
      };
    case "ambiguous":
      return {
        vi: "Nhập số không có dấu phân cách hàng nghìn hay khoảng trắng, chỉ một dấu thập phân, ví dụ 1234,5.",
        en: "Type the number without thousands separators or spaces, with at most one decimal mark, e.g. 1234,5.",
      };
    case "too_many_decimals":
      return {
        vi: `Chỉ được tối đa ${p.scale} chữ số sau dấu phẩy.`,
        en: `At most ${p.scale} digit(s) after the decimal mark.`,
      };
    case "whole_numbers_only":
      return {
        vi: `${name(indicator, "vi")} được đếm bằng số nguyên: nhập ví dụ 2.`,
        en: `${name(indicator, "en")} is counted in whole numbers: type e.g. 2.`,
      };
    case "negative":
      return {
        vi: "Không được là số âm: ghi số đã thực hiện.",
        en: "Cannot be negative: record what was built.",
      };
    case "too_large":
      return {
        vi: "Số quá lớn: hãy kiểm tra lại.",
        en: "Far too large: check the value.",
      };
    case "above_max":
      return {
        vi: `Lớn hơn mức một thôn có thể báo cáo (tối đa ${vi(p.max)}${unit}): hãy kiểm tra lại.`,
        en: `More than one village can report (at most ${p.max}${unit}): check the value.`,
      };
    case "part_above_whole":
      return {
        vi: `Không được lớn hơn tổng (${name(p.whole, "vi")} là ${vi(p.amount)}${unit}).`,
        en: `A part cannot exceed its whole: ${name(p.whole, "en")} is ${p.amount}${unit}.`,
      };
    case "whole_below_part":
      return {
        vi: `Nhỏ hơn phần của nó (${name(p.part, "vi")} là ${vi(p.amount)}${unit}): hãy giảm phần đó trước.`,
        en: `Less than its part ${name(p.part, "en")} at ${p.amount}${unit}: lower the part first.`,
      };
    case "whole_cleared_with_part":
      return {
        vi: `Không thể xoá khi phần của nó (${name(p.part, "vi")}) còn giá trị: hãy xoá phần đó trước.`,
        en: `Cannot be cleared while its part ${name(p.part, "en")} has a value: clear the part first.`,
      };
    default:
      return { vi: "Giá trị không hợp lệ.", en: "Not a valid value." };
  }
}

function refuse(kind, indicator, params = {}) {
  return { ok: false, kind, ...messages(kind, indicator, params) };
}

/** [{indicator, amount}] from either form validateValue takes. */
function siblingList(siblings, indicators) {
  if (Array.isArray(siblings)) return siblings;
  if (!indicators) {
    throw new TypeError("validateValue: siblings given as {code: amount} need the indicator list");
  }
  const byCode = new Map(indicators.map((i) => [i.code, i]));
  return Object.entries(siblings ?? {})
    .filter(([code]) => byCode.has(code))
    .map(([code, amount]) => ({ indicator: byCode.get(code), amount }));
}

/**
 * Checks `typed` for `indicator` (a Bootstrap Indicator in proto3 JSON).
 * `siblings` are the other fields of the same report, either
 * [{indicator, amount}] or {code: amount} together with `indicators` (every
 * Bootstrap indicator), `amount` a plain dot decimal, or null when the field
 * has no value. Answers {ok: true, amount} (a plain dot decimal, or null:
 * the field is cleared) or {ok: false, kind, vi, en} with messages a
 * surveyor can act on.
 */
export function validateValue(indicator, typed, siblings = [], indicators = undefined) {
  const scale = scaleOf(indicator);
  const withValue = siblingList(siblings, indicators)
    .filter((s) => s && s.indicator && s.amount !== null && s.amount !== undefined)
    .map((s) => ({ indicator: s.indicator, amount: parseDecimal(s.amount) }));
  const parts = withValue.filter((s) => s.indicator.parentCode === indicator.code);
  const parsed = parseTyped(typed, scale);
  if (!parsed.ok) return refuse(parsed.kind, indicator, { scale });
  const amount = parsed.amount;
  if (amount === null) {
    if (parts.length > 0) {
      return refuse("whole_cleared_with_part", indicator, { part: parts[0].indicator });
    }
    return { ok: true, amount: null };
  }
  const max = parseDecimal(indicator.maxPerVillage ?? "0");
  if (compare(amount, max) > 0) return refuse("above_max", indicator, { max: format(max) });
  const whole = indicator.parentCode
    ? withValue.find((s) => s.indicator.code === indicator.parentCode)
    : undefined;
  if (whole && compare(amount, whole.amount) > 0) {
    return refuse("part_above_whole", indicator, {
      whole: whole.indicator,
      amount: format(whole.amount),
    });
  }
  const above = parts.find((s) => compare(s.amount, amount) > 0);
  if (above) {
    return refuse("whole_below_part", indicator, {
      part: above.indicator,
      amount: format(above.amount),
    });
  }
  return { ok: true, amount: format(amount) };
}
