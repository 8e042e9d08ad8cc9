//! The production binary never carries whatsapp-rust's `danger-*` features nor its own
//! SQLite store: read from the feature graph of `mxgate` without dev-dependencies, which
//! is what `cargo build --release` links (test builds may enable `danger-*` to reach the
//! protocol simulator).

use std::process::Command;

#[test]
fn the_release_build_has_no_danger_features_and_no_second_sqlite() {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "mxgate", "--edges", "features,no-dev", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).expect("utf-8");
    assert!(tree.lines().any(|l| l.starts_with("whatsapp-rust v0.7")), "whatsapp-rust is in the build:\n{tree}");
    let whatsapp_features: Vec<&str> = tree.lines().filter(|l| l.starts_with("whatsapp-rust feature")).collect();
    assert!(!whatsapp_features.is_empty(), "the tree lists whatsapp-rust's features:\n{tree}");
    for forbidden in ["danger-", "sqlite-storage", "whatsapp-rust-sqlite-storage"] {
        let found: Vec<&str> = tree.lines().filter(|l| l.contains(forbidden)).collect();
        assert!(found.is_empty(), "the release build must not carry {forbidden}: {found:?}");
    }
    let sqlites: std::collections::HashSet<&str> =
        tree.lines().filter(|l| l.starts_with("libsqlite3-sys v")).map(|l| l.trim_end_matches(" (*)")).collect();
    assert_eq!(sqlites.len(), 1, "one C SQLite: {sqlites:?}");
}
