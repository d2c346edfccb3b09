//! Values as a surveyor types them into a form: the number as typed
//! ([`Amount::parse_typed`]) and why one is refused ([`Refusal`]), the same
//! rules the app's `server/app/js/amount.js` and `validate.js` follow.

use crate::amount::Amount;

/// The spaces a keyboard or a copied figure may put around a typed number:
/// space, tab, line breaks, no-break and narrow no-break space.
pub fn is_typed_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{a0}' | '\u{202f}')
}

/// Why a value typed into a form is refused, with what the surveyor needs to
/// put it right. The app's `server/app/js/validate.js` gives the same kinds
/// (by [`Refusal::kind`]) for the same input, checked against
/// `tests/fixtures/validation-cases.json`, so the device and the server never
/// disagree about a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Letters, an exponent, a sign other than a leading minus, a decimal
    /// mark without digits on both sides.
    NotANumber,
    /// Thousands separators, two decimal marks or spaces inside the number:
    /// it could be read two ways.
    Ambiguous,
    /// More digits after the decimal mark than the indicator records.
    TooManyDecimals {
        scale: u8,
    },
    /// A decimal for an indicator counted in whole numbers.
    WholeNumbersOnly,
    Negative,
    /// Too many digits to be held at all.
    TooLarge,
    /// More than one village can report in one period.
    AboveMax {
        max: Amount,
    },
    /// An "of which" part above its whole's value.
    PartAboveWhole {
        whole: String,
        whole_amount: Amount,
    },
    /// A whole below the value of one of its parts.
    WholeBelowPart {
        part: String,
        part_amount: Amount,
    },
    /// Clearing a whole while one of its parts has a value.
    WholeClearedWithPart {
        part: String,
    },
}

impl Refusal {
    /// The refusal's name, the same in Rust, in the app and in the shared
    /// case file.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::NotANumber => "not_a_number",
            Refusal::Ambiguous => "ambiguous",
            Refusal::TooManyDecimals { .. } => "too_many_decimals",
            Refusal::WholeNumbersOnly => "whole_numbers_only",
            Refusal::Negative => "negative",
            Refusal::TooLarge => "too_large",
            Refusal::AboveMax { .. } => "above_max",
            Refusal::PartAboveWhole { .. } => "part_above_whole",
            Refusal::WholeBelowPart { .. } => "whole_below_part",
            Refusal::WholeClearedWithPart { .. } => "whole_cleared_with_part",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotANumber => write!(f, "type a number, e.g. 12 or 1,5"),
            Refusal::Ambiguous => write!(
                f,
                "type the number without thousands separators or spaces, with at most one \
                 decimal mark, e.g. 1234,5"
            ),
            Refusal::TooManyDecimals { scale } => {
                write!(f, "at most {scale} digit(s) after the decimal mark")
            }
            Refusal::WholeNumbersOnly => write!(f, "counted in whole numbers: type e.g. 2"),
            Refusal::Negative => write!(f, "cannot be negative: record what was built"),
            Refusal::TooLarge => write!(f, "far too large: check the value"),
            Refusal::AboveMax { max } => {
                write!(f, "more than one village can report (at most {max}): check the value")
            }
            Refusal::PartAboveWhole { whole, whole_amount } => {
                write!(f, "more than its whole {whole} = {whole_amount}: a part cannot exceed it")
            }
            Refusal::WholeBelowPart { part, part_amount } => {
                write!(f, "less than its part {part} = {part_amount}: lower the part first")
            }
            Refusal::WholeClearedWithPart { part } => {
                write!(
                    f,
                    "cannot be cleared while its part {part} has a value: clear the part first"
                )
            }
        }
    }
}

