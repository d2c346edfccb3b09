//! One conflict: the base and each competing value side by side, and, for
//! those who may settle it, the choice; or how it was settled.

use maud::{html, Markup};

use super::csrf_field;
use crate::web::html::{url, Lang};

pub struct View {
    pub village_id: String,
    pub period: String,
    pub field: String,
    /// The village's name, and the names of its commune and district.
    pub name: String,
    pub above: String,
    pub field_name: String,
    /// The provisional value and its unit, if the field has one.
    pub current: Option<(String, String)>,
    pub base: String,
    pub candidates: Vec<Candidate>,
    pub csrf: String,
    /// Whether the caller may settle it now (it is open and theirs).
    pub settle: bool,
    /// An example of a value of this field, for the entry box.
    pub placeholder: &'static str,
    pub settled: Option<Settled>,
    /// Why the settlement just sent was refused, if it was.
    pub problem: Option<Markup>,
    /// What that settlement held: the kept value, the typed one, the comment.
    pub pick: String,
    pub value: String,
    pub comment: String,
}

pub struct Candidate {
    pub value: String,
    pub author: String,
    pub device: String,
    pub received: String,
}

/// How it was settled: the value, by whom, when, why.
pub struct Settled {
    pub value: String,
    pub who: String,
    pub at: String,
    pub comment: String,
}

pub fn render(v: &View, lang: Lang) -> Markup {
    let (village, period) = (url(&v.village_id), url(&v.period));
    html! {
        p class="crumbs" {
            a href="/conflicts" { (lang.pick("Xung đột", "Conflicts")) } " › "
            a href={ "/submissions/" (village) "/" (period) } { (v.name) " " (v.period) }
        }
        h1 { (v.field_name) }
        p class="meta" { (v.name) " · " (v.above) " · " (lang.pick("Kỳ", "Period")) " " (v.period) }
        @if let Some((value, unit)) = &v.current {
            p class="meta" {
                (lang.pick("Giá trị tạm thời:", "Provisional value:")) " "
                b id="current" { (value) } " " (unit)
            }
        }
        @if let Some(problem) = &v.problem {
            div class="problem" role="alert" id="refused" { (problem) }
        }
        form method="post" action={ "/conflicts/" (village) "/" (period) "/" (url(&v.field)) } {
            (csrf_field(&v.csrf))
            (sides(v, lang))
            @if v.settle { (settle(v, lang)) }
        }
        @if !v.settle {
            @if let Some(s) = &v.settled {
                p class="notice" id="settled" {
                    (lang.pick("Đã giải quyết:", "Settled:")) " " (s.value) " — " (s.who) ", " (s.at)
                    @if !s.comment.trim().is_empty() { ": " q { (s.comment) } }
                }
            }
        }
    }
}

/// The table of the base and the candidates (with the pick row when the
/// caller may settle it).
fn sides(v: &View, lang: Lang) -> Markup {
    let each = |label: &str, cell: &dyn Fn(&Candidate) -> Markup| {
        html! { tr { th { (label) } td {} @for c in &v.candidates { (cell(c)) } } }
    };
    html! {
        table class="side" id="candidates" {
            thead { tr {
                th {}
                th { (lang.pick("Giá trị gốc", "Base")) }
                @for i in 1..=v.candidates.len() { th { (lang.pick("Giá trị", "Value")) " " (i) } }
            } }
            tbody {
                tr {
                    th { (lang.pick("Giá trị", "Value")) }
                    td class="num" { (v.base) }
                    @for (i, c) in v.candidates.iter().enumerate() {
                        td class="num candidate" data-candidate=(i) { (c.value) }
                    }
                }
                (each(lang.pick("Người nhập", "Recorded by"), &|c| html! { td { (c.author) } }))
                (each(lang.pick("Máy tính bảng", "Tablet"), &|c| html! { td { code { (c.device) } } }))
                (each(lang.pick("Nhận lúc", "Received"), &|c| html! { td { (c.received) } }))
                @if v.settle {
                    tr {
                        th { (lang.pick("Chọn", "Pick")) }
                        td {}
                        @for i in 0..v.candidates.len() {
                            td { label {
                                input type="radio" name="pick" value=(i) id={ "pick-" (i) }
                                    checked[v.pick == i.to_string()];
                                " " (lang.pick("giữ giá trị này", "keep this value"))
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// Another value, a comment, and the button.
fn settle(v: &View, lang: Lang) -> Markup {
    html! {
        p { label {
            (lang.pick(
                "Hoặc nhập giá trị đúng (phần thập phân sau dấu phẩy hoặc dấu chấm):",
                "Or enter the right value (a comma or a dot for decimals):"
            )) " "
            input name="value" id="value" placeholder=(v.placeholder) maxlength="200" value=(v.value);
        } }
        p { label {
            (lang.pick("Ghi chú cách giải quyết:", "Comment:")) " "
            textarea name="comment" id="comment" rows="2" maxlength="2000" { (v.comment) }
        } }
        button id="resolve" type="submit" { (lang.pick("Giải quyết xung đột", "Settle the conflict")) }
    }
}
