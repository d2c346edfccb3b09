//! The report to print on A4, in the layout of the province's own: the
//! area's figures as the report writes them ("440/458 km (đạt 96,1% KH)"),
//! then a table per unit.

use maud::{html, Markup};

use crate::web::html::Lang;

pub struct View {
    /// "Kết cấu hạ tầng — Huyện Hương Khê, năm 2022".
    pub title: String,
    /// By which level, what is counted, the day it was printed.
    pub subtitle: String,
    /// The area first, then each unit of the level asked for.
    pub sections: Vec<Section>,
    /// The page on screen, to go back to.
    pub back: String,
}

pub struct Section {
    pub unit_id: String,
    pub name: String,
    /// The section's figures in one sentence, as the province's report
    /// writes them; empty for the units below the area.
    pub prose: String,
    pub lines: Vec<Line>,
}

/// One indicator of a section, its figures as the reader writes numbers.
pub struct Line {
    /// An "of which" part, shown under its whole.
    pub part: bool,
    pub indicator: String,
    pub unit: String,
    pub done: String,
    pub plan: String,
    pub percent: String,
    pub notes: String,
}

pub fn render(v: &View, lang: Lang) -> Markup {
    html! {
        article class="report" id="report" {
            p class="no-print" {
                a href=(v.back) { "← " (lang.pick("Về trang tiến độ", "Back to the progress page")) }
                " · "
                (lang.pick("In bằng Ctrl+P: trang in khổ A4.", "Print with Ctrl+P: the page prints on A4."))
            }
            h1 { (v.title) }
            p class="meta" id="subtitle" { (v.subtitle) }
            @for (n, s) in v.sections.iter().enumerate() {
                section class="unit" data-unit=(s.unit_id) {
                    @if n == 0 { h2 { (s.name) } } @else { h3 { (s.name) } }
                    @if !s.prose.is_empty() { p class="prose" { (s.prose) } }
                    table {
                        thead { tr {
                            th class="num" { (lang.pick("TT", "No.")) }
                            th { (lang.pick("Chỉ tiêu", "Indicator")) }
                            th { (lang.pick("ĐVT", "Unit")) }
                            th class="num" { (lang.pick("Thực hiện", "Done")) }
                            th class="num" { (lang.pick("KH", "Plan")) }
                            th class="num" { (lang.pick("% KH", "% of plan")) }
                            th { (lang.pick("Ghi chú", "Notes")) }
                        } }
                        tbody {
                            @for (i, l) in s.lines.iter().enumerate() {
                                tr class=[l.part.then_some("part")] {
                                    td class="num" { (i + 1) }
                                    td class="name" { (l.indicator) }
                                    td { (l.unit) }
                                    td class="num done" { (l.done) }
                                    td class="num plan" { (l.plan) }
                                    td class="num pct" { (l.percent) }
                                    td class="notes" { (l.notes) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
