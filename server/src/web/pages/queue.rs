//! The review queue: the filter, counts per state, the download link, bulk
//! approval of what is listed, and the list.

use fieldsync::review::{ReviewState, Verdict};
use maud::{html, Markup};

use super::{area_options, csrf_field, AreaOption};
use crate::web::html::{url, Lang};

/// The states in the order the filter and the counts show them.
pub const STATES: [ReviewState; 5] = [
    ReviewState::Submitted,
    ReviewState::Approved,
    ReviewState::Accepted,
    ReviewState::Returned,
    ReviewState::Rejected,
];

pub struct View {
    /// How many reports the last bulk approval approved, if there was one.
    pub approved: Option<String>,
    pub period: String,
    pub area: String,
    pub state: Option<ReviewState>,
    pub areas: Vec<AreaOption>,
    /// Reports per state, in the order of [`STATES`].
    pub counts: Vec<(ReviewState, usize)>,
    /// The counts stopped at their limit ("at least").
    pub more: bool,
    /// The filter as a query string (for the download and the next page).
    pub query: String,
    /// How many the last bulk acceptance accepted, if there was one.
    pub accepted: Option<String>,
    /// Approve for the approving level, Accept for the accepting one.
    pub bulk_verdict: Verdict,
    /// What the bulk decision would pass on (village, period); empty when
    /// the caller may not, or nothing listed is waiting for them.
    pub approvable: Vec<(String, String)>,
    pub csrf: String,
    pub rows: Vec<Row>,
    /// The cursor of the next page.
    pub next: Option<String>,
}

pub struct Row {
    pub village_id: String,
    pub village: String,
    /// The commune and district.
    pub above: String,
    pub period: String,
    pub state: ReviewState,
    pub fields: usize,
    pub open_conflicts: usize,
    pub decision: Option<Decided>,
}

/// The last decision on a report.
pub struct Decided {
    /// The decider's name (or id).
    pub name: String,
    /// When, already formatted.
    pub at: String,
    pub reason: String,
}

/// "Trần Văn Giám, 29/11/2026 16:32 UTC+7: reason".
pub fn decision(d: &Decided) -> Markup {
    html! {
        (d.name) ", " (d.at)
        @if !d.reason.is_empty() { ": " q { (d.reason) } }
    }
}

pub fn render(v: &View, lang: Lang) -> Markup {
    html! {
        h1 { (lang.pick("Duyệt báo cáo", "Review queue")) }
        @if let Some(n) = &v.approved {
            p class="notice" id="notice" { (lang.pick("Đã duyệt:", "Approved:")) " " (n) }
        }
        @if let Some(n) = &v.accepted {
            p class="notice" id="notice" { (lang.pick("Đã chấp nhận:", "Accepted:")) " " (n) }
        }
        (filter(v, lang))
        ul class="counts" id="counts" {
            @for (s, n) in &v.counts {
                li class={ "state-" (s) } {
                    a href={ "/queue?period=" (url(&v.period)) "&area=" (url(&v.area)) "&state=" (s) } {
                        (lang.state(*s)) ": "
                        b data-count=(s) { (n) @if v.more { "+" } }
                    }
                }
            }
        }
        p class="downloads" {
            a id="queue-csv" href={ "/queue.csv?" (v.query) } {
                (lang.pick("Tải danh sách (CSV)", "Download the list (CSV)"))
            }
        }
        @if !v.approvable.is_empty() { (bulk(v, lang)) }
        @if v.rows.is_empty() {
            p class="empty" {
                (lang.pick("Không có báo cáo nào khớp bộ lọc.", "No submission matches the filter."))
            }
        } @else {
            (list(v, lang))
        }
    }
}

fn filter(v: &View, lang: Lang) -> Markup {
    html! {
        form class="filter" method="get" action="/queue" {
            label { (lang.pick("Kỳ báo cáo", "Period")) " "
                input name="period" value=(v.period) placeholder="2022" size="8"; }
            label { (lang.pick("Địa bàn", "Area")) " "
                select name="area" { (area_options(lang, &v.areas, true)) } }
            label { (lang.pick("Trạng thái", "State")) " "
                select name="state" {
                    option value="" { (lang.pick("Tất cả", "All")) }
                    @for s in STATES {
                        option value=(s) selected[v.state == Some(s)] { (lang.state(s)) }
                    }
                }
            }
            button type="submit" { (lang.pick("Lọc", "Filter")) }
        }
    }
}

/// Approves (or accepts) every listed report waiting for the caller that
/// has no open conflict.
fn bulk(v: &View, lang: Lang) -> Markup {
    let (id, label) = match v.bulk_verdict {
        Verdict::Accept => (
            "bulk-accept",
            lang.pick(
                "Chấp nhận tất cả báo cáo xã đã duyệt trong danh sách",
                "Accept every approved report listed",
            ),
        ),
        _ => (
            "bulk-approve",
            lang.pick(
                "Duyệt tất cả báo cáo chờ duyệt trong danh sách",
                "Approve every submitted report listed",
            ),
        ),
    };
    html! {
        form method="post" action="/queue/approve" class="bulk" {
            (csrf_field(&v.csrf))
            input type="hidden" name="verdict" value=(v.bulk_verdict.as_str());
            input type="hidden" name="period" value=(v.period);
            input type="hidden" name="area" value=(v.area);
            input type="hidden" name="state" value=(v.state.map_or("", |s| s.as_str()));
            @for (village, period) in &v.approvable {
                input type="hidden" name="sub" value={ (village) "|" (period) };
            }
            button id=(id) type="submit" { (label) " (" (v.approvable.len()) ")" }
        }
    }
}

fn list(v: &View, lang: Lang) -> Markup {
    html! {
        table class="list" id="queue" {
            thead { tr {
                th { (lang.pick("Thôn", "Village")) }
                th { (lang.pick("Xã / huyện", "Commune / district")) }
                th { (lang.pick("Kỳ", "Period")) }
                th { (lang.pick("Trạng thái", "State")) }
                th class="num" { (lang.pick("Số trường", "Fields")) }
                th class="num" { (lang.pick("Xung đột", "Conflicts")) }
                th { (lang.pick("Quyết định gần nhất", "Last decision")) }
            } }
            tbody {
                @for r in &v.rows {
                    tr data-village=(r.village_id) {
                        td data-label=(lang.pick("Thôn", "Village")) { a href={ "/submissions/" (url(&r.village_id)) "/" (url(&r.period)) } { (r.village) } }
                        td data-label=(lang.pick("Xã / huyện", "Commune / district")) { (r.above) }
                        td data-label=(lang.pick("Kỳ", "Period")) { (r.period) }
                        td data-label=(lang.pick("Trạng thái", "State")) { span class={ "state state-" (r.state) } { (lang.state(r.state)) } }
                        td data-label=(lang.pick("Số trường", "Fields")) class="num" { (r.fields) }
                        td data-label=(lang.pick("Xung đột", "Conflicts")) class={ "num" @if r.open_conflicts > 0 { " warn" } } { (r.open_conflicts) }
                        td data-label=(lang.pick("Quyết định gần nhất", "Last decision")) { @if let Some(d) = &r.decision { (decision(d)) } }
                    }
                }
            }
        }
        @if let Some(next) = &v.next {
            p { a id="next" href={ "/queue?" (v.query) "&after=" (url(next)) } {
                (lang.pick("Trang sau", "Next page")) " →"
            } }
        }
    }
}
