//! Progress against plan: for a period, an area and a level below it, each
//! unit's done / plan / % per indicator as bars (inline SVG) and a table,
//! with drill-down and the downloads.

use fieldsync::Level;
use maud::{html, Markup};

use super::{area_options, AreaOption};
use crate::web::html::{url, Lang};

pub struct View {
    pub period: String,
    pub area: String,
    pub area_name: String,
    /// Pending reports count.
    pub pending: bool,
    /// The area's ancestors the caller covers, top first: (id, name).
    pub crumbs: Vec<(String, String)>,
    pub areas: Vec<AreaOption>,
    /// The levels offered, and the one shown.
    pub levels: Vec<Level>,
    pub level: Level,
    /// The page's choices as a query string, for the downloads.
    pub query: String,
    /// Only the first `max_units` units are shown.
    pub cut: bool,
    pub max_units: usize,
    /// The level a unit's link drills down to.
    pub drill: Option<Level>,
    pub indicators: Vec<Indicator>,
    /// The one indicator shown unit by unit; none: a summary of them all.
    pub only: Option<String>,
    /// The day whose org tree the page reports on, as asked (empty: the
    /// period's own), and whether the tree ever changed (else no choice).
    pub tree: String,
    pub tree_changed: bool,
}

pub struct Indicator {
    pub code: String,
    pub name: String,
    /// " (km)", or nothing for counts.
    pub unit_label: String,
    /// The whole area's figure.
    pub total: Option<Figure>,
    pub rows: Vec<Row>,
}

/// "440/458 km — 96,1%", with its notes.
pub struct Figure {
    pub reads: String,
    pub notes: Notes,
}

/// Pending and conflicted counts beside a figure.
pub struct Notes {
    /// Reports waiting, and their amount with its unit.
    pub pending: Option<(u64, String)>,
    pub conflicts: u64,
    pub exceeds_whole: bool,
}

/// One unit's figures.
pub struct Row {
    pub unit_id: String,
    pub unit_name: String,
    pub done: String,
    pub plan: String,
    pub percent: String,
    pub figure: Figure,
    /// Done and plan as numbers, for the bars; whether the plan is met.
    pub done_n: f64,
    pub plan_n: f64,
    pub met: bool,
}

pub fn render(v: &View, lang: Lang) -> Markup {
    html! {
        p class="crumbs" id="crumbs" {
            @for (id, name) in &v.crumbs {
                a href=(link(v, id, None)) { (name) } " › "
            }
            (v.area_name)
        }
        h1 { (lang.pick("Tiến độ", "Progress")) " — " (v.area_name) " " (v.period) }
        (filter(v, lang))
        @if v.cut {
            p class="notice" {
                (lang.pick("Chỉ hiện", "Showing only the first")) " " (v.max_units) ". "
                (lang.pick(
                    "Chọn địa bàn nhỏ hơn, hoặc tải về để có đủ.",
                    "Choose a smaller area, or download them all."
                ))
            }
        }
        @match &v.only {
            None => (summary(v, lang)),
            Some(code) => {
                @for ind in v.indicators.iter().filter(|i| &i.code == code) { (indicator(v, ind, lang)) }
            }
        }
    }
}

/// Every indicator's figure for the area on one short table, each linking to
/// its units.
fn summary(v: &View, lang: Lang) -> Markup {
    html! {
        table class="list" id="summary" {
            thead { tr {
                th { (lang.pick("Chỉ tiêu", "Indicator")) }
                th { (lang.pick("Thực hiện / KH — % KH", "Done / plan — % of plan")) }
                th {}
            } }
            tbody {
                @for ind in &v.indicators {
                    tr data-indicator=(ind.code) {
                        td data-label=(lang.pick("Chỉ tiêu", "Indicator")) { (ind.name) (ind.unit_label) }
                        td data-label=(lang.pick("Thực hiện / KH — % KH", "Done / plan — % of plan")) {
                            @match &ind.total {
                                Some(total) => { b data-total=(ind.code) { (total.reads) } (notes(&total.notes, lang)) }
                                None => { "—" }
                            }
                        }
                        td {
                            a href=(indicator_link(v, &ind.code)) data-indicator=(ind.code) {
                                (lang.pick("Theo", "By")) " " (lang.level(v.level).to_lowercase()) " →"
                            }
                        }
                    }
                }
            }
        }
    }
}

