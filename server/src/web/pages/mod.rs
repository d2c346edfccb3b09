//! The pages as templates: each file holds a page's view (plain data the
//! handler fills from the use cases' answers) and its `render`. The
//! templates are maud's `html!`, which escapes every value it is given, so
//! no text from data can become markup; `PreEscaped` appears only for what
//! is HTML by construction, each with the reason beside it.
//!
//! This file holds what every page shares: the frame (head, menu, who is
//! signed in, the language switch), the CSRF field and the area filter.

pub mod conflict;
pub mod conflicts;
pub mod devices;
pub mod enrollment;
pub mod problem;
pub mod progress;
pub mod queue;
pub mod report;
pub mod signin;
pub mod submission;

use maud::{html, Markup, DOCTYPE};

use super::html::Lang;

/// The signed-in user, for the page frame.
pub struct Who<'a> {
    pub name: &'a str,
    pub id: &'a str,
    pub csrf: &'a str,
    /// Whether the menu offers the devices page (not to surveyors).
    pub devices: bool,
}

/// Which part of the site a page belongs to (highlighted in the menu).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    None,
    Queue,
    Conflicts,
    Progress,
    Devices,
}

/// `aria-current="page"` on the menu entry of the page's own section.
fn current(on: bool) -> Option<&'static str> {
    on.then_some("page")
}

/// A whole page: head, menu, `body`.
pub fn page(
    lang: Lang,
    title: &str,
    who: Option<&Who<'_>>,
    section: Section,
    body: Markup,
) -> Markup {
    let (other, label) = match lang {
        Lang::Vi => ("en", "English"),
        Lang::En => ("vi", "Tiếng Việt"),
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fieldsync" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    a class="brand" href="/" { "fieldsync · NTM" }
                    nav {
                        @if let Some(who) = who {
                            @for (s, href, vi, en) in MENU {
                                a href=(href) aria-current=[current(s == section)] { (lang.pick(vi, en)) }
                            }
                            @if who.devices {
                                a id="devices-link" href="/devices"
                                    aria-current=[current(section == Section::Devices)]
                                    { (lang.pick("Thiết bị", "Devices")) }
                            }
                        }
                    }
                    div class="who" {
                        @if let Some(who) = who {
                            span id="who" { (who.name) " (" (who.id) ")" }
                            form method="post" action="/signout" {
                                (csrf_field(who.csrf))
                                button id="signout" { (lang.pick("Đăng xuất", "Sign out")) }
                            }
                        }
                        a id="app-link" href="/app/" { (lang.pick("Ứng dụng điều tra viên", "Surveyors' app")) }
                        a id="lang" href={ "/lang/" (other) } { (label) }
                    }
                }
                main { (body) }
            }
        }
    }
}

const MENU: [(Section, &str, &str, &str); 3] = [
    (Section::Queue, "/queue", "Duyệt báo cáo", "Review queue"),
    (Section::Conflicts, "/conflicts", "Xung đột", "Conflicts"),
    (Section::Progress, "/progress", "Tiến độ", "Progress"),
];

/// A hidden field with the session's CSRF token.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// One choice of an area filter.
pub struct AreaOption {
    pub id: String,
    /// The name, indented by its level.
    pub label: String,
    pub selected: bool,
}

/// The `<option>`s of an area filter; `all` adds a first "all my areas".
pub fn area_options(lang: Lang, options: &[AreaOption], all: bool) -> Markup {
    html! {
        @if all {
            option value="" { (lang.pick("Tất cả địa bàn của tôi", "All my areas")) }
        }
        @for o in options {
            option value=(o.id) selected[o.selected] { (o.label) }
        }
    }
}
