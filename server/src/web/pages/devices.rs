//! "Thiết bị của điều tra viên" (surveyors' devices): the surveyors the
//! caller may enroll, the open codes and the devices' tokens, each
//! revocable.

use maud::{html, Markup};

use super::csrf_field;
use crate::web::html::{url, Lang};

/// How long a code made on the page works: seconds and the words for it
/// (the first is the default).
pub const EXPIRIES: [(u64, &str, &str); 4] = [
    (24 * 3600, "24 giờ", "24 hours"),
    (3600, "1 giờ", "1 hour"),
    (3 * 24 * 3600, "3 ngày", "3 days"),
    (7 * 24 * 3600, "7 ngày", "7 days"),
];

/// The title of the devices pages.
pub fn title(lang: Lang) -> &'static str {
    lang.pick("Thiết bị của điều tra viên", "Surveyors' devices")
}

/// What was just done, for the notice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Done {
    RevokedCode,
    RevokedToken,
}

pub struct View {
    pub done: Option<Done>,
    pub surveyors: Vec<Surveyor>,
    /// More surveyors than are listed.
    pub more: bool,
    pub codes: Vec<Code>,
    pub devices: Vec<Device>,
    pub csrf: String,
}

pub struct Surveyor {
    pub id: String,
    pub name: String,
    /// The names of their areas.
    pub areas: String,
}

/// An open enrollment code.
pub struct Code {
    pub id: String,
    pub user_name: String,
    pub user_id: String,
    pub created_by: String,
    pub created: String,
    pub expires: String,
}

/// A device's token.
pub struct Device {
    pub id: String,
    /// "Name (id)", or the id.
    pub who: String,
    pub label: String,
    pub since: String,
}

pub fn render(v: &View, lang: Lang) -> Markup {
    html! {
        h1 { (title(lang)) }
        @match v.done {
            Some(Done::RevokedCode) => {
                p class="notice" id="notice" { (lang.pick("Đã thu hồi mã đăng ký.", "The code is revoked.")) }
            }
            Some(Done::RevokedToken) => {
                p class="notice" id="notice" {
                    (lang.pick(
                        "Đã thu hồi mã của thiết bị: thiết bị đó không đồng bộ được nữa.",
                        "The device's token is revoked: that device can no longer sync.",
                    ))
                }
            }
            None => {}
        }
        p class="hint" {
            (lang.pick(
                "Tạo mã đăng ký dùng một lần cho điều tra viên: mở ứng dụng trên điện thoại hoặc máy \
                 tính bảng, quét mã QR hoặc nhập mã.",
                "Make a one-time code for a surveyor: they open the app on their phone or tablet and \
                 scan the QR code or type the code.",
            ))
        }
        h2 { (lang.pick("Điều tra viên", "Surveyors")) }
        (surveyors(v, lang))
        h2 { (lang.pick("Mã chưa dùng", "Codes not used yet")) }
        (codes(v, lang))
        h2 { (lang.pick("Thiết bị đang dùng", "Devices in use")) }
        (devices(v, lang))
    }
}

fn surveyors(v: &View, lang: Lang) -> Markup {
    if v.surveyors.is_empty() {
        return html! {
            p class="empty" id="no-surveyors" {
                (lang.pick(
                    "Không có điều tra viên nào trong địa bàn của bạn.",
                    "No surveyor works in your areas."
                ))
            }
        };
    }
    html! {
        table class="list" id="surveyors" {
            thead { tr {
                th { (lang.pick("Họ tên", "Name")) }
                th { (lang.pick("Tên đăng nhập", "User id")) }
                th { (lang.pick("Địa bàn", "Areas")) }
                th {}
            } }
            tbody {
                @for u in &v.surveyors {
                    tr data-user=(u.id) {
                        td data-label=(lang.pick("Họ tên", "Name")) { (u.name) }
                        td data-label=(lang.pick("Tên đăng nhập", "User id")) { (u.id) }
                        td data-label=(lang.pick("Địa bàn", "Areas")) { (u.areas) }
                        td { form method="post" action="/devices/enroll" {
                            (csrf_field(&v.csrf))
                            input type="hidden" name="user" value=(u.id);
                            select name="expires" aria-label=(lang.pick("Hiệu lực", "Valid for")) {
                                @for (s, vi, en) in EXPIRIES { option value=(s) { (lang.pick(vi, en)) } }
                            }
                            " "
                            button type="submit" data-enroll=(u.id) { (lang.pick("Tạo mã đăng ký", "Make a code")) }
                        } }
                    }
                }
            }
        }
        @if v.more {
            p class="hint" {
                (lang.pick(
                    "Chỉ hiện 500 người đầu tiên; dùng lệnh `fieldsync admin token enroll` cho \
                     những người khác.",
                    "Only the first 500 are shown; use `fieldsync admin token enroll` for others."
                ))
            }
        }
    }
}

fn codes(v: &View, lang: Lang) -> Markup {
    if v.codes.is_empty() {
        return html! {
            p class="empty" id="no-codes" { (lang.pick("Không có mã nào đang chờ.", "No open code.")) }
        };
    }
    html! {
        table class="list" id="codes" {
            thead { tr {
                th { (lang.pick("Điều tra viên", "Surveyor")) }
                th { (lang.pick("Người tạo", "Made by")) }
                th { (lang.pick("Tạo lúc", "Made")) }
                th { (lang.pick("Hết hạn", "Expires")) }
                th {}
            } }
            tbody {
                @for c in &v.codes {
                    tr data-code=(c.id) {
                        td data-label=(lang.pick("Điều tra viên", "Surveyor")) { (c.user_name) " (" (c.user_id) ")" }
                        td data-label=(lang.pick("Người tạo", "Made by")) { (c.created_by) }
                        td data-label=(lang.pick("Tạo lúc", "Made")) { (c.created) }
                        td data-label=(lang.pick("Hết hạn", "Expires")) { (c.expires) }
                        td { form method="post" action={ "/devices/codes/" (url(&c.id)) "/revoke" } {
                            (csrf_field(&v.csrf))
                            button type="submit" data-revoke-code=(c.id) { (lang.pick("Thu hồi", "Revoke")) }
                        } }
                    }
                }
            }
        }
    }
}

fn devices(v: &View, lang: Lang) -> Markup {
    if v.devices.is_empty() {
        return html! {
            p class="empty" id="no-devices" { (lang.pick("Chưa có thiết bị nào.", "No device yet.")) }
        };
    }
    html! {
        table class="list" id="devices" {
            thead { tr {
                th { (lang.pick("Điều tra viên", "Surveyor")) }
                th { (lang.pick("Thiết bị", "Device")) }
                th { (lang.pick("Từ", "Since")) }
                th {}
            } }
            tbody {
                @for t in &v.devices {
                    tr data-token=(t.id) {
                        td data-label=(lang.pick("Điều tra viên", "Surveyor")) { (t.who) }
                        td data-label=(lang.pick("Thiết bị", "Device")) { (t.label) }
                        td data-label=(lang.pick("Từ", "Since")) { (t.since) }
                        td { form method="post" action={ "/devices/tokens/" (url(&t.id)) "/revoke" } {
                            (csrf_field(&v.csrf))
                            button type="submit" data-revoke-token=(t.id) { (lang.pick("Thu hồi", "Revoke")) }
                        } }
                    }
                }
            }
        }
    }
}
