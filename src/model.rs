//! What fieldsync counts and where: org units, indicators, periods, and the
//! fields of a submission.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::amount::Amount;
use crate::error::{Error, Result};

/// Names are stored, compared and exported NFC-normalised, so "Hương Khê"
/// typed on any keyboard is one name.
pub fn nfc(text: &str) -> String {
    // Most text arrives composed: the quick check says so without
    // decomposing and recomposing every character.
    match unicode_normalization::is_nfc_quick(text.chars()) {
        unicode_normalization::IsNormalized::Yes => text.to_owned(),
        _ => text.nfc().collect(),
    }
}

/// Folds text for search: lower case, no tone marks or diacritics, đ as d,
/// and `-`, `.`, `_` as spaces, so "phuc dong", "Phúc Đồng" and "phuc-dong"
/// all find Xã Phúc Đồng.
pub fn search_key(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'đ' => 'd',
            '-' | '.' | '_' => ' ',
            c => c,
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A level of the administrative hierarchy. A tree has a province at the
/// top and villages at the bottom, each village in a commune; the district
/// level is there or not: Vietnam's tree was province → district → commune
/// → village until 30 June 2025 and is province → commune → village since 1
/// July 2025. Which levels a tree has is the catalogue's
/// ([`Catalogue::levels`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    Province,
    District,
    Commune,
    Village,
}

impl Level {
    /// Every level a tree may have, top down.
    pub const ALL: [Level; 4] = [Level::Province, Level::District, Level::Commune, Level::Village];

    /// The levels a unit of this level may hang from: a commune from a
    /// district or, in a tree without districts, straight from its province.
    pub fn parents(self) -> &'static [Level] {
        match self {
            Level::Province => &[],
            Level::District => &[Level::Province],
            Level::Commune => &[Level::District, Level::Province],
            Level::Village => &[Level::Commune],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::District => "district",
            Level::Commune => "commune",
            Level::Village => "village",
        }
    }

    /// The level named `s` ("province", "district", "commune", "village"),
    /// or in Vietnamese by its units' kinds ("tỉnh", "huyện", "xã", "thôn"
    /// and the others of [`Level::kinds_vi`]), in any case and with or
    /// without tone marks.
    pub fn parse(s: &str) -> Option<Level> {
        let key = search_key(s);
        Level::ALL
            .into_iter()
            .find(|l| key == l.as_str() || l.kinds_vi().iter().any(|k| search_key(k) == key))
    }

    /// The Vietnamese names of the kinds of unit at this level, the first
    /// the most common: tỉnh and thành phố (trực thuộc trung ương); huyện,
    /// thị xã, thành phố (thuộc tỉnh); xã, phường, thị trấn, đặc khu; thôn,
    /// tổ dân phố and the other names of a village.
    pub fn kinds_vi(self) -> &'static [&'static str] {
        match self {
            Level::Province => &["tỉnh", "thành phố trực thuộc trung ương"],
            Level::District => &["huyện", "thị xã", "thành phố thuộc tỉnh", "quận"],
            Level::Commune => &["xã", "phường", "thị trấn", "đặc khu"],
            Level::Village => &["thôn", "tổ dân phố", "xóm", "bản", "ấp", "khu phố"],
        }
    }
}

/// A province, district-level unit, commune or village. Ids are stable slugs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgUnit {
    pub id: String,
    pub name: String,
    pub level: Level,
    pub parent: Option<String>,
}

/// How an indicator's values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueKind {
    /// Whole numbers: cultural houses, sports areas.
    Integer,
    /// Fixed-point decimals with this many digits after the point: km, ha.
    Decimal { scale: u8 },
}

impl ValueKind {
    pub fn scale(self) -> u8 {
        match self {
            ValueKind::Integer => 0,
            ValueKind::Decimal { scale } => scale,
        }
    }
}

/// Something the programme counts, per village and period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub unit: String,
    pub kind: ValueKind,
    /// The indicator this one is an "of which" part of: never larger than it.
    pub parent: Option<String>,
    /// The largest value one village may plausibly report in one period; larger
    /// values are typing mistakes and are refused.
    pub max_per_village: Amount,
}

