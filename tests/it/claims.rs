//! docs/claims.md maps each documented claim to its test: every test it
//! names exists, so that a renamed or removed test cannot leave a claim
//! unproven without this failing.

use std::path::Path;

/// The backticked `file::name` (a test in `tests/it/file.rs`) and
/// `src/…/file.rs::name` references in `text`.
fn references(text: &str) -> Vec<(String, String)> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|quoted| {
            let (file, name) = quoted.rsplit_once("::")?;
            let plain = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            };
            let file = match file.strip_prefix("src/") {
                Some(_) if file.ends_with(".rs") => file.to_owned(),
                Some(_) => return None,
                None if plain(file) => format!("tests/it/{file}.rs"),
                None => return None,
            };
            // `doctor::*`: every test of a file.
            (plain(name) || name == "*").then(|| (file, name.to_owned()))
        })
        .collect()
}

#[test]
fn every_test_the_claims_table_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = std::fs::read_to_string(root.join("docs/claims.md")).unwrap();
    let refs = references(&table);
    assert!(refs.len() > 40, "too few references read: {refs:?}");
    let mut missing = Vec::new();
    for (file, name) in &refs {
        let Ok(source) = std::fs::read_to_string(root.join(file)) else {
            missing.push(format!("{file} (no such file)"));
            continue;
        };
        let found = name == "*" || source.contains(&format!("fn {name}("));
        if !found {
            missing.push(format!("{file}: fn {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/claims.md names tests that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn references_are_read_from_the_table() {
    let refs = references("| a | `faults::x_y`, `src/cli/tests.rs::z` `doctor::*` `-q` `a::B` |");
    assert_eq!(
        refs,
        [
            ("tests/it/faults.rs".to_owned(), "x_y".to_owned()),
            ("src/cli/tests.rs".to_owned(), "z".to_owned()),
            ("tests/it/doctor.rs".to_owned(), "*".to_owned()),
        ]
    );
}
