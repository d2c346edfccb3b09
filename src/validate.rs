//! Checks a tablet's mutation against the catalogue before anything is stored.
//! Every refusal says what is wrong and what to do about it.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::amount::Amount;
use crate::error::{Error, Result};
use crate::model::{nfc, Catalogue, FieldKey, Indicator, Period, Value, ValueKind};
use crate::sync::{FieldRef, Mutation, RawValue};

use crate::limits::truncate;
pub use crate::limits::{
    check_id, check_name, check_text, MAX_AUTHOR_CHARS, MAX_ID_CHARS, MAX_NAME_CHARS,
    MAX_NOTE_CHARS, MAX_TEXT_CHARS,
};
pub use crate::typed::Refusal;

impl crate::model::OrgUnit {
    /// Checks an org unit about to be added: its id and name.
    pub fn check_new(&self) -> Result<()> {
        check_id("an org unit id", &self.id)?;
        check_name(&format!("the name of org unit {}", self.id), &self.name)
    }
}

impl crate::model::Indicator {
    /// Checks an indicator about to be added: its code, names and unit.
    pub fn check_new(&self) -> Result<()> {
        check_id("an indicator code", &self.code)?;
        check_name(&format!("the Vietnamese name of indicator {}", self.code), &self.name_vi)?;
        check_name(&format!("the English name of indicator {}", self.code), &self.name_en)?;
        check_name(&format!("the unit of indicator {}", self.code), &self.unit)
    }
}

/// A mutation that names a real village, period and field, with a value of
/// the right kind and range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub at: FieldRef,
    pub value: Value,
    pub author: String,
}

/// Validates everything about a mutation that does not depend on the other
/// fields of its submission (for that, see [`check_parts`]).
pub fn validate(catalogue: &Catalogue, m: &Mutation) -> Result<Target> {
    let village = catalogue.village(&m.village_id)?;
    let period: Period = m.period.parse()?;
    let field = FieldKey::parse(&m.field);
    let author = nfc(m.author.trim());
    if author.is_empty() {
        return Err(Error::Invalid("the mutation names no author: who recorded it?".into()));
    }
    if author.chars().count() > MAX_AUTHOR_CHARS {
        return Err(Error::Invalid(format!(
            "author names are at most {MAX_AUTHOR_CHARS} characters"
        )));
    }
    let indicator = match &field {
        FieldKey::Indicator(code) => Some(catalogue.indicator(code).ok_or_else(|| {
            Error::NotFound(format!(
                "unknown indicator {:?}: see the catalogue from bootstrap",
                truncate(code, 40)
            ))
        })?),
        _ => None,
    };
    if let Some(from) = indicator.and_then(|i| catalogue.retired_from(&i.code)) {
        if period.first_day() >= from.first_day() {
            return Err(Error::Invalid(format!(
                "indicator {} is retired from {from} on (the programme's criteria changed): it is \
                 kept in earlier reports and totals, and not recorded for {period}",
                truncate(&m.field, 40)
            )));
        }
    }
    let value = match (&field, &m.value, indicator) {
        (_, RawValue::Deleted, _) => Value::Deleted,
        (FieldKey::Indicator(code), raw, Some(ind)) => {
            let RawValue::Amount(text) = raw else {
                return Err(Error::Invalid(format!(
                    "{code} takes a number, not {}",
                    describe(raw)
                )));
            };
            let amount = Amount::parse(text, ind.kind.scale()).map_err(|e| match ind.kind {
                ValueKind::Integer if text.contains('.') => Error::Invalid(format!(
                    "{} ({code}) is counted in whole numbers, got {text:?}",
                    ind.name_en
                )),
                _ => Error::Invalid(format!("{code}: {e}")),
            })?;
            if amount.is_negative() {
                return Err(Error::Invalid(format!(
                    "{code} cannot be negative ({text} {}): record what was built",
                    ind.unit
                )));
            }
            if amount.cmp_value(ind.max_per_village) == Ordering::Greater {
                return Err(Error::Invalid(format!(
                    "{text} {} of {} is more than one village can report (at most {} {}): check the value",
                    ind.unit, ind.name_en, ind.max_per_village, ind.unit
                )));
            }
            Value::Amount(amount)
        }
        (FieldKey::Note, RawValue::Text(text), _) => {
            let text = nfc(text);
            if text.chars().count() > MAX_NOTE_CHARS {
                return Err(Error::Invalid(format!(
                    "notes are at most {MAX_NOTE_CHARS} characters"
                )));
            }
            Value::Text(text)
        }
        (FieldKey::Location, RawValue::Point(p), _) => {
            let lat_ok = (-900_000_000..=900_000_000).contains(&p.lat_e7);
            let lon_ok = (-1_800_000_000..=1_800_000_000).contains(&p.lon_e7);
            if !lat_ok || !lon_ok {
                return Err(Error::Invalid(format!(
                    "location {p} is off the globe: latitude -90..90, longitude -180..180"
                )));
            }
            Value::Point(*p)
        }
        (field, raw, _) => {
            return Err(Error::Invalid(format!("{field} cannot hold {}", describe(raw))));
        }
    };
    Ok(Target { at: FieldRef::new(&village.id, period, field), value, author })
}