/// Indicators and org units: what may be recorded, and where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Parts", into = "Parts")]
pub struct Catalogue {
    pub indicators: BTreeMap<String, Indicator>,
    pub org_units: BTreeMap<String, OrgUnit>,
    /// Org unit ids by parent id (the province ids under ""), for walking
    /// down the tree without scanning it.
    children: BTreeMap<String, Vec<String>>,
    /// Indicator codes in the order they were given: the order of the
    /// province's report.
    order: Vec<String>,
    /// Which of [`Level::ALL`] the tree has units at.
    levels: [bool; 4],
    /// The tree's past (see [`crate::tree`]); kept and sent apart from
    /// the tree in force now, which is all a tablet needs.
    history: crate::tree::TreeHistory,
}

/// What is stored of a catalogue; the index is rebuilt (and everything
/// checked again) on load.
#[derive(Clone, Serialize, Deserialize)]
struct Parts {
    indicators: Vec<Indicator>,
    org_units: Vec<OrgUnit>,
}

impl TryFrom<Parts> for Catalogue {
    type Error = Error;

    fn try_from(p: Parts) -> Result<Self> {
        Catalogue::new(p.indicators, p.org_units)
    }
}

impl From<Catalogue> for Parts {
    fn from(c: Catalogue) -> Self {
        let mut indicators = c.indicators;
        Parts {
            indicators: c.order.iter().filter_map(|code| indicators.remove(code)).collect(),
            org_units: c.org_units.into_values().collect(),
        }
    }
}

impl Catalogue {
    /// Builds a catalogue, checking that it hangs together: parents exist and
    /// sit one level up, "of which" parents exist and share the unit, names
    /// are NFC.
    pub fn new(indicators: Vec<Indicator>, org_units: Vec<OrgUnit>) -> Result<Self> {
        let mut cat = Catalogue::default();
        for mut unit in org_units {
            unit.name = nfc(&unit.name);
            // Ids are parts of keys, with a zero byte as the separator.
            if unit.id.is_empty() || unit.id.chars().any(char::is_control) {
                return Err(Error::Invalid(format!(
                    "org unit id {:?} must be non-empty, without control characters",
                    unit.id
                )));
            }
            if cat.org_units.insert(unit.id.clone(), unit.clone()).is_some() {
                return Err(Error::Invalid(format!("org unit {} is listed twice", unit.id)));
            }
        }
        for unit in cat.org_units.values() {
            let parent_level = unit.parent.as_ref().map(|p| cat.org_units.get(p).map(|u| u.level));
            let parents = unit.level.parents();
            let fits = match parent_level {
                None => parents.is_empty(),
                Some(Some(level)) => parents.contains(&level),
                Some(None) => false,
            };
            if !fits {
                let wanted = match parents {
                    [] => "no parent".to_owned(),
                    [one] => format!("a parent {}", one.as_str()),
                    many => format!(
                        "a parent {}",
                        many.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(" or ")
                    ),
                };
                let given = match (&unit.parent, parent_level.flatten()) {
                    (None, _) => "none".to_owned(),
                    (Some(p), Some(level)) => format!("{p}, a {}", level.as_str()),
                    (Some(p), None) => format!("{p}, which is not in the catalogue"),
                };
                return Err(Error::Invalid(format!(
                    "org unit {} ({}) needs {wanted}; its parent is {given}",
                    unit.id,
                    unit.level.as_str()
                )));
            }
            cat.levels[unit.level as usize] = true;
        }
        for mut ind in indicators {
            ind.name_vi = nfc(&ind.name_vi);
            if FieldKey::parse_reserved(&ind.code).is_some() || ind.code.is_empty() {
                return Err(Error::Invalid(format!("{:?} cannot be an indicator code", ind.code)));
            }
            if cat.indicators.insert(ind.code.clone(), ind.clone()).is_some() {
                return Err(Error::Invalid(format!("indicator {} is listed twice", ind.code)));
            }
            cat.order.push(ind.code.clone());
        }
        for ind in cat.indicators.values() {
            let max = ind.max_per_village;
            if max.is_negative() || Amount::parse(&max.to_string(), ind.kind.scale()).is_err() {
                return Err(Error::Invalid(format!(
                    "indicator {}: the largest value per village ({max}) must be a positive {} \
                     with at most {} decimal(s)",
                    ind.code,
                    ind.unit,
                    ind.kind.scale()
                )));
            }
            if let Some(parent) = &ind.parent {
                let whole = cat.indicators.get(parent).ok_or_else(|| {
                    Error::Invalid(format!("indicator {} is part of unknown {parent}", ind.code))
                })?;
                if whole.unit != ind.unit || whole.parent.is_some() {
                    return Err(Error::Invalid(format!(
                        "indicator {} must share the unit of {parent}, which must not itself be a part",
                        ind.code
                    )));
                }
            }
        }
        for unit in cat.org_units.values() {
            let parent = unit.parent.clone().unwrap_or_default();
            cat.children.entry(parent).or_default().push(unit.id.clone());
        }
        Ok(cat)
    }

