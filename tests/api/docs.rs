//! The README's tables that copy the code stay true: every error code with its status, and every
//! metric the service defines.

use std::collections::BTreeSet;

use beryl_core_api::error::ErrorCode;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect("read")
}

/// The rows of the first table after the line `after`.
fn table_after<'a>(doc: &'a str, after: &str) -> Vec<Vec<&'a str>> {
    let start = doc.find(after).unwrap_or_else(|| panic!("README has no `{after}`"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

/// Every name between backticks in `cell`.
fn quoted(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('`').skip(1).step_by(2)
}

#[test]
fn the_error_table_lists_every_code_with_its_status() {
    let readme = read("README.md");
    let mut documented = BTreeSet::new();
    for row in table_after(&readme, "with a stable `code`:") {
        let status: u16 = row[1].parse().unwrap_or_else(|_| panic!("status of {row:?}"));
        documented.extend(quoted(row[0]).map(|code| (code.to_owned(), status)));
    }
    let defined: BTreeSet<(String, u16)> = ErrorCode::ALL.iter().map(|c| (c.as_str().to_owned(), c.status())).collect();
    assert_eq!(documented, defined, "README error table (left) against the code's table (right)");
}

#[test]
fn the_metrics_table_lists_every_metric() {
    let readme = read("README.md");
    let documented: BTreeSet<&str> = table_after(&readme, "## Metrics")
        .iter()
        .flat_map(|row| quoted(row[0]))
        // Names followed by their labels in braces.
        .map(|name| name.split('{').next().unwrap_or(name))
        .filter(|name| !name.starts_with("beryl_process_"))
        .collect();
    // Every metric name is a constant of src/telemetry.rs.
    let telemetry = read("src/telemetry.rs");
    let defined: BTreeSet<&str> = telemetry
        .lines()
        .filter(|l| l.starts_with("pub const ") && l.contains(": &str = \"beryl_") && !l.contains("PREFIX"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert_eq!(documented, defined, "README metrics table (left) against src/telemetry.rs (right)");
}
