//! A submission's page: its values, the decisions the reviewer can make
//! now, and its history, newest first.

use fieldsync::review::{ReviewState, Verdict};
use maud::{html, Markup};

use super::csrf_field;
use super::queue::{decision, Decided};
use crate::web::html::{url, Lang};

pub struct View {
    pub village_id: String,
    pub period: String,
    /// The village's name, and the names of its commune and district.
    pub name: String,
    pub above: String,
    pub state: ReviewState,
    pub decision: Option<Decided>,
    pub fields: Vec<Field>,
    /// The decisions this reviewer can make now.
    pub verdicts: Vec<Verdict>,
    /// Why approving (or accepting) is not offered now: the open conflicts.
    pub blocked: Option<Markup>,
    /// The decision just taken, confirmed.
    pub decided: Option<Verdict>,
    pub csrf: String,
    pub history: Vec<Entry>,
    /// The entry number to page on from, when there are older entries.
    pub older: Option<u64>,
}

/// A value as it stands.
pub struct Field {
    pub key: String,
    pub name: String,
    pub value: String,
    pub unit: String,
    pub author: String,
    pub device: String,
    pub received: String,
    /// An open conflict on it.
    pub conflict: bool,
}

/// An audit entry, in words.
pub struct Entry {
    pub at: String,
    pub who: String,
    pub device: String,
    pub what: String,
    pub field: String,
    /// "old → new", or the one value there is.
    pub change: String,
    pub detail: String,
}

pub fn render(v: &View, lang: Lang) -> Markup {
    html! {
        p class="crumbs" { a href="/queue" { (lang.pick("Duyệt báo cáo", "Review queue")) } " › " (v.above) }
        h1 { (v.name) " " small { (v.period) } }
        p class="meta" {
            (v.above) " · " (lang.pick("Kỳ", "Period")) " " (v.period) " · "
            span class={ "state state-" (v.state) } id="state" { (lang.state(v.state)) }
        }
        @if let Some(verdict) = v.decided {
            p class="notice" id="notice" { (done(verdict, lang)) }
        }
        @if let Some(d) = &v.decision {
            p class="meta" { (lang.pick("Quyết định gần nhất:", "Last decision:")) " " (decision(d)) }
        }
        (fields(v, lang))
        @if !v.verdicts.is_empty() || v.blocked.is_some() {
            h2 { (lang.pick("Quyết định", "Decision")) }
            @if let Some(blocked) = &v.blocked { div class="blocked" id="blocked" { (blocked) } }
            div class="decide" { @for verdict in &v.verdicts { (decide(v, *verdict, lang)) } }
        }
        (history(v, lang))
    }
}

fn fields(v: &View, lang: Lang) -> Markup {
    html! {
        h2 { (lang.pick("Số liệu", "Values")) }
        table class="list" id="fields" {
            thead { tr {
                th { (lang.pick("Chỉ tiêu", "Indicator")) }
                th class="num" { (lang.pick("Giá trị", "Value")) }
                th { (lang.pick("Đơn vị", "Unit")) }
                th { (lang.pick("Người nhập", "Recorded by")) }
                th { (lang.pick("Máy tính bảng", "Tablet")) }
                th { (lang.pick("Nhận lúc", "Received")) }
            } }
            tbody {
                @for f in &v.fields {
                    tr data-field=(f.key) {
                        td data-label=(lang.pick("Chỉ tiêu", "Indicator")) { (f.name) }
                        td data-label=(lang.pick("Giá trị", "Value")) class="num value" {
                            (f.value)
                            @if f.conflict {
                                " "
                                a class="warn" href={ "/conflicts/" (url(&v.village_id)) "/" (url(&v.period)) "/" (url(&f.key)) } {
                                    (lang.pick("xung đột", "in conflict"))
                                }
                            }
                        }
                        td data-label=(lang.pick("Đơn vị", "Unit")) { (f.unit) }
                        td data-label=(lang.pick("Người nhập", "Recorded by")) { (f.author) }
                        td data-label=(lang.pick("Máy tính bảng", "Tablet")) { code { (f.device) } }
                        td data-label=(lang.pick("Nhận lúc", "Received")) { (f.received) }
                    }
                }
            }
        }
    }
}

/// The confirmation of a decision just taken.
fn done(verdict: Verdict, lang: Lang) -> &'static str {
    match verdict {
        Verdict::Approve => lang.pick("Đã duyệt báo cáo.", "The report is approved."),
        Verdict::Accept => lang.pick("Đã chấp nhận báo cáo.", "The report is accepted."),
        Verdict::Return => lang.pick(
            "Đã trả lại báo cáo để sửa; người nhập sẽ thấy lý do khi đồng bộ.",
            "The report is returned for changes; the surveyor sees the reason on the next sync.",
        ),
        Verdict::Reject => lang.pick(
            "Đã từ chối báo cáo; người nhập sẽ thấy lý do khi đồng bộ.",
            "The report is rejected; the surveyor sees the reason on the next sync.",
        ),
        Verdict::Reopen => lang.pick("Đã mở lại báo cáo.", "The report is reopened."),
    }
}

/// The form of one decision.
fn decide(v: &View, verdict: Verdict, lang: Lang) -> Markup {
    html! {
        form method="post" action={ "/submissions/" (url(&v.village_id)) "/" (url(&v.period)) "/decide" }
            class={ "verdict-" (verdict.as_str()) } {
            (csrf_field(&v.csrf))
            input type="hidden" name="verdict" value=(verdict.as_str());
            @if verdict.needs_reason() {
                label {
                    (lang.pick("Lý do (người nhập sẽ thấy)", "Reason (the surveyor sees it)")) " "
                    textarea name="reason" required maxlength="2000" rows="2" {}
                }
            }
            button id=(verdict.as_str()) type="submit" { (lang.verdict(verdict)) }
        }
    }
}

fn history(v: &View, lang: Lang) -> Markup {
    html! {
        h2 { (lang.pick("Lịch sử", "History")) }
        table class="list" id="history" {
            thead { tr {
                th { (lang.pick("Lúc", "When")) }
                th { (lang.pick("Ai", "Who")) }
                th { (lang.pick("Máy", "Tablet")) }
                th { (lang.pick("Việc", "What")) }
                th { (lang.pick("Trường", "Field")) }
                th { (lang.pick("Thay đổi", "Change")) }
            } }
            tbody {
                @for e in &v.history {
                    tr {
                        td data-label=(lang.pick("Lúc", "When")) { (e.at) }
                        td data-label=(lang.pick("Ai", "Who")) { (e.who) }
                        td data-label=(lang.pick("Máy", "Tablet")) { code { (e.device) } }
                        td data-label=(lang.pick("Việc", "What")) { (e.what) }
                        td data-label=(lang.pick("Trường", "Field")) { (e.field) }
                        td data-label=(lang.pick("Thay đổi", "Change")) { (e.change) " " span class="detail" { (e.detail) } }
                    }
                }
            }
        }
        @if let Some(seq) = v.older {
            p { a id="older" href={ "/submissions/" (url(&v.village_id)) "/" (url(&v.period)) "?before=" (seq) } {
                (lang.pick("Các mục cũ hơn", "Older entries"))
            } }
        }
    }
}