/// This page, for one indicator unit by unit.
fn indicator_link(v: &View, code: &str) -> String {
    link_to(v, &v.area, Some(v.level), Some(code))
}

/// The page for area `id` (at `level`, or its default), same period and
/// indicator.
fn link(v: &View, id: &str, level: Option<Level>) -> String {
    link_to(v, id, level, v.only.as_deref())
}

fn link_to(v: &View, id: &str, level: Option<Level>, indicator: Option<&str>) -> String {
    let level = level.map_or(String::new(), |l| format!("&level={}", l.as_str()));
    let indicator = indicator.map_or(String::new(), |c| format!("&indicator={}", url(c)));
    let pending = if v.pending { "&pending=1" } else { "" };
    let tree = match v.tree.as_str() {
        "" => String::new(),
        day => format!("&tree={}", url(day)),
    };
    format!("/progress?period={}&area={}{level}{pending}{tree}{indicator}", url(&v.period), url(id))
}

fn filter(v: &View, lang: Lang) -> Markup {
    html! {
        form class="filter" method="get" action="/progress" {
            label { (lang.pick("Kỳ báo cáo", "Period")) " " input name="period" value=(v.period) size="8"; }
            label { (lang.pick("Địa bàn", "Area")) " "
                select name="area" { (area_options(lang, &v.areas, false)) } }
            label { (lang.pick("Theo cấp", "By level")) " "
                select name="level" {
                    @for l in &v.levels {
                        option value=(l.as_str()) selected[*l == v.level] { (lang.level(*l)) }
                    }
                }
            }
            label { (lang.pick("Chỉ tiêu", "Indicator")) " "
                select name="indicator" {
                    option value="" { (lang.pick("Tất cả (tóm tắt)", "All (summary)")) }
                    @for ind in &v.indicators {
                        option value=(ind.code) selected[v.only.as_deref() == Some(ind.code.as_str())] { (ind.name) }
                    }
                }
            }
            @if v.tree_changed {
                label title=(lang.pick(
                    "Để trống: theo đơn vị hành chính của kỳ báo cáo. Một ngày (2026-01-01): tính lại theo đơn vị hành chính ngày đó.",
                    "Empty: on the period's own org tree. A day (2026-01-01): restated on that day's tree."))
                {
                    (lang.pick("Theo đơn vị hành chính ngày", "On the org tree of")) " "
                    input name="tree" value=(v.tree) size="10" placeholder="2026-01-01";
                }
            }
            label {
                input type="checkbox" name="pending" value="1" checked[v.pending];
                " " (lang.pick("Tính cả báo cáo chờ duyệt", "Count reports waiting for review"))
            }
            button type="submit" { (lang.pick("Xem", "Show")) }
        }
        p class="downloads" {
            a id="csv-people" href={ "/progress.csv?" (v.query) "&people=1" } {
                (lang.pick("Tải CSV (tiêu đề tiếng Việt)", "Download CSV (Vietnamese headers)"))
            }
            " · "
            a id="csv" href={ "/progress.csv?" (v.query) } {
                (lang.pick("Tải CSV cho phần mềm (mã tiếng Anh)", "Download CSV for programs (English codes)"))
            }
            " · "
            a id="xlsx" href={ "/progress.xlsx?" (v.query) } { (lang.pick("Tải Excel (XLSX)", "Download Excel (XLSX)")) }
            " · "
            a id="print" href={ "/progress/report?" (v.query) } { (lang.pick("Bản in báo cáo (A4)", "Printable report (A4)")) }
        }
    }
}

