//! The sign-in form.

use maud::{html, Markup};

use super::csrf_field;
use crate::web::html::Lang;

pub struct View<'a> {
    /// The form's CSRF token (also set in a short-lived cookie).
    pub csrf: &'a str,
    /// Why the last try failed, if it did.
    pub problem: Option<&'a str>,
}

pub fn render(v: &View<'_>, lang: Lang) -> Markup {
    html! {
        section class="signin" {
            h1 { (lang.pick("Đăng nhập", "Sign in")) }
            @if let Some(problem) = v.problem {
                p class="error" id="problem" { (problem) }
            }
            form method="post" action="/signin" {
                (csrf_field(v.csrf))
                label for="token" { (lang.pick("Mã đăng nhập (token)", "Your token")) }
                input id="token" name="token" type="password" autocomplete="off" required
                    placeholder="fs_…";
                button id="signin" type="submit" { (lang.pick("Đăng nhập", "Sign in")) }
            }
            p class="hint" {
                (lang.pick(
                    "Dùng mã do quản trị viên cấp (giống mã dùng trên máy tính bảng và lệnh fieldsync).",
                    "Use the token an admin issued you (the same one the tablet and the fieldsync \
                     command use).",
                ))
            }
        }
    }
}
