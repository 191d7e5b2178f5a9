//! Cells as whoever opens the file will read them.
//!
//! Why: a CSV cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is a
//! formula to a spreadsheet (`=HYPERLINK(…)`, `=cmd|' /C calc'!A0`), and a Markdown cell
//! with `|` or raw HTML changes the table or the page. OWASP's advice for CSV is a leading
//! `'`, which spreadsheets hide and treat as "this is text". Numbers (`-0.5`, `+1e-3`) are
//! left alone: they cannot run and must stay numbers. Both the results table and report CSVs
//! escape so, and [`unescape_csv`] undoes it on reading.

/// Characters that make a spreadsheet evaluate a cell.
const FORMULA_STARTS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// `value`, with a leading `'` when a spreadsheet would evaluate it.
pub fn escape_csv(value: &str) -> std::borrow::Cow<'_, str> {
    let risky = value.starts_with(FORMULA_STARTS)
        || (value.starts_with('\'') && value[1..].starts_with(FORMULA_STARTS));
    if risky && value.trim().parse::<f64>().is_err() {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// The value [`escape_csv`] was given.
pub fn unescape_csv(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest)
            if (rest.starts_with(FORMULA_STARTS)
                || (rest.starts_with('\'') && rest[1..].starts_with(FORMULA_STARTS)))
                && rest.trim().parse::<f64>().is_err() =>
        {
            rest
        }
        _ => cell,
    }
}

/// A Markdown table cell: `|` escaped, `&`, `<` and `>` as HTML entities, line breaks as
/// spaces.
pub fn escape_markdown(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_escaped_and_numbers_are_not() {
        for formula in [
            "=HYPERLINK(\"http://x\")",
            "=cmd|' /C calc'!A0",
            "+A1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "'=already quoted",
        ] {
            let escaped = escape_csv(formula);
            assert!(escaped.starts_with('\''), "{formula}");
            assert_eq!(unescape_csv(&escaped), formula);
        }
        for plain in ["-0.5", "+1e-3", "db5", "'quoted'", "a=b", ""] {
            assert_eq!(escape_csv(plain), plain);
            assert_eq!(unescape_csv(plain), plain);
        }
    }

    #[test]
    fn markdown_cells_cannot_add_columns_or_markup() {
        assert_eq!(
            escape_markdown("a|b <script>&"),
            "a\\|b &lt;script&gt;&amp;"
        );
    }
}
