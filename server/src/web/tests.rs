//! The templates escape what they are given: a stored name or reason with
//! markup in it shows as text on every page that shows it.

use fieldsync::review::{ReviewState, Verdict};
use fieldsync::Level;

use axum::http::{header, HeaderMap, HeaderValue};

use super::html::Lang;
use super::pages::{self, conflict, conflicts, devices, enrollment, progress, queue, submission};

#[test]
fn cookies_are_found_by_name() {
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, HeaderValue::from_static("a=1; fs_session=abc; b=2"));
    assert_eq!(super::cookie(&headers, super::SESSION_COOKIE), Some("abc"));
    assert_eq!(super::cookie(&headers, "c"), None);
}

#[test]
fn escaping_covers_markup_and_quotes() {
    let text = "<script>\"x\" & 'y'</script>";
    assert_eq!(
        maud::html! { (text) }.into_string(),
        "&lt;script&gt;&quot;x&quot; &amp; 'y'&lt;/script&gt;"
    );
    let name = "Xã Phúc Đồng";
    assert_eq!(maud::html! { (name) }.into_string(), "Xã Phúc Đồng");
}

const HOSTILE: &str = "Trần <script>alert(\"x\")</script> & Co";
const ESCAPED: &str = "Trần &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co";

fn h() -> String {
    HOSTILE.to_owned()
}

/// `html` shows the hostile text escaped, `times` times at least, and never raw.
fn shows_escaped(html: &str, times: usize) {
    assert!(!html.contains("<script"), "raw markup in {html}");
    assert!(!html.contains("\"x\""), "a raw quote in {html}");
    assert!(html.matches(ESCAPED).count() >= times, "{times} escaped copies in {html}");
}

fn decided() -> queue::Decided {
    queue::Decided { name: h(), at: "01/01/2023 00:30".into(), reason: h() }
}

#[test]
fn the_queue_escapes_names_and_reasons() {
    let view = queue::View {
        approved: None,
        period: h(),
        area: h(),
        state: None,
        areas: vec![pages::AreaOption { id: h(), label: h(), selected: true }],
        counts: vec![(ReviewState::Submitted, 1)],
        more: false,
        query: h(),
        approvable: vec![(h(), h())],
        accepted: None,
        bulk_verdict: fieldsync::review::Verdict::Approve,
        csrf: h(),
        rows: vec![queue::Row {
            village_id: h(),
            village: h(),
            above: h(),
            period: h(),
            state: ReviewState::Returned,
            fields: 3,
            open_conflicts: 0,
            decision: Some(decided()),
        }],
        next: None,
    };
    let html = queue::render(&view, Lang::Vi).into_string();
    // The decider's name and the reason, the village and its communes.
    shows_escaped(&html, 6);
    assert!(html.contains(&format!("<q>{ESCAPED}</q>")), "{html}");
}

#[test]
fn a_submission_escapes_values_and_its_history() {
    let view = submission::View {
        village_id: "v1".into(),
        period: "2022".into(),
        name: h(),
        above: h(),
        state: ReviewState::Submitted,
        decision: Some(decided()),
        fields: vec![submission::Field {
            key: "note".into(),
            name: "Note".into(),
            value: h(),
            unit: String::new(),
            author: h(),
            device: "abcd1234".into(),
            received: "—".into(),
            conflict: true,
        }],
        verdicts: vec![Verdict::Return],
        blocked: None,
        decided: None,
        csrf: "token".into(),
        history: vec![submission::Entry {
            at: "—".into(),
            who: h(),
            device: String::new(),
            what: "Value recorded".into(),
            field: "Note".into(),
            change: format!("a → {HOSTILE}"),
            detail: h(),
        }],
        older: None,
    };
    let html = submission::render(&view, Lang::En).into_string();
    shows_escaped(&html, 8);
    assert!(html.contains(&format!("<td data-label=\"Change\">a → {ESCAPED} <span")), "{html}");
}

