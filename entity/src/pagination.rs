//! Page sizes and pages for keyset-paginated lists.
use crate::error::DomainError;

/// Page size when the client asks for none.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The most items one page returns; larger requests are capped to it.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The page size for a client's `first`: default 20, capped at 100.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `first` for a negative number.
pub fn page_size(first: Option<i32>) -> Result<u64, DomainError> {
    match first {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if n < 0 => Err(DomainError::invalid("first", "must not be negative")),
        Some(n) => Ok(u64::from(n.unsigned_abs()).min(MAX_PAGE_SIZE)),
    }
}

/// One page of a list, in order, and whether more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `size + 1` fetched rows: the extra row only
    /// says that another page exists.
    #[must_use]
    pub fn from_overfetch(mut rows: Vec<T>, size: u64) -> Self {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let has_next_page = rows.len() > size;
        rows.truncate(size);
        Self {
            items: rows,
            has_next_page,
        }
    }

    /// The same page with every item mapped.
    #[must_use]
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_cap_and_reject_negatives() {
        assert_eq!(page_size(None).ok(), Some(20));
        assert_eq!(page_size(Some(0)).ok(), Some(0));
        assert_eq!(page_size(Some(7)).ok(), Some(7));
        assert_eq!(page_size(Some(10_000)).ok(), Some(100));
        assert!(matches!(
            page_size(Some(-1)),
            Err(DomainError::InvalidInput { field: "first", .. })
        ));
    }

    #[test]
    fn an_extra_row_means_another_page() {
        let page = Page::from_overfetch(vec![1, 2, 3], 2);
        assert_eq!((page.items, page.has_next_page), (vec![1, 2], true));
        let page = Page::from_overfetch(vec![1, 2], 2);
        assert_eq!((page.items, page.has_next_page), (vec![1, 2], false));
    }
}