    /// The tree's past: units no longer in force, what the others were.
    pub fn history(&self) -> &crate::tree::TreeHistory {
        &self.history
    }

    /// This catalogue with `history` as its past, checked: a unit no longer
    /// in force is not in force now too, and every past is of a known unit.
    pub fn with_history(mut self, history: crate::tree::TreeHistory) -> Result<Self> {
        for id in history.retired.keys() {
            if self.org_units.contains_key(id) {
                return Err(Error::Invalid(format!("{id} is both in force and retired")));
            }
        }
        for id in history.past.keys() {
            if !self.org_units.contains_key(id) && !history.retired.contains_key(id) {
                return Err(Error::Invalid(format!("the tree's history names unknown unit {id}")));
            }
        }
        for code in history.retired_indicators.keys() {
            if !self.indicators.contains_key(code) {
                return Err(Error::Invalid(format!(
                    "retired indicator {code} is not in the catalogue"
                )));
            }
        }
        self.history = history;
        Ok(self)
    }

    /// The levels this tree has units at, top down: province, district,
    /// commune, village before 1 July 2025; province, commune, village
    /// after. An empty catalogue has none.
    pub fn levels(&self) -> Vec<Level> {
        Level::ALL.into_iter().filter(|l| self.levels[*l as usize]).collect()
    }

    /// The level of this tree just below `level`, if any (what a table of
    /// `level` drills down into).
    pub fn level_below(&self, level: Level) -> Option<Level> {
        self.levels().into_iter().find(|l| *l > level)
    }

