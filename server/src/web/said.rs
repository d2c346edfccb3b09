//! Refusals in the reader's language: a [`Reason`] worded from its
//! parameters, with links to where it is put right, and a sentence for each
//! kind of refusal that has no reason of its own. The Vietnamese is worded
//! like the app's `validate.js`, so a surveyor and a supervisor read the same
//! sentence for the same value.

use fieldsync::typed::Refusal;
use fieldsync::{Amount, Catalogue, Reason};
use maud::{html, Markup};

use super::html::{url, Lang};
use crate::app::{Error, Kind};

/// What the page says of `e`: the sentence, and the links that fix it.
pub fn said(lang: Lang, catalogue: &Catalogue, e: &Error) -> Markup {
    match (&e.reason, lang) {
        (Some(reason), Lang::Vi) => reason_vi(catalogue, reason),
        (Some(reason), Lang::En) => reason_en(catalogue, reason),
        (None, Lang::En) => html! { p id="problem" { (e.message) } },
        // The store's own English stays for support, folded away.
        (None, Lang::Vi) => html! {
            p id="problem" { (kind_vi(e.kind)) }
            details class="detail" {
                summary { "Chi tiết kỹ thuật (tiếng Anh)" }
                p { (e.message) }
            }
        },
    }
}

/// The sentence of a refusal that carries no reason.
fn kind_vi(kind: Kind) -> &'static str {
    match kind {
        Kind::Invalid => {
            "Yêu cầu chưa hợp lệ nên chưa có gì được lưu: hãy kiểm tra lại những gì đã nhập rồi \
             gửi lại."
        }
        Kind::NotFound => {
            "Không tìm thấy mục này: đường dẫn có thể đã cũ hoặc bị gõ sai, hoặc mục đã bị xoá. \
             Hãy mở lại từ trang duyệt báo cáo."
        }
        Kind::Denied => {
            "Tài khoản của bạn không có quyền làm việc này, hoặc mục này nằm ngoài địa bàn được \
             giao. Nếu cần quyền, hãy liên hệ quản trị viên của tỉnh."
        }
        Kind::Unauthenticated => "Phiên đăng nhập đã hết: hãy đăng nhập lại.",
        Kind::Exhausted => {
            "Có quá nhiều yêu cầu cùng lúc hoặc máy chủ sắp hết chỗ lưu: hãy thử lại sau ít phút."
        }
        Kind::OutOfSequence => "Dữ liệu gửi lên không khớp với máy chủ: hãy tải lại trang.",
        Kind::Unavailable | Kind::Internal => {
            "Máy chủ gặp lỗi nên chưa thực hiện được: hãy thử lại; nếu vẫn lỗi, báo cho quản trị \
             viên."
        }
    }
}

fn reason_vi(catalogue: &Catalogue, reason: &Reason) -> Markup {
    let name = |field: &str| Lang::Vi.field(catalogue, field);
    match reason {
        Reason::OpenConflicts { village, period, fields, accept } => {
            let place = catalogue.org_unit(village).map_or(village.as_str(), |u| &u.name);
            let done = if *accept { "chấp nhận" } else { "duyệt" };
            html! {
                p id="problem" {
                    "Chưa thể " (done) " báo cáo của " (place) " kỳ " (period) ": còn "
                    (fields.len()) " xung đột chưa giải quyết. Hãy giải quyết trước:"
                }
                (conflict_links(Lang::Vi, catalogue, village, period, fields))
            }
        }
        Reason::BadValue { field, typed, refusal } => html! {
            p id="problem" {
                "Giá trị «" (typed) "» của " (name(field)) " chưa đúng: "
                (refusal_vi(catalogue, field, refusal))
            }
        },
        Reason::NoChoice => html! {
            p id="problem" { "Hãy chọn giữ một trong các giá trị, hoặc nhập giá trị đúng." }
        },
        Reason::ChoiceAndValue => html! {
            p id="problem" {
                "Bạn vừa chọn giữ một giá trị vừa nhập một giá trị: hãy bỏ chọn, hoặc xoá giá trị \
                 đã nhập."
            }
        },
        Reason::NeedsReason { verdict } => html! {
            p id="problem" {
                "Cần ghi lý do để " (Lang::Vi.verdict(*verdict).to_lowercase())
                ": người nhập sẽ đọc lý do này khi đồng bộ để biết cần sửa gì."
            }
        },
        Reason::BadPeriod { typed } => html! {
            p id="problem" {
                "«" (typed) "» không phải là kỳ báo cáo: hãy viết năm (2022), quý (2022-Q3) hoặc \
                 tháng (2022-07)."
            }
        },
    }
}

fn reason_en(catalogue: &Catalogue, reason: &Reason) -> Markup {
    match reason {
        Reason::OpenConflicts { village, period, fields, .. } => html! {
            p id="problem" { (reason.to_string()) }
            (conflict_links(Lang::En, catalogue, village, period, fields))
        },
        _ => html! { p id="problem" { (reason.to_string()) } },
    }
}

/// A link to each open conflict, by field name.
fn conflict_links(
    lang: Lang,
    catalogue: &Catalogue,
    village: &str,
    period: &str,
    fields: &[String],
) -> Markup {
    html! {
        ul class="fix" {
            @for field in fields {
                li { a href={ "/conflicts/" (url(village)) "/" (url(period)) "/" (url(field)) } {
                    (lang.field(catalogue, field))
                } }
            }
        }
    }
}

/// Why a typed value is refused, as the app says it.
pub fn refusal_vi(catalogue: &Catalogue, field: &str, refusal: &Refusal) -> String {
    let name = |field: &str| Lang::Vi.field(catalogue, field);
    let unit = match Lang::Vi.unit(catalogue, field) {
        "" => String::new(),
        u => format!(" {u}"),
    };
    let amount = |a: &Amount| Lang::Vi.amount_of(*a);
    match refusal {
        Refusal::NotANumber => "hãy nhập một số, ví dụ 12 hoặc 1,5.".into(),
        Refusal::Ambiguous => "nhập số không có dấu phân cách hàng nghìn hay khoảng trắng, chỉ \
                               một dấu thập phân, ví dụ 1234,5."
            .into(),
        Refusal::TooManyDecimals { scale } => {
            format!("chỉ được tối đa {scale} chữ số sau dấu phẩy.")
        }
        Refusal::WholeNumbersOnly => {
            format!("{} được đếm bằng số nguyên: nhập ví dụ 2.", name(field))
        }
        Refusal::Negative => "không được là số âm: ghi số đã thực hiện.".into(),
        Refusal::TooLarge => "số quá lớn: hãy kiểm tra lại.".into(),
        Refusal::AboveMax { max } => format!(
            "lớn hơn mức một thôn có thể báo cáo (tối đa {}{unit}): hãy kiểm tra lại.",
            amount(max)
        ),
        Refusal::PartAboveWhole { whole, whole_amount } => {
            format!("không được lớn hơn tổng ({} là {}{unit}).", name(whole), amount(whole_amount))
        }
        Refusal::WholeBelowPart { part, part_amount } => format!(
            "nhỏ hơn phần của nó ({} là {}{unit}): hãy giảm phần đó trước.",
            name(part),
            amount(part_amount)
        ),
        Refusal::WholeClearedWithPart { part } => format!(
            "không thể xoá khi phần của nó ({}) còn giá trị: hãy xoá phần đó trước.",
            name(part)
        ),
    }
}
