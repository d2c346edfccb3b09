//! The words of the pages in Vietnamese and English, the Vietnamese number
//! and date formats, and percent-encoding for links. The markup itself is
//! in [`super::pages`].

use std::fmt::Write as _;

use fieldsync::review::{ReviewState, Verdict};
use fieldsync::rollup::{vietnamese, Percent};
use fieldsync::{Amount, Catalogue, FieldKey, Level};

/// Percent-encodes a query or path component.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// The interface language: Vietnamese unless the browser chose English.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// The Vietnamese or the English text.
    pub fn pick<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }

    /// An amount as people read it: "1.960,5" in Vietnamese, "1,960.5" in
    /// English. Text that is not an amount is shown as it is.
    pub fn amount(self, text: &str) -> String {
        match text.parse::<Amount>() {
            Ok(a) => self.amount_of(a),
            Err(_) => text.to_owned(),
        }
    }

    pub fn amount_of(self, a: Amount) -> String {
        match self {
            Lang::Vi => vietnamese(a),
            // The same grouping, with the separators swapped.
            Lang::En => vietnamese(a)
                .chars()
                .map(|c| match c {
                    '.' => ',',
                    ',' => '.',
                    c => c,
                })
                .collect(),
        }
    }

    pub fn percent(self, tenths: i64) -> String {
        Percent { tenths }.format(self == Lang::Vi)
    }

    pub fn state(self, s: ReviewState) -> &'static str {
        match s {
            ReviewState::Submitted => self.pick("Chờ duyệt", "Submitted"),
            ReviewState::Approved => self.pick("Xã đã duyệt", "Approved by commune"),
            // The district accepted before 1 July 2025, the province since.
            ReviewState::Accepted => self.pick("Đã chấp nhận (cấp trên xã)", "Accepted"),
            ReviewState::Rejected => self.pick("Bị từ chối", "Rejected"),
            ReviewState::Returned => self.pick("Trả lại để sửa", "Returned for changes"),
        }
    }

    pub fn verdict(self, v: Verdict) -> &'static str {
        match v {
            Verdict::Approve => self.pick("Duyệt", "Approve"),
            Verdict::Accept => self.pick("Chấp nhận", "Accept"),
            Verdict::Reject => self.pick("Từ chối", "Reject"),
            Verdict::Return => self.pick("Trả lại để sửa", "Return for changes"),
            Verdict::Reopen => self.pick("Mở lại", "Reopen"),
        }
    }

    pub fn level(self, l: Level) -> &'static str {
        match l {
            Level::Province => self.pick("Tỉnh", "Province"),
            Level::District => self.pick("Huyện", "District"),
            Level::Commune => self.pick("Xã", "Commune"),
            Level::Village => self.pick("Thôn", "Village"),
        }
    }

    /// What an audit entry records, in words.
    pub fn audit_kind(self, kind: &str) -> &str {
        match kind {
            "value" => self.pick("Ghi số liệu", "Value recorded"),
            "conflict" => self.pick("Giá trị xung đột", "Conflicting value"),
            "unchanged" => self.pick("Gửi lại, không đổi", "Sent again, unchanged"),
            "refused" => self.pick("Không nhận", "Refused"),
            "review" => self.pick("Quyết định duyệt", "Review decision"),
            "resolve" => self.pick("Giải quyết xung đột", "Conflict settled"),
            other => other,
        }
    }

    /// A field's name: the indicator's name, or note / location.
    pub fn field(self, catalogue: &Catalogue, field: &str) -> String {
        match FieldKey::parse(field) {
            FieldKey::Note => self.pick("Ghi chú", "Note").to_owned(),
            FieldKey::Location => self.pick("Vị trí GPS", "GPS location").to_owned(),
            FieldKey::Indicator(code) => match catalogue.indicator(&code) {
                Some(i) => self.pick(&i.name_vi, &i.name_en).to_owned(),
                None => code,
            },
        }
    }

    /// An indicator's unit as shown after a number ("km"; nothing for counts).
    pub fn unit<'a>(self, catalogue: &'a Catalogue, field: &str) -> &'a str {
        match catalogue.indicator(field).map(|i| i.unit.as_str()) {
            Some("count") | None => "",
            Some(u) => u,
        }
    }
}

/// A time as read in Vietnam (UTC+7, no daylight saving), the offset shown:
/// "29/11/2026 16:32 UTC+7".
pub fn time(ms: u64) -> String {
    if ms == 0 {
        return "—".into();
    }
    let (year, month, day, hour, minute) = civil(ms);
    format!("{day:02}/{month:02}/{year} {hour:02}:{minute:02} UTC+7")
}

/// `2026-11-29 16:32 UTC+7`, for downloads; empty for 0.
pub fn iso_time(ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    let (year, month, day, hour, minute) = civil(ms);
    format!("{year}-{month:02}-{day:02} {hour:02}:{minute:02} UTC+7")
}

/// Year, month, day, hour and minute in Vietnam's time (UTC+7).
fn civil(ms: u64) -> (i64, i64, i64, i64, i64) {
    let secs = (ms / 1000) as i64 + 7 * 3600;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest / 3600, rest % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_percent_encoded() {
        assert_eq!(url("a b/ư"), "a%20b%2F%C6%B0");
    }

    #[test]
    fn numbers_and_times_read_as_in_vietnam() {
        assert_eq!(Lang::Vi.amount("1960.5"), "1.960,5");
        assert_eq!(Lang::En.amount("1960.5"), "1,960.5");
        assert_eq!(Lang::Vi.percent(961), "96,1");
        assert_eq!(time(0), "—");
        // 2022-12-31 17:30 UTC is 1 January 2023, 00:30 in Hà Tĩnh.
        assert_eq!(time(1_672_507_800_000), "01/01/2023 00:30 UTC+7");
        assert_eq!(iso_time(1_672_507_800_000), "2023-01-01 00:30 UTC+7");
    }
}