    /// The units at `level` inside `area` (itself included), or inside every
    /// province when `area` is `None`, in id order. Walks only the part of the
    /// tree it returns.
    pub fn units_at(&self, level: Level, area: Option<&str>) -> Vec<&OrgUnit> {
        let mut frontier: Vec<&str> = match area {
            Some(a) => self.org_units.get(a).map(|u| u.id.as_str()).into_iter().collect(),
            None => {
                self.children.get("").map_or(Vec::new(), |c| c.iter().map(String::as_str).collect())
            }
        };
        let mut out = Vec::new();
        while let Some(id) = frontier.pop() {
            let Some(unit) = self.org_units.get(id) else { continue };
            if unit.level == level {
                out.push(unit);
            } else if unit.level < level {
                if let Some(kids) = self.children.get(id) {
                    frontier.extend(kids.iter().map(String::as_str));
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// `area` and every unit below it, walking only that part of the tree.
    pub fn subtree(&self, area: &str) -> Vec<&OrgUnit> {
        let mut out = Vec::new();
        let mut frontier = vec![area];
        while let Some(id) = frontier.pop() {
            let Some(unit) = self.org_units.get(id) else { continue };
            out.push(unit);
            if let Some(kids) = self.children.get(id) {
                frontier.extend(kids.iter().map(String::as_str));
            }
        }
        out
    }

    /// The indicators in the order of the province's report.
    pub fn indicators_in_order(&self) -> impl Iterator<Item = &Indicator> {
        self.order.iter().filter_map(|code| self.indicators.get(code))
    }

    pub fn org_unit(&self, id: &str) -> Option<&OrgUnit> {
        self.org_units.get(id)
    }

    pub fn indicator(&self, code: &str) -> Option<&Indicator> {
        self.indicators.get(code)
    }

    /// The village with this id, or a message naming what is wrong.
    pub fn village(&self, id: &str) -> Result<&OrgUnit> {
        match self.org_units.get(id) {
            Some(unit) if unit.level == Level::Village => Ok(unit),
            Some(unit) => Err(Error::Invalid(format!(
                "{id} ({}) is a {}, not a village: record values per village",
                unit.name,
                unit.level.as_str()
            ))),
            None => match self.history.past.get(id).and_then(|p| p.retired.as_ref()) {
                Some(r) => Err(Error::Invalid(format!(
                    "village {id} is no longer in force: it was retired on {}{}",
                    r.on,
                    r.successor.as_ref().map_or(String::new(), |s| format!(
                        " and merged into {s}; record under {s}"
                    ))
                ))),
                None => Err(Error::NotFound(format!("unknown village {id:?}"))),
            },
        }
    }

    /// Indicators that are "of which" parts of `code`.
    pub fn parts_of<'a>(&'a self, code: &str) -> impl Iterator<Item = &'a Indicator> + 'a {
        let code = code.to_owned();
        self.indicators.values().filter(move |i| i.parent.as_deref() == Some(code.as_str()))
    }
}

/// The time span a submission reports on: a year, a quarter or a month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Period {
    Year(u16),
    Quarter(u16, u8),
    Month(u16, u8),
}

/// Years the programme can report on.
pub(crate) const YEARS: std::ops::RangeInclusive<u16> = 2000..=2100;

impl FromStr for Period {
    type Err = Error;

    /// "2022", "2022-Q3" or "2022-07".
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Refused(crate::reason::Reason::BadPeriod { typed: s.to_owned() });
        let (year, rest) = match s.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (s, None),
        };
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: u16 = year.parse().map_err(|_| bad())?;
        if !YEARS.contains(&year) {
            return Err(bad());
        }
        let number = |t: &str, len: usize| {
            (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u8>().ok())
                .flatten()
        };
        match rest {
            None => Ok(Period::Year(year)),
            Some(r) => match r.strip_prefix('Q') {
                Some(q) => match number(q, 1) {
                    Some(q @ 1..=4) => Ok(Period::Quarter(year, q)),
                    _ => Err(bad()),
                },
                None => match number(r, 2) {
                    Some(m @ 1..=12) => Ok(Period::Month(year, m)),
                    _ => Err(bad()),
                },
            },
        }
    }
}

impl Period {
    /// The year the period falls in.
    pub fn year(self) -> u16 {
        match self {
            Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) => y,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y}"),
            Period::Quarter(y, q) => write!(f, "{y}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y}-{m:02}"),
        }
    }
}

/// Which field of a submission a change is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FieldKey {
    /// The value of one indicator, by code.
    Indicator(String),
    /// The surveyor's free-text note.
    Note,
    /// Where the survey was taken.
    Location,
}

impl FieldKey {
    fn parse_reserved(s: &str) -> Option<FieldKey> {
        match s {
            "note" => Some(FieldKey::Note),
            "location" => Some(FieldKey::Location),
            _ => None,
        }
    }

    /// "note", "location", or an indicator code.
    pub fn parse(s: &str) -> FieldKey {
        Self::parse_reserved(s).unwrap_or_else(|| FieldKey::Indicator(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            FieldKey::Indicator(code) => code,
            FieldKey::Note => "note",
            FieldKey::Location => "location",
        }
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A GPS point in degrees × 10^7: exact, about 1 cm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat_e7: i32,
    pub lon_e7: i32,
}

impl fmt::Display for GeoPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: i32| Amount::new(i64::from(v), 7).to_string();
        write!(f, "{},{}", show(self.lat_e7), show(self.lon_e7))
    }
}

impl FromStr for GeoPoint {
    type Err = Error;

    /// "18.3559,105.8877" (latitude,longitude in degrees).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "{s:?} is not a location: write latitude,longitude e.g. 18.3559,105.8877"
            ))
        };
        let (lat, lon) = s.split_once(',').ok_or_else(bad)?;
        let deg = |t: &str| -> Result<i32> {
            let a: Amount = t.trim().parse().map_err(|_| bad())?;
            let units = a.rescale(7).ok_or_else(bad)?.units();
            i32::try_from(units).map_err(|_| bad())
        };
        Ok(GeoPoint { lat_e7: deg(lat)?, lon_e7: deg(lon)? })
    }
}

