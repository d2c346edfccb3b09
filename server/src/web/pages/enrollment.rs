//! A code just made, shown once: the QR code, the code in large letters,
//! the app's address and when the code expires.

use maud::{html, Markup, PreEscaped};

use super::devices::title;
use crate::web::html::Lang;

pub struct View {
    /// The surveyor's name.
    pub user_name: String,
    pub code: String,
    /// The app's address, and the link with the code in its fragment.
    pub app_url: String,
    pub link: String,
    /// The link as an inline SVG QR code (from the qrcode crate).
    pub qr_svg: String,
    pub expires: String,
}

pub fn render(v: &View, lang: Lang) -> Markup {
    html! {
        p class="crumbs" { a href="/devices" { (title(lang)) } }
        h1 { (lang.pick("Mã đăng ký cho", "Enrollment code for")) " " (v.user_name) }
        section class="enrollment" id="enrollment" {
            // The SVG is markup by construction: the qrcode crate drew it
            // from the link, and holds no text of ours but its id and label.
            div class="qr" { (PreEscaped(&v.qr_svg)) }
            p {
                (lang.pick(
                    "Quét mã QR bằng máy ảnh của điện thoại, hoặc mở ứng dụng và nhập mã:",
                    "Scan the QR code with the phone's camera, or open the app and type the code:",
                ))
            }
            p class="code" id="code" { (v.code) }
            p { (lang.pick("Ứng dụng:", "The app:")) " " a id="app-url" href=(v.link) { (v.app_url) } }
            p id="expires" { (lang.pick("Dùng được một lần, hết hạn lúc", "Works once; expires")) " " (v.expires) }
            p class="hint" {
                (lang.pick(
                    "Mã chỉ hiện một lần này. Nếu lộ mã, hãy thu hồi nó trong danh sách.",
                    "The code is shown this once. If someone else saw it, revoke it in the list.",
                ))
            }
        }
    }
}