impl Amount {
    /// Parses a number as a surveyor types it into a form at `scale` digits
    /// after the point: spaces around it are ignored, the decimal mark is a
    /// comma (the Vietnamese way, "1,5") or a dot ("1.5"), and zeros at the
    /// end of the decimals may be typed ("1,50" at scale 1 is 1.5). Blank
    /// text is `None`: the field is cleared. Forms that could be read two
    /// ways are refused rather than guessed: thousands separators ("1.234,5",
    /// "1,234,5", "1 234"), exponents, a sign other than a leading minus.
    ///
    /// The rules are checked in a fixed order, so the refusal is always the
    /// same one; `server/app/js/amount.js` follows exactly this order, and
    /// `tests/fixtures/validation-cases.json` holds both to it.
    pub fn parse_typed(text: &str, scale: u8) -> Result<Option<Self>, Refusal> {
        let text = text.trim_matches(is_typed_space);
        if text.is_empty() {
            return Ok(None);
        }
        let allowed = |c: char| c.is_ascii_digit() || matches!(c, '.' | ',' | '-');
        if !text.chars().all(|c| allowed(c) || is_typed_space(c)) {
            return Err(Refusal::NotANumber);
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if digits.contains('-') {
            return Err(Refusal::NotANumber);
        }
        if digits.contains(is_typed_space) || digits.matches(['.', ',']).count() > 1 {
            return Err(Refusal::Ambiguous);
        }
        let (int_part, frac_part) = digits.split_once(['.', ',']).unwrap_or((digits, ""));
        let has_mark = int_part.len() < digits.len();
        if int_part.is_empty() || (has_mark && frac_part.is_empty()) {
            return Err(Refusal::NotANumber);
        }
        if negative && digits.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return Err(Refusal::Negative);
        }
        let frac_part = frac_part.trim_end_matches('0');
        if frac_part.len() > usize::from(scale) {
            return Err(match scale {
                0 => Refusal::WholeNumbersOnly,
                _ => Refusal::TooManyDecimals { scale },
            });
        }
        let pad = usize::from(scale) - frac_part.len();
        let mut units: i64 = 0;
        let zeros = std::iter::repeat_n(b'0', pad);
        for b in int_part.bytes().chain(frac_part.bytes()).chain(zeros) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .ok_or(Refusal::TooLarge)?;
        }
        Ok(Some(Self::new(units, scale)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_as_surveyors_type_them() {
        let typed =
            |t: &str, scale| Amount::parse_typed(t, scale).map(|a| a.map(|a| a.to_string()));
        for (text, scale, shown) in [
            ("1,5", 2, "1.5"),
            ("1.5", 2, "1.5"),
            ("  12,25 ", 2, "12.25"),
            ("\u{a0}3\t", 0, "3"),
            ("1,50", 1, "1.5"),
            ("5,0", 0, "5"),
            ("007", 0, "7"),
            ("-0", 2, "0"),
            ("0,0000001", 7, "0.0000001"),
        ] {
            assert_eq!(typed(text, scale), Ok(Some(shown.to_owned())), "{text:?}");
        }
        assert_eq!(typed("   ", 2), Ok(None), "blank clears the field");
        for (text, scale, refusal) in [
            ("1.234,5", 2, Refusal::Ambiguous),
            ("1,234,5", 2, Refusal::Ambiguous),
            ("1.234.567", 0, Refusal::Ambiguous),
            ("1 234", 0, Refusal::Ambiguous),
            ("1e3", 2, Refusal::NotANumber),
            ("NaN", 2, Refusal::NotANumber),
            ("+1", 2, Refusal::NotANumber),
            ("1-2", 2, Refusal::NotANumber),
            (",5", 2, Refusal::NotANumber),
            ("5,", 2, Refusal::NotANumber),
            ("-1,5", 2, Refusal::Negative),
            ("1,5", 0, Refusal::WholeNumbersOnly),
            ("1,234", 2, Refusal::TooManyDecimals { scale: 2 }),
            ("99999999999999999999", 0, Refusal::TooLarge),
            ("922337203685477580,8", 1, Refusal::TooLarge),
        ] {
            assert_eq!(typed(text, scale), Err(refusal), "{text:?}");
        }
        assert_eq!(typed("922337203685477580,7", 1), Ok(Some("922337203685477580.7".into())));
    }
}
