//! Arbitrary text through the table writer (Go's `text/tabwriter` as Docker's tables use
//! it). Nothing may panic. Nothing is lost: every line comes out, with the same text once
//! the padding is taken away. A table whose lines all have the same number of cells is
//! aligned: each cell padded to its column's widest cell plus 3, at least 10.

#![no_main]

#[allow(dead_code)]
#[path = "../../crates/cli/src/tabwriter.rs"]
mod tabwriter;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let out = tabwriter::align(&text);
    let strip = |s: &str| {
        s.chars()
            .filter(|c| *c != ' ' && *c != '\t')
            .collect::<String>()
    };
    assert_eq!(strip(&out), strip(&text));
    assert_eq!(
        out.matches('\n').count(),
        text.matches('\n').count(),
        "{out:?}"
    );

    // A rectangular table, padded exactly.
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .collect();
    let Some(first) = rows.first() else { return };
    let n = first.len();
    if n < 2 || rows.iter().any(|r| r.len() != n) || !text.ends_with('\n') || text.contains('\r') {
        return;
    }
    let widths: Vec<usize> = (0..n - 1)
        .map(|j| {
            rows.iter()
                .map(|r| r[j].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    let mut expected = String::new();
    for r in &rows {
        for (j, cell) in r.iter().enumerate() {
            expected.push_str(cell);
            if j + 1 < n {
                expected.extend(std::iter::repeat_n(' ', widths[j] - cell.chars().count()));
            }
        }
        expected.push('\n');
    }
    assert_eq!(out, expected);
});
