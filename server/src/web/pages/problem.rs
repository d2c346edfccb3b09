//! The page that says why a request was refused and what to do.

use maud::{html, Markup};

use crate::web::html::Lang;

pub struct View<'a> {
    pub title: &'a str,
    pub status: u16,
    pub message: &'a str,
}

pub fn render(v: &View<'_>, lang: Lang) -> Markup {
    html! {
        section class="problem" {
            h1 { (v.title) " " span class="code" { "(" (v.status) ")" } }
            p id="problem" { (v.message) }
            p { a href="/queue" { (lang.pick("Về trang duyệt báo cáo", "Back to the review queue")) } }
        }
    }
}
