//! The last field of every row microcal writes: a check of the row's values.
//!
//! Why: a row cut short inside its last field (a killed append, a short write on a full disk,
//! `truncate`) still has every field, and its last value merely reads shorter (`0.1` for
//! `0.1.0`). A check over the values, written last, changes with any cut: a row whose check
//! does not match was not written whole, so its job has no row and runs again. The check
//! covers the non-empty (column, value) pairs by column name, so adding a column to the
//! header later keeps every row's check. Rows written before the check existed have none and
//! read as before.

use sha2::{Digest, Sha256};

/// The column that holds the check; always the header's last.
pub const ROW_CHECK: &str = "row_check";

/// Eight hex digits of SHA-256 over the row's non-empty values, by column name.
pub fn row_check<'a>(columns: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = columns
        .into_iter()
        .filter(|(c, v)| !v.is_empty() && *c != ROW_CHECK)
        .collect();
    pairs.sort_unstable();
    let mut hash = Sha256::new();
    for (column, value) in pairs {
        hash.update(column.as_bytes());
        hash.update([0x1f]);
        hash.update(value.as_bytes());
        hash.update([0x1e]);
    }
    hash.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a row read back is whole: it has no check (written before checks existed) or
/// its check matches its values.
pub fn is_whole<'a>(check: &str, columns: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    check.is_empty() || row_check(columns) == check
}
