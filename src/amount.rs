//! Exact fixed-point quantities.
//!
//! Every indicator value is an integer number of `10^-scale` units, so sums are
//! exact: 0.1 km + 0.2 km is 0.3 km on every tablet, on the server and in every
//! export. Binary floats never touch a quantity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The most digits after the decimal point any indicator may use.
pub const MAX_SCALE: u8 = 7;

/// A decimal quantity: `units × 10^-scale`. Equal quantities compare equal
/// whatever their scale (1.5 == 1.50).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Amount {
    units: i64,
    scale: u8,
}

impl Amount {
    /// A quantity of `units × 10^-scale`.
    pub fn new(units: i64, scale: u8) -> Self {
        Self { units, scale }
    }

    /// A whole number.
    pub fn whole(n: i64) -> Self {
        Self::new(n, 0)
    }

    pub fn units(self) -> i64 {
        self.units
    }

    pub fn scale(self) -> u8 {
        self.scale
    }

    pub fn is_negative(self) -> bool {
        self.units < 0
    }

    /// The same quantity at a larger scale, or `None` on overflow or if the
    /// scale would shrink (which could lose digits).
    pub fn rescale(self, scale: u8) -> Option<Self> {
        if scale < self.scale || scale > MAX_SCALE {
            return None;
        }
        let factor = 10i64.checked_pow(u32::from(scale - self.scale))?;
        Some(Self::new(self.units.checked_mul(factor)?, scale))
    }

    /// Parses a plain decimal ("12", "102.73", "-0.5") with at most `scale`
    /// digits after the point. Exponents, thousands separators, NaN and
    /// infinities are refused.
    pub fn parse(text: &str, scale: u8) -> Result<Self> {
        let invalid =
            |why: &str| Error::Invalid(format!("{text:?} is not a valid quantity: {why}"));
        if scale > MAX_SCALE {
            return Err(invalid("scale too large"));
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("write digits with a dot for decimals, e.g. 12.5"));
        }
        if digits.contains('.') && frac_part.is_empty() {
            return Err(invalid("digits must follow the decimal point"));
        }
        if !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("write digits with a dot for decimals, e.g. 12.5"));
        }
        if frac_part.len() > usize::from(scale) {
            return Err(invalid(&format!("at most {scale} digit(s) after the decimal point")));
        }
        let too_big = || invalid("too large");
        let mut units: i64 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .ok_or_else(too_big)?;
        }
        let pad =
            10i64.checked_pow((usize::from(scale) - frac_part.len()) as u32).ok_or_else(too_big)?;
        units = units.checked_mul(pad).ok_or_else(too_big)?;
        Ok(Self::new(if negative { -units } else { units }, scale))
    }

    /// Exact sum; both sides are brought to the larger scale. `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        let scale = self.scale.max(other.scale);
        let (a, b) = (self.rescale(scale)?, other.rescale(scale)?);
        Some(Self::new(a.units.checked_add(b.units)?, scale))
    }

    /// Compares quantities of any scales exactly.
    pub fn cmp_value(self, other: Self) -> std::cmp::Ordering {
        let scale = self.scale.max(other.scale);
        let widen = |a: Self| i128::from(a.units) * 10i128.pow(u32::from(scale - a.scale));
        widen(self).cmp(&widen(other))
    }
}

impl Amount {
    /// The same quantity with no trailing zero digits after the point.
    fn normalized(self) -> Self {
        let mut a = self;
        while a.scale > 0 && a.units % 10 == 0 {
            a = Self::new(a.units / 10, a.scale - 1);
        }
        a
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.normalized(), other.normalized());
        (a.units, a.scale) == (b.units, b.scale)
    }
}

impl Eq for Amount {}

impl std::hash::Hash for Amount {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let a = self.normalized();
        (a.units, a.scale).hash(state);
    }
}

impl fmt::Display for Amount {
    /// Plain machine decimal without trailing zeros: "61.5", "440", "0.3".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        let div = 10u64.pow(u32::from(self.scale));
        let (int, frac) = (abs / div, abs % div);
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let digits = format!("{frac:0width$}", width = usize::from(self.scale));
        write!(f, "{sign}{int}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Amount {
    type Err = Error;

    /// Parses at the smallest scale that holds every digit given.
    fn from_str(s: &str) -> Result<Self> {
        let scale = s.split_once('.').map_or(0, |(_, f)| f.len());
        let scale = u8::try_from(scale)
            .ok()
            .filter(|s| *s <= MAX_SCALE)
            .ok_or_else(|| Error::Invalid(format!("{s:?} has too many decimal digits")))?;
        Self::parse(s, scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_sum_exactly() {
        let a = Amount::parse("0.1", 2).unwrap();
        let b = Amount::parse("0.2", 2).unwrap();
        let sum = a.checked_add(b).unwrap();
        assert_eq!(sum, Amount::parse("0.3", 2).unwrap());
        assert_eq!(sum.to_string(), "0.3");
    }

    #[test]
    fn parses_and_prints_report_figures() {
        for (text, scale, shown) in [
            ("102.73", 2, "102.73"),
            ("61.5", 2, "61.5"),
            ("440", 2, "440"),
            ("0.05", 2, "0.05"),
            ("-3.2", 1, "-3.2"),
            ("007", 0, "7"),
        ] {
            assert_eq!(Amount::parse(text, scale).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in [
            "", "NaN", "inf", "-inf", "1e3", "1,5", "1.", ".5", " 1", "1 ", "+1", "1.2.3", "--1",
            "0x10",
        ] {
            assert!(Amount::parse(bad, 2).is_err(), "{bad:?} should be refused");
        }
        assert!(Amount::parse("1.234", 2).is_err(), "too many decimals");
        assert!(Amount::parse("99999999999999999999", 0).is_err(), "overflow");
    }

    #[test]
    fn compares_across_scales() {
        use std::cmp::Ordering;
        let a = Amount::parse("1.5", 1).unwrap();
        let b = Amount::parse("1.50", 2).unwrap();
        assert_eq!(a.cmp_value(b), Ordering::Equal);
        assert_eq!(a, b);
        assert_eq!(Amount::whole(2).cmp_value(b), Ordering::Greater);
    }
}