#[test]
fn the_conflict_pages_escape_values_and_authors() {
    let list = conflicts::View {
        resolved: None,
        period: "2022".into(),
        area: String::new(),
        areas: Vec::new(),
        rows: vec![conflicts::Row {
            village_id: h(),
            period: "2022".into(),
            field: "note".into(),
            village: h(),
            above: h(),
            field_name: "Note".into(),
            base: h(),
            values: vec![(h(), h()), ("2".into(), h())],
        }],
        next: String::new(),
    };
    shows_escaped(&conflicts::render(&list, Lang::Vi).into_string(), 6);
    let one = conflict::View {
        village_id: "v1".into(),
        period: "2022".into(),
        field: "note".into(),
        name: h(),
        above: h(),
        field_name: h(),
        current: Some((h(), String::new())),
        base: h(),
        candidates: vec![conflict::Candidate {
            value: h(),
            author: h(),
            device: "abcd1234".into(),
            received: "—".into(),
        }],
        csrf: "token".into(),
        settle: false,
        placeholder: "",
        settled: Some(conflict::Settled { value: h(), who: h(), at: "—".into(), comment: h() }),
        problem: None,
        pick: String::new(),
        value: String::new(),
        comment: String::new(),
    };
    shows_escaped(&conflict::render(&one, Lang::En).into_string(), 10);
}

#[test]
fn the_devices_pages_escape_names_and_labels() {
    let view = devices::View {
        done: None,
        surveyors: vec![devices::Surveyor { id: h(), name: h(), areas: h() }],
        more: false,
        codes: vec![devices::Code {
            id: h(),
            user_name: h(),
            user_id: h(),
            created_by: h(),
            created: "—".into(),
            expires: "—".into(),
        }],
        devices: vec![devices::Device { id: h(), who: h(), label: h(), since: "—".into() }],
        csrf: "token".into(),
    };
    shows_escaped(&devices::render(&view, Lang::Vi).into_string(), 12);
    let made = enrollment::View {
        user_name: h(),
        code: "ABCDE-FGHJK".into(),
        app_url: h(),
        link: h(),
        qr_svg: "<svg id=\"qr\"></svg>".into(),
        expires: "—".into(),
    };
    let html = enrollment::render(&made, Lang::En).into_string();
    shows_escaped(&html, 3);
    assert!(html.contains("<div class=\"qr\"><svg id=\"qr\"></svg></div>"), "{html}");
}

#[test]
fn progress_escapes_unit_names_in_the_table_and_the_bars() {
    let figure = || progress::Figure {
        reads: "1/2 — 50%".into(),
        notes: progress::Notes { pending: Some((1, h())), conflicts: 0, exceeds_whole: false },
    };
    let view = progress::View {
        period: "2022".into(),
        area: "p".into(),
        only: Some("road_km".into()),
        area_name: h(),
        pending: false,
        crumbs: vec![("p".into(), h())],
        areas: Vec::new(),
        levels: vec![Level::Commune, Level::Village],
        level: Level::Village,
        query: "period=2022".into(),
        cut: false,
        max_units: 300,
        drill: None,
        tree: h(),
        tree_changed: true,
        indicators: vec![progress::Indicator {
            code: "road_km".into(),
            name: h(),
            unit_label: String::new(),
            total: Some(figure()),
            rows: vec![progress::Row {
                unit_id: h(),
                unit_name: "A & B <i>".into(),
                done: "1".into(),
                plan: "2".into(),
                percent: "50".into(),
                figure: figure(),
                done_n: 1.0,
                plan_n: 2.0,
                met: false,
            }],
        }],
    };
    let html = progress::render(&view, Lang::Vi).into_string();
    shows_escaped(&html, 6);
    assert!(!html.contains("<i>") && html.matches("A &amp; B &lt;i&gt;").count() == 2, "{html}");
}

#[test]
fn the_frame_escapes_the_signed_in_name_and_the_title() {
    let who = pages::Who { name: HOSTILE, id: "giam", csrf: "token", devices: true };
    let body = maud::html! { p { "body" } };
    let html = pages::page(Lang::Vi, HOSTILE, Some(&who), pages::Section::Queue, body);
    let html = html.into_string();
    shows_escaped(&html, 2);
    assert!(html.contains("<a href=\"/queue\" aria-current=\"page\">"), "{html}");
    assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"token\">"), "{html}");
}

#[test]
fn an_error_message_is_text() {
    let said = super::said::said(
        Lang::En,
        &fieldsync::Catalogue::default(),
        &crate::app::Error::not_found(HOSTILE),
    );
    let view = pages::problem::View { title: "Not found", status: 404, said, signed_in: true };
    let html = pages::problem::render(&view, Lang::En).into_string();
    shows_escaped(&html, 1);
    assert!(html.contains("<span class=\"code\">(404)</span>"), "{html}");
}