fn indicator(v: &View, ind: &Indicator, lang: Lang) -> Markup {
    html! {
        section class="indicator" data-indicator=(ind.code) {
            h2 { (ind.name) (ind.unit_label) }
            @if let Some(total) = &ind.total {
                p class="total" {
                    (v.area_name) ": " b data-total=(ind.code) { (total.reads) } (notes(&total.notes, lang))
                }
            }
            @if !ind.rows.is_empty() {
                p class="hint" id="legend" {
                    @if ind.rows.iter().any(|r| r.plan_n > 0.0) {
                        (lang.pick(
                            "Thanh xám: kế hoạch (KH); thanh xanh: đã thực hiện, xanh đậm khi đạt KH.",
                            "Grey bar: the plan; blue: done, green once the plan is met."
                        ))
                    } @else {
                        (lang.pick(
                            "Chưa có kế hoạch: thanh dài nhất là đơn vị thực hiện nhiều nhất, không phải % kế hoạch.",
                            "No plan yet: the longest bar is the unit that did most, not a % of plan."
                        ))
                    }
                }
                (bars(&ind.rows))
                table class="list" {
                    thead { tr {
                        th { (lang.level(v.level)) }
                        th class="num" { (lang.pick("Thực hiện", "Done")) }
                        th class="num" { "KH" }
                        th class="num" { "% KH" }
                        th { (lang.pick("Ghi chú", "Notes")) }
                    } }
                    tbody {
                        @for r in &ind.rows {
                            tr data-unit=(r.unit_id) {
                                td data-label=(lang.level(v.level)) {
                                    @match v.drill {
                                        Some(level) => { a href=(link(v, &r.unit_id, Some(level))) { (r.unit_name) } }
                                        None => { (r.unit_name) }
                                    }
                                }
                                td data-label=(lang.pick("Thực hiện", "Done")) class="num done" { (r.done) }
                                td data-label=("KH") class="num plan" { (r.plan) }
                                td data-label=("% KH") class="num pct" { (r.percent) }
                                td data-label=(lang.pick("Ghi chú", "Notes")) { (notes(&r.figure.notes, lang)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// " · pending: 2 (18 km) · in conflict: 1", or nothing.
fn notes(n: &Notes, lang: Lang) -> Markup {
    html! {
        @if let Some((count, amount)) = &n.pending {
            " · " span class="pending" { (lang.pick("chờ duyệt:", "pending:")) " " (count) " (" (amount) ")" }
        }
        @if n.conflicts > 0 {
            " · " span class="warn" { (lang.pick("xung đột:", "in conflict:")) " " (n.conflicts) }
        }
        @if n.exceeds_whole {
            " · " span class="warn" { (lang.pick("vượt chỉ tiêu tổng!", "above its whole!")) }
        }
    }
}

/// Horizontal bars, one per unit: the plan in grey, what is done over it.
fn bars(rows: &[Row]) -> Markup {
    // Narrow enough that a 390-px phone shows it near full size: the
    // unit's name on its own line, the bar and its figure under it.
    const WIDTH: f64 = 420.0;
    const ROW: f64 = 38.0;
    const CHAR: f64 = 7.0;
    let max = rows.iter().map(|r| r.done_n.max(r.plan_n)).fold(0.0, f64::max);
    // Room after the longest bar for the longest figure, so none is clipped.
    let figure = rows.iter().map(|r| r.figure.reads.chars().count()).max().unwrap_or(0);
    let room = (WIDTH - figure as f64 * CHAR - 8.0).max(WIDTH / 3.0);
    let scale = if max > 0.0 { room / max } else { 0.0 };
    let height = ROW * rows.len() as f64 + 4.0;
    html! {
        svg class="bars" viewBox=(format!("0 0 {WIDTH} {height}")) width=(WIDTH) height=(height)
            role="img" xmlns="http://www.w3.org/2000/svg" {
            @for (i, r) in rows.iter().enumerate() {
                @let y = ROW * i as f64 + 2.0;
                @let (done, plan) = (r.done_n * scale, r.plan_n * scale);
                text x="0" y=(y + 12.0) { (r.unit_name) }
                @if plan > 0.0 {
                    rect class="plan" x="0" y=(y + 16.0) width=(format!("{plan:.1}")) height="16" {}
                }
                rect class=(if r.met { "done met" } else { "done" }) x="0" y=(y + 19.0)
                    width=(format!("{done:.1}")) height="10" {}
                text x=(format!("{:.1}", done.max(plan) + 6.0)) y=(y + 29.0) { (r.figure.reads) }
            }
        }
    }
}
