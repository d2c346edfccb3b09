//! The shared validation cases: `tests/fixtures/validation-cases.json` is
//! what the Rust core decides for a few hundred values a surveyor might type
//! (every scale, wholes and parts, bounds, commas, dots, spaces, garbage),
//! and the app's `validate.js` must decide the same in the browser
//! (`tests/browser/app_sync.rs`). This test fails when the committed file
//! differs from what the core computes; `FIELDSYNC_BLESS=1 cargo test -p
//! fieldsync-tests --test e2e validation_cases` rewrites it after a deliberate
//! change of the rules.

use std::path::Path;

use fieldsync::amount::Amount;
use fieldsync::demo;
use fieldsync::sync::{Mutation, RawValue};
use fieldsync::validate::{check_parts, check_typed, validate};
use fieldsync::{Catalogue, FieldKey, Hlc, Indicator, ValueKind};
use fieldsync_proto::convert::indicator_to_wire;
use serde_json::{json, Value as Json};

const FIXTURE: &str = "tests/fixtures/validation-cases.json";

/// What a surveyor might type into any number field.
const TYPED: &[&str] = &[
    "0",
    "1",
    "5",
    "12",
    "200",
    "200,00",
    "200,01",
    "201",
    "1,5",
    "1.5",
    "1,50",
    "1,05",
    "0,5",
    "0.25",
    "12,345",
    "1,234",
    "1.234",
    "1.234,5",
    "1,234,5",
    "1.234.567",
    "1 234",
    " 7 ",
    "\t3\n",
    "\u{a0}4\u{a0}",
    "\u{202f}2,5",
    "-1",
    "-0",
    "-0,5",
    "- 5",
    "+1",
    "1e3",
    "1E3",
    "NaN",
    "nan",
    "Infinity",
    "inf",
    "abc",
    "12abc",
    "",
    "   ",
    "5,",
    "5.",
    ",5",
    ".5",
    "1-2",
    "--1",
    "0x10",
    "1..5",
    "1,,5",
    "١٢",
    "１２",
    "0,0000001",
    "0,00000001",
    "3,14159",
    "1,1234567",
    "5,00000000",
    "0000000000000000000000001",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999999",
    "922337203685,4775807",
    "922337203685,4775808",
];

/// Demo indicators plus made-up ones so every scale, two parts of one whole
/// and the largest quantity are covered.
fn indicators() -> Vec<Indicator> {
    let mut all = demo::indicators();
    let made_up = |code: &str, scale: u8, parent: Option<&str>, max: Amount| Indicator {
        code: code.into(),
        name_vi: format!("Chỉ tiêu thử {code}"),
        name_en: format!("Test indicator {code}"),
        unit: "ha".into(),
        kind: match scale {
            0 => ValueKind::Integer,
            scale => ValueKind::Decimal { scale },
        },
        parent: parent.map(Into::into),
        max_per_village: max,
    };
    all.push(made_up("test_scale_1", 1, None, Amount::whole(50)));
    all.push(made_up("test_scale_3", 3, None, Amount::whole(1000)));
    all.push(made_up("test_scale_3_part_a", 3, Some("test_scale_3"), Amount::whole(1000)));
    all.push(made_up("test_scale_3_part_b", 3, Some("test_scale_3"), Amount::whole(1000)));
    for scale in 4..=7 {
        all.push(made_up(&format!("test_scale_{scale}"), scale, None, Amount::whole(1)));
    }
    all.push(made_up("test_largest_count", 0, None, Amount::whole(i64::MAX)));
    all.push(made_up("test_largest_ha", 7, None, Amount::new(i64::MAX, 7)));
    all
}

/// Indicators every typed input is tried on.
const EVERY_INPUT_ON: &[&str] = &[
    "road_km",
    "road_cement_km",
    "commune_cultural_house",
    "playground",
    "test_scale_1",
    "test_scale_3",
    "test_scale_4",
    "test_scale_5",
    "test_scale_6",
    "test_scale_7",
    "test_largest_count",
    "test_largest_ha",
];

/// (indicator code, typed text, (code, amount) of the other fields with a value).
type Case<S> = (&'static str, &'static str, S);

