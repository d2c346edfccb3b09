//! The limits of new input that every entry point (the store, the CLI, the
//! forms) checks: lengths of free text and names, the shape of new ids.
//! Records already stored are read as they are.

use crate::error::{Error, Result};

/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;
/// Longest author name, in characters.
pub const MAX_AUTHOR_CHARS: usize = 100;

/// Longest free text a person types for others to read: a review reason, a
/// settlement comment.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Longest name: of a user, an org unit, an indicator or its unit, a token's
/// label. (A spreadsheet cell holds at most 32,767 characters.)
pub const MAX_NAME_CHARS: usize = 200;
/// Longest org-unit id or indicator code.
pub const MAX_ID_CHARS: usize = 100;

/// Refuses `text` (a review reason, a comment) over [`MAX_TEXT_CHARS`].
pub fn check_text(what: &str, text: &str) -> Result<()> {
    check_length(what, text, MAX_TEXT_CHARS)
}

/// Refuses a name over [`MAX_NAME_CHARS`].
pub fn check_name(what: &str, name: &str) -> Result<()> {
    check_length(what, name, MAX_NAME_CHARS)
}

fn check_length(what: &str, text: &str, max: usize) -> Result<()> {
    match text.chars().count() {
        chars if chars > max => Err(Error::TooLong { what: what.to_owned(), max, chars }),
        _ => Ok(()),
    }
}

/// Checks a new org-unit id or indicator code: 1 to [`MAX_ID_CHARS`] of
/// `a-z`, `0-9`, `.`, `_` and `-`, so that ids read the same in every file,
/// URL and spreadsheet. (Ids already in a catalogue are read as they are.)
pub fn check_id(what: &str, id: &str) -> Result<()> {
    check_length(what, id, MAX_ID_CHARS)?;
    let ok = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    match ok {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "{what} {:?}: use only lower-case letters a-z, digits, '.', '_' and '-' (e.g. \
             ha-tinh.huong-khe or road_km)",
            truncate(id, 40)
        ))),
    }
}

/// At most `max` characters of `text`, for quoting input in messages.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