fn describe(raw: &RawValue) -> &'static str {
    match raw {
        RawValue::Amount(_) => "a number",
        RawValue::Text(_) => "text",
        RawValue::Point(_) => "a location",
        RawValue::Deleted => "a deletion",
    }
}

/// Indicator codes whose values bound `field`: its whole and its parts.
/// [`check_parts`] needs the values of these and no others.
pub fn bounding_indicators<'a>(catalogue: &'a Catalogue, field: &FieldKey) -> Vec<&'a str> {
    let FieldKey::Indicator(code) = field else {
        return Vec::new();
    };
    let mut codes: Vec<&str> = catalogue.parts_of(code).map(|i| i.code.as_str()).collect();
    if let Some(parent) = catalogue.indicator(code).and_then(|i| i.parent.as_deref()) {
        codes.push(parent);
    }
    codes
}

/// The amounts of the indicators that bound `field` (its whole and its parts,
/// see [`bounding_indicators`]), read through `read`, the caller's view of the
/// submission's other fields: the server's store inside its write, the
/// tablet's local copy with the edits of the batch being recorded. What
/// [`check_parts`] needs, gathered the same way on every side.
pub fn part_siblings<'a, E>(
    catalogue: &'a Catalogue,
    field: &FieldKey,
    mut read: impl FnMut(&FieldKey) -> std::result::Result<Option<Value>, E>,
) -> std::result::Result<HashMap<&'a str, Amount>, E> {
    let mut siblings = HashMap::new();
    for code in bounding_indicators(catalogue, field) {
        if let Some(Value::Amount(a)) = read(&FieldKey::Indicator(code.to_owned()))? {
            siblings.insert(code, a);
        }
    }
    Ok(siblings)
}

/// Checks that an "of which" part never exceeds its whole once `value` is
/// written to `field`. `sibling` gives the current value of another indicator
/// of the same submission.
pub fn check_parts(
    catalogue: &Catalogue,
    field: &FieldKey,
    value: &Value,
    sibling: impl Fn(&str) -> Option<Amount>,
) -> Result<()> {
    let FieldKey::Indicator(code) = field else {
        return Ok(());
    };
    let amount = match value {
        Value::Amount(a) => a,
        Value::Deleted => {
            if let Some(part) = catalogue.parts_of(code).find(|p| sibling(&p.code).is_some()) {
                return Err(Error::Invalid(format!(
                    "{code} cannot be deleted while its part {} has a value: delete the part first",
                    part.code
                )));
            }
            return Ok(());
        }
        _ => return Ok(()),
    };
    let Some(ind) = catalogue.indicator(code) else {
        return Ok(());
    };
    if let Some(parent) = &ind.parent {
        if let Some(whole) = sibling(parent) {
            if amount.cmp_value(whole) == Ordering::Greater {
                return Err(Error::Invalid(format!(
                    "{code} = {amount} {unit} is more than its whole {parent} = {whole} {unit}: a part cannot exceed it",
                    unit = ind.unit
                )));
            }
        }
    }
    for part in catalogue.parts_of(code) {
        if let Some(p) = sibling(&part.code) {
            if p.cmp_value(*amount) == Ordering::Greater {
                return Err(Error::Invalid(format!(
                    "{code} = {amount} {unit} is less than its part {} = {p} {unit}: lower the part first",
                    part.code,
                    unit = ind.unit
                )));
            }
        }
    }
    Ok(())
}