/// The "of which" rule.
#[rustfmt::skip]
const WITH_SIBLINGS: &[Case<&[(&str, &str)]>] = &[
    ("road_cement_km", "5", &[("road_km", "5")]),
    ("road_cement_km", "5,00", &[("road_km", "5")]),
    ("road_cement_km", "4,99", &[("road_km", "5")]),
    ("road_cement_km", "5,01", &[("road_km", "5")]),
    ("road_cement_km", "6", &[("road_km", "5")]),
    ("road_cement_km", "", &[("road_km", "5")]),
    ("road_cement_km", "-1", &[("road_km", "5")]),
    ("road_cement_km", "abc", &[("road_km", "5")]),
    ("road_cement_km", "0", &[("road_km", "0")]),
    ("road_cement_km", "0,01", &[("road_km", "0")]),
    ("road_cement_km", "201", &[("road_km", "5")]),
    ("road_cement_km", "3", &[("drainage_km", "1")]),
    ("road_km", "2", &[("road_cement_km", "3")]),
    ("road_km", "2,99", &[("road_cement_km", "3")]),
    ("road_km", "3", &[("road_cement_km", "3")]),
    ("road_km", "3,00", &[("road_cement_km", "3")]),
    ("road_km", "3,01", &[("road_cement_km", "3")]),
    ("road_km", "", &[("road_cement_km", "3")]),
    ("road_km", "  ", &[("road_cement_km", "0")]),
    ("road_km", "", &[("drainage_km", "3")]),
    ("road_km", "250", &[("road_cement_km", "3")]),
    ("road_km", "1", &[("drainage_km", "100"), ("canal_cement_km", "50")]),
    ("canal_km", "10,5", &[("canal_cement_km", "10.5")]),
    ("canal_km", "10,49", &[("canal_cement_km", "10.5")]),
    ("canal_cement_km", "10,5", &[("canal_km", "10.5")]),
    ("canal_cement_km", "10,51", &[("canal_km", "10.5")]),
    ("test_scale_3", "5", &[("test_scale_3_part_a", "2"), ("test_scale_3_part_b", "7.5")]),
    ("test_scale_3", "7,499", &[("test_scale_3_part_a", "2"), ("test_scale_3_part_b", "7.5")]),
    ("test_scale_3", "7,5", &[("test_scale_3_part_a", "2"), ("test_scale_3_part_b", "7.5")]),
    ("test_scale_3", "1", &[("test_scale_3_part_a", "2"), ("test_scale_3_part_b", "7.5")]),
    ("test_scale_3", "", &[("test_scale_3_part_a", "2"), ("test_scale_3_part_b", "7.5")]),
    ("test_scale_3", "", &[("test_scale_3_part_b", "0.001")]),
    ("test_scale_3_part_a", "2,001", &[("test_scale_3", "2"), ("test_scale_3_part_b", "1")]),
    ("test_scale_3_part_a", "2", &[("test_scale_3", "2"), ("test_scale_3_part_b", "1")]),
    ("test_scale_3_part_b", "0,0005", &[("test_scale_3", "2")]),
];

/// The case file as the core computes it.
fn compute() -> String {
    let all = indicators();
    let by_code = |code: &str| all.iter().find(|i| i.code == code).expect("a known code");
    let mut cases: Vec<Case<Vec<(&str, &str)>>> = Vec::new();
    for code in EVERY_INPUT_ON {
        cases.extend(TYPED.iter().map(|typed| (*code, *typed, Vec::new())));
    }
    cases.extend(WITH_SIBLINGS.iter().map(|(c, t, s)| (*c, *t, s.to_vec())));
    let lines: Vec<String> = cases
        .into_iter()
        .map(|(code, typed, siblings)| {
            let values: Vec<(&Indicator, Amount)> = siblings
                .iter()
                .map(|(c, a)| (by_code(c), a.parse().expect("a plain decimal sibling")))
                .collect();
            let expect = match check_typed(by_code(code), typed, &values) {
                Ok(amount) => json!({ "ok": true, "amount": amount.map(|a| a.to_string()) }),
                Err(refusal) => json!({ "ok": false, "kind": refusal.kind() }),
            };
            let siblings: Vec<Json> =
                siblings.iter().map(|(c, a)| json!({ "code": c, "amount": a })).collect();
            let case =
                json!({ "indicator": code, "typed": typed, "siblings": siblings, "expect": expect });
            format!("    {case}")
        })
        .collect();
    let indicators: Vec<String> = all
        .iter()
        .map(|i| format!("    {}", serde_json::to_string(&indicator_to_wire(i)).expect("json")))
        .collect();
    format!(
        "{{\n  \"format\": \"fieldsync-validation-cases/1\",\n  \"about\": \"Generated from the \
         Rust core by tests/e2e/validation_cases.rs (FIELDSYNC_BLESS=1 cargo test -p \
         fieldsync-tests --test e2e validation_cases rewrites it). indicators: as Bootstrap sends them (proto3 JSON). Each \
         case: the indicator's code, the text typed, the other fields of the report that have a \
         value, and what validateValue must answer: the amount as a plain dot decimal (null: \
         the field is cleared) or the kind of refusal.\",\n  \"indicators\": [\n{}\n  ],\n  \
         \"cases\": [\n{}\n  ]\n}}\n",
        indicators.join(",\n"),
        lines.join(",\n")
    )
}

