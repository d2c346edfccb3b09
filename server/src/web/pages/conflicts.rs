//! The open conflicts: a filter and a list, each conflict linking to its
//! page.

use maud::{html, Markup};

use super::{area_options, AreaOption};
use crate::web::html::{url, Lang};

pub struct View {
    /// The page of the conflict just settled.
    pub resolved: Option<String>,
    pub period: String,
    pub area: String,
    pub areas: Vec<AreaOption>,
    pub rows: Vec<Row>,
    /// The cursor of the next page; empty on the last.
    pub next: String,
}

pub struct Row {
    pub village_id: String,
    pub period: String,
    pub field: String,
    pub village: String,
    /// The commune and district.
    pub above: String,
    pub field_name: String,
    pub base: String,
    /// Each competing value and who recorded it.
    pub values: Vec<(String, String)>,
}

pub fn render(v: &View, lang: Lang) -> Markup {
    html! {
        h1 { (lang.pick("Xung đột số liệu", "Conflicting values")) }
        @if let Some(href) = &v.resolved {
            p class="notice" id="notice" {
                (lang.pick("Đã giải quyết xung đột.", "The conflict is settled.")) " "
                a href=(href) { (lang.pick("Xem cách đã giải quyết", "See how it was settled")) }
            }
        }
        form class="filter" method="get" action="/conflicts" {
            label { (lang.pick("Kỳ báo cáo", "Period")) " "
                input name="period" value=(v.period) placeholder="2022" size="8"; }
            label { (lang.pick("Địa bàn", "Area")) " "
                select name="area" { (area_options(lang, &v.areas, true)) } }
            button type="submit" { (lang.pick("Lọc", "Filter")) }
        }
        @if v.rows.is_empty() {
            p class="empty" id="no-conflicts" { (lang.pick("Không có xung đột nào đang mở.", "No open conflict.")) }
        } @else {
            (list(v, lang))
        }
    }
}

fn list(v: &View, lang: Lang) -> Markup {
    html! {
        table class="list" id="conflicts" {
            thead { tr {
                th { (lang.pick("Thôn", "Village")) }
                th { (lang.pick("Kỳ", "Period")) }
                th { (lang.pick("Chỉ tiêu", "Indicator")) }
                th { (lang.pick("Giá trị gốc", "Base value")) }
                th { (lang.pick("Các giá trị khác nhau", "Competing values")) }
            } }
            tbody {
                @for r in &v.rows {
                    tr data-conflict={ (r.village_id) "/" (r.period) "/" (r.field) } {
                        td data-label=(lang.pick("Thôn", "Village")) {
                            a href={ "/conflicts/" (url(&r.village_id)) "/" (url(&r.period)) "/" (url(&r.field)) } { (r.village) }
                            " " span class="detail" { (r.above) }
                        }
                        td data-label=(lang.pick("Kỳ", "Period")) { (r.period) }
                        td data-label=(lang.pick("Chỉ tiêu", "Indicator")) { (r.field_name) }
                        td data-label=(lang.pick("Giá trị gốc", "Base value")) class="num" { (r.base) }
                        td data-label=(lang.pick("Các giá trị khác nhau", "Competing values")) {
                            @for (i, (value, author)) in r.values.iter().enumerate() {
                                @if i > 0 { " · " }
                                (value) " (" (author) ")"
                            }
                        }
                    }
                }
            }
        }
        @if !v.next.is_empty() {
            p { a id="next" href={ "/conflicts?period=" (url(&v.period)) "&area=" (url(&v.area)) "&after=" (url(&v.next)) } {
                (lang.pick("Trang sau", "Next page")) " →"
            } }
        }
    }
}