/// Checks a value typed into a form for `indicator`, as the app does before
/// it saves: the typed text ([`Amount::parse_typed`]), the village maximum,
/// and the "of which" rule against `siblings`, the other indicators of the
/// same report that have a value (others are ignored). `Ok(None)` clears
/// the field. What this accepts, [`validate`] and [`check_parts`] accept
/// once written as a plain decimal.
pub fn check_typed(
    indicator: &Indicator,
    typed: &str,
    siblings: &[(&Indicator, Amount)],
) -> Result<Option<Amount>, Refusal> {
    let parts = || siblings.iter().filter(|(s, _)| s.parent.as_deref() == Some(&indicator.code));
    let Some(amount) = Amount::parse_typed(typed, indicator.kind.scale())? else {
        return match parts().next() {
            Some((part, _)) => Err(Refusal::WholeClearedWithPart { part: part.code.clone() }),
            None => Ok(None),
        };
    };
    if amount.cmp_value(indicator.max_per_village) == Ordering::Greater {
        return Err(Refusal::AboveMax { max: indicator.max_per_village });
    }
    let whole = siblings.iter().find(|(s, _)| Some(&s.code) == indicator.parent.as_ref());
    if let Some((whole, whole_amount)) = whole {
        if amount.cmp_value(*whole_amount) == Ordering::Greater {
            return Err(Refusal::PartAboveWhole {
                whole: whole.code.clone(),
                whole_amount: *whole_amount,
            });
        }
    }
    if let Some((part, part_amount)) =
        parts().find(|(_, p)| p.cmp_value(amount) == Ordering::Greater)
    {
        return Err(Refusal::WholeBelowPart { part: part.code.clone(), part_amount: *part_amount });
    }
    Ok(Some(amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;
    use crate::hlc::Hlc;
    use crate::model::{GeoPoint, OrgUnit};

    fn mutation(field: &str, value: RawValue) -> Mutation {
        Mutation {
            id: 1,
            village_id: demo::SAMPLE_VILLAGE.into(),
            period: "2022".into(),
            field: field.into(),
            value,
            base_version: 0,
            hlc: Hlc(1),
            author: "Nguyễn Văn An".into(),
        }
    }

    fn amount(field: &str, text: &str) -> Mutation {
        mutation(field, RawValue::Amount(text.into()))
    }

    #[test]
    fn accepts_good_values() {
        let cat = demo::catalogue();
        let t = validate(&cat, &amount("road_km", "12.5")).unwrap();
        assert_eq!(t.value, Value::Amount(Amount::parse("12.5", 2).unwrap()));
        validate(&cat, &amount("village_cultural_house", "1")).unwrap();
        validate(&cat, &mutation("note", RawValue::Text("thôn 3".into()))).unwrap();
        let p = GeoPoint { lat_e7: 183_559_000, lon_e7: 1_058_877_000 };
        validate(&cat, &mutation("location", RawValue::Point(p))).unwrap();
        validate(&cat, &mutation("road_km", RawValue::Deleted)).unwrap();
        validate(&cat, &mutation("note", RawValue::Deleted)).unwrap();
        let err = validate(&cat, &mutation("no_such", RawValue::Deleted)).unwrap_err();
        assert!(err.to_string().contains("unknown indicator"), "{err}");
    }

    #[test]
    fn refuses_bad_values_with_a_reason() {
        let cat = demo::catalogue();
        let cases = [
            (amount("road_km", "-1"), "negative"),
            (amount("road_km", "NaN"), "not a valid quantity"),
            (amount("road_km", "inf"), "not a valid quantity"),
            (amount("road_km", "1.234"), "decimal point"),
            (amount("road_km", "100000"), "more than one village"),
            (amount("village_cultural_house", "1.5"), "whole numbers"),
            (amount("bridges", "1"), "unknown indicator"),
            (mutation("road_km", RawValue::Text("ten".into())), "takes a number"),
            (mutation("note", RawValue::Amount("1".into())), "cannot hold"),
            (
                mutation("location", RawValue::Point(GeoPoint { lat_e7: 950_000_000, lon_e7: 0 })),
                "off the globe",
            ),
        ];
        for (m, want) in cases {
            let err = validate(&cat, &m).unwrap_err().to_string();
            assert!(err.contains(want), "{m:?}: {err}");
        }
        let mut m = amount("road_km", "1");
        m.village_id = "nowhere".into();
        assert!(validate(&cat, &m).unwrap_err().to_string().contains("unknown village"));
        m.village_id = demo::SAMPLE_COMMUNE.into();
        assert!(validate(&cat, &m).unwrap_err().to_string().contains("not a village"));
        let mut m = amount("road_km", "1");
        m.period = "2022-Q9".into();
        assert!(validate(&cat, &m).unwrap_err().to_string().contains("unknown period"));
        let mut m = amount("road_km", "1");
        m.author = "  ".into();
        assert!(validate(&cat, &m).unwrap_err().to_string().contains("author"));
    }

    #[test]
    fn a_part_never_exceeds_its_whole() {
        let cat = demo::catalogue();
        let km = |s: &str| Amount::parse(s, 2).unwrap();
        let whole = |code: &str| (code == "road_km").then(|| km("5"));
        let part = FieldKey::Indicator("road_cement_km".into());
        assert!(check_parts(&cat, &part, &Value::Amount(km("5")), whole).is_ok());
        let err = check_parts(&cat, &part, &Value::Amount(km("5.01")), whole).unwrap_err();
        assert!(err.to_string().contains("cannot exceed"), "{err}");
        let parts = |code: &str| (code == "road_cement_km").then(|| km("3"));
        let road = FieldKey::Indicator("road_km".into());
        assert!(check_parts(&cat, &road, &Value::Amount(km("2")), parts).is_err());
        assert!(check_parts(&cat, &road, &Value::Amount(km("3")), parts).is_ok());
        assert!(check_parts(&cat, &road, &Value::Deleted, parts).is_err(), "a part stands");
        assert!(check_parts(&cat, &road, &Value::Deleted, |_| None).is_ok());
    }

    #[test]
    fn a_typed_value_is_checked_like_a_sent_one() {
        let cat = demo::catalogue();
        let road = cat.indicator("road_km").unwrap();
        let cement = cat.indicator("road_cement_km").unwrap();
        let houses = cat.indicator("commune_cultural_house").unwrap();
        let km = |s: &str| Amount::parse(s, 2).unwrap();
        assert_eq!(check_typed(road, " 12,5 ", &[]), Ok(Some(km("12.5"))));
        assert_eq!(check_typed(road, "", &[]), Ok(None));
        assert_eq!(check_typed(houses, "1,5", &[]), Err(Refusal::WholeNumbersOnly));
        assert_eq!(check_typed(houses, "6", &[]), Err(Refusal::AboveMax { max: Amount::whole(5) }));
        assert_eq!(check_typed(road, "1.234,5", &[]).unwrap_err().kind(), "ambiguous");
        let whole = [(road, km("5"))];
        assert_eq!(check_typed(cement, "5,00", &whole), Ok(Some(km("5"))));
        assert_eq!(
            check_typed(cement, "5,01", &whole),
            Err(Refusal::PartAboveWhole { whole: "road_km".into(), whole_amount: km("5") })
        );
        let part = [(cement, km("3"))];
        let err = check_typed(road, "2,9", &part).unwrap_err();
        assert_eq!(err.to_string(), "less than its part road_cement_km = 3: lower the part first");
        assert_eq!(
            check_typed(road, " ", &part),
            Err(Refusal::WholeClearedWithPart { part: "road_cement_km".into() })
        );
        assert_eq!(check_typed(cement, "", &whole), Ok(None), "a part may be cleared");
    }

    #[test]
    fn new_ids_and_names_keep_to_their_limits_and_old_ones_still_load() {
        assert!(check_id("an org unit id", "ha-tinh.huong-khe.thon_4-b").is_ok());
        for bad in ["", "Ha-Tinh", "thôn-1", "a b", "a/b", "=cmd"] {
            let err = check_id("an org unit id", bad).unwrap_err().to_string();
            assert!(err.contains("use only lower-case letters a-z"), "{bad:?}: {err}");
        }
        let long = "a".repeat(MAX_ID_CHARS + 1);
        assert!(matches!(check_id("an org unit id", &long), Err(Error::TooLong { .. })));
        let name = "Thôn".repeat(51);
        assert_eq!(
            check_name("the name of user an", &name).unwrap_err(),
            Error::TooLong { what: "the name of user an".into(), max: MAX_NAME_CHARS, chars: 204 }
        );
        assert!(check_name("a name", &"Thôn".repeat(50)).is_ok(), "200 characters fit");
        // A catalogue written before these rules still loads.
        let mut cat = demo::catalogue();
        let old = OrgUnit {
            id: "ha-tinh.Thôn Cũ".into(),
            name: "x".repeat(40_000),
            level: crate::model::Level::District,
            parent: Some("ha-tinh".into()),
        };
        assert!(old.check_new().is_err(), "refused as new input");
        cat = Catalogue::new(
            cat.indicators_in_order().cloned().collect(),
            cat.org_units.into_values().chain([old]).collect(),
        )
        .expect("kept as stored");
        assert!(cat.org_unit("ha-tinh.Thôn Cũ").is_some());
    }
}