#[test]
fn the_committed_cases_are_what_the_core_decides() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(FIXTURE);
    let computed = compute();
    if std::env::var_os("FIELDSYNC_BLESS").is_some() {
        std::fs::write(&path, &computed).expect("write the case file");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != computed {
        let first = committed
            .lines()
            .zip(computed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(computed.lines().count()));
        panic!(
            "{FIXTURE} differs from what the core decides (first at line {}):\n  committed: {}\n  \
             computed:  {}\nIf the rules changed on purpose, run FIELDSYNC_BLESS=1 cargo test -p \
             fieldsync-tests --test e2e validation_cases and commit the file (the app's validate.js must then agree).",
            first + 1,
            committed.lines().nth(first).unwrap_or("(end of file)"),
            computed.lines().nth(first).unwrap_or("(end of file)"),
        );
    }
    let cases: Json = serde_json::from_str(&committed).expect("the case file is JSON");
    let count = cases["cases"].as_array().map_or(0, Vec::len);
    assert!(count >= 300, "only {count} cases");
}

/// The form's rules and the server's: a value the form accepts is accepted
/// by the server once sent as a plain decimal, and a plain-decimal value the
/// form refuses for its range or kind is refused by the server too.
#[test]
fn the_form_accepts_what_the_server_accepts() {
    let catalogue: Catalogue = demo::catalogue();
    let cases: Json = serde_json::from_str(&compute()).expect("json");
    let mut compared = 0;
    for case in cases["cases"].as_array().expect("cases") {
        let code = case["indicator"].as_str().expect("code");
        if catalogue.indicator(code).is_none() {
            continue;
        }
        let typed = case["typed"].as_str().expect("typed");
        let siblings: Vec<(String, Amount)> = case["siblings"]
            .as_array()
            .expect("siblings")
            .iter()
            .map(|s| {
                let amount = s["amount"].as_str().expect("amount").parse().expect("decimal");
                (s["code"].as_str().expect("code").to_owned(), amount)
            })
            .collect();
        let sent = match &case["expect"] {
            e if e["ok"] == true => match e["amount"].as_str() {
                Some(a) => RawValue::Amount(a.into()),
                None => RawValue::Deleted,
            },
            // The server sees exactly the text when it is a plain decimal.
            _ if typed.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                && !typed.is_empty() =>
            {
                RawValue::Amount(typed.into())
            }
            _ => continue,
        };
        let m = Mutation {
            id: 1,
            village_id: demo::SAMPLE_VILLAGE.into(),
            period: "2022".into(),
            field: code.into(),
            value: sent.clone(),
            base_version: 0,
            hlc: Hlc(1),
            author: "Nguyễn Văn An".into(),
        };
        let lookup = |c: &str| siblings.iter().find(|(s, _)| s == c).map(|(_, a)| *a);
        let server = validate(&catalogue, &m).and_then(|t| {
            check_parts(&catalogue, &FieldKey::Indicator(code.into()), &t.value, lookup)
        });
        let form_ok = case["expect"]["ok"] == true;
        assert_eq!(
            server.is_ok(),
            form_ok,
            "{code} typed {typed:?} ({sent:?}) with {siblings:?}: form {}, server {server:?}",
            case["expect"]
        );
        compared += 1;
    }
    assert!(compared >= 100, "only {compared} cases compared");
}
