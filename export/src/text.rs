//! Small text renderings that the server and the tablet CLI both print.

/// `text` as a QR code for a terminal: two rows of modules per line of
/// Unicode half blocks, light on dark as terminals show best, with its
/// quiet zone. `None` if the text is too long for a QR code.
pub fn qr_terminal(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_drawn_in_half_blocks_and_a_text_too_long_is_not() {
        let qr = qr_terminal("http://127.0.0.1:8080/app/#code=ABCD-EFGH").unwrap();
        assert!(qr.lines().count() > 10);
        assert!(qr.chars().all(|c| matches!(c, ' ' | '█' | '▀' | '▄' | '\n')), "{qr}");
        assert_eq!(qr_terminal(&"x".repeat(8_000)), None);
    }
}
