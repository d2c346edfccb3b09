//! The page that says why a request was refused and what to do.

use maud::{html, Markup};

use crate::web::html::Lang;

pub struct View<'a> {
    pub title: &'a str,
    pub status: u16,
    /// What was refused and how to put it right, in the reader's language.
    pub said: Markup,
    pub signed_in: bool,
}

pub fn render(v: &View<'_>, lang: Lang) -> Markup {
    html! {
        section class="problem" {
            h1 { (v.title) " " span class="code" { "(" (v.status) ")" } }
            (v.said)
            @if v.signed_in {
                p { a href="/queue" { (lang.pick("Về trang duyệt báo cáo", "Back to the review queue")) } }
            } @else {
                p { a href="/signin" { (lang.pick("Đăng nhập", "Sign in")) } }
            }
        }
    }
}
