//! Free text a person typed (names, address lines): trimmed, bounded, on one line.
use crate::error::DomainError;

/// Trimmed text of 1..=`max` characters with no control characters.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `field` otherwise.
pub fn one_line(field: &'static str, raw: &str, max: usize) -> Result<String, DomainError> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            format!("must be 1-{max} characters on one line"),
        ));
    }
    Ok(text.to_owned())
}

/// As [`one_line`], but absent or blank text is `None`.
///
/// # Errors
/// As [`one_line`] for text that is there.
pub fn optional_line(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => one_line(field, text, max).map(Some),
    }
}
