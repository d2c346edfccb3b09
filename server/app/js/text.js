// Text matching for people who type without accents: fold("Phúc Đồng") is
// "phuc dong", so "phuc dong", "PHUC DONG" and "Phúc Đồng" all find it.

/** Lower case, no diacritics, đ as d, runs of spaces as one. */
export function fold(text) {
  return String(text ?? "")
    .toLowerCase()
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/đ/g, "d")
    .replace(/\s+/g, " ")
    .trim();
}

/** Whether every word of `query` is found in `text`, accents ignored. */
export function matches(text, query) {
  const hay = fold(text);
  return fold(query)
    .split(" ")
    .filter((w) => w !== "")
    .every((w) => hay.includes(w));
}