/// The value held by one field. `Deleted` is a tombstone: it syncs like any edit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Value {
    Amount(Amount),
    Text(String),
    Point(GeoPoint),
    Deleted,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Amount(a) => write!(f, "{a}"),
            Value::Text(t) => write!(f, "{t:?}"),
            Value::Point(p) => write!(f, "@{p}"),
            Value::Deleted => f.write_str("(deleted)"),
        }
    }
}

/// Identifies one village's report for one period. Derived from
/// (village, period), so every tablet that starts the same report offline
/// names it the same way and the server holds one submission, never two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubmissionId(pub Uuid);

/// The namespace of submission ids (a fixed random UUID).
const SUBMISSION_NAMESPACE: Uuid = Uuid::from_u128(0x5e0c_9a52_7d3b_4f61_9c2e_8a1f_4b7d_2c90);

impl SubmissionId {
    pub fn of(village_id: &str, period: Period) -> Self {
        let name = format!("{village_id}\u{1f}{period}");
        SubmissionId(Uuid::new_v5(&SUBMISSION_NAMESPACE, name.as_bytes()))
    }
}

impl fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tablet's identity: a random UUID chosen at `init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceId(pub Uuid);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for DeviceId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(DeviceId)
            .map_err(|_| Error::Invalid(format!("device id {s:?} is not a UUID")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_round_trip() {
        for text in ["2022", "2022-Q3", "2022-07", "2100-12"] {
            assert_eq!(text.parse::<Period>().unwrap().to_string(), text);
        }
        for bad in ["22", "2022-Q5", "2022-Q0", "2022-13", "2022-7", "1999", "2022-", "x", "2022-Q"]
        {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }

    #[test]
    fn submission_id_depends_only_on_village_and_period() {
        let a = SubmissionId::of("v1", Period::Year(2022));
        assert_eq!(a, SubmissionId::of("v1", Period::Year(2022)));
        assert_ne!(a, SubmissionId::of("v1", Period::Year(2023)));
        assert_ne!(a, SubmissionId::of("v2", Period::Year(2022)));
    }

    #[test]
    fn names_are_nfc() {
        // "ơ" as o + combining horn, then as one code point.
        let decomposed = "Ho\u{31b}\u{300}a";
        assert_eq!(nfc(decomposed), "Hờa");
        assert_eq!(nfc(decomposed).chars().count(), 3);
    }

    #[test]
    fn the_quick_path_normalises_as_the_full_one() {
        use unicode_normalization::UnicodeNormalization;
        let texts = [
            "Hương Khê, Phúc Đồng: đường bê tông 1,5 km",
            "Hu\u{31b}o\u{31b}ng Khe\u{302}",
            "e\u{301} composed later",
            "\u{1100}\u{1161} jamo",
            "a\u{323}\u{302} marks out of order \u{302}\u{323}",
            "\u{212b} ångström sign",
            "",
        ];
        for text in texts {
            assert_eq!(nfc(text), text.nfc().collect::<String>(), "{text:?}");
        }
    }

    #[test]
    fn search_keys_ignore_diacritics_and_separators() {
        assert_eq!(search_key("Xã Phúc Đồng"), "xa phuc dong");
        assert_eq!(search_key("ha-tinh.huong-khe"), "ha tinh huong khe");
        assert!(search_key("Thôn 1, Xã Phúc Đồng").contains(&search_key("phúc đồng")));
    }

    #[test]
    fn org_unit_ids_are_refused_empty_or_with_control_characters() {
        let unit = |id: &str| OrgUnit {
            id: id.into(),
            name: "Tỉnh".into(),
            level: Level::Province,
            parent: None,
        };
        assert!(Catalogue::new(vec![], vec![unit("ha-tinh")]).is_ok());
        for bad in ["", "ha\0tinh", "ha\ntinh"] {
            let err = Catalogue::new(vec![], vec![unit(bad)]).unwrap_err().to_string();
            assert!(err.contains("control characters"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn geo_points_parse() {
        let p: GeoPoint = "18.3559,105.8877".parse().unwrap();
        assert_eq!(p, GeoPoint { lat_e7: 183_559_000, lon_e7: 1_058_877_000 });
        assert_eq!(p.to_string(), "18.3559,105.8877");
        assert!("north".parse::<GeoPoint>().is_err());
    }
}
