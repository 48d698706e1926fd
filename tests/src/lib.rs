//! Helpers for the end-to-end tests: find the real binaries that
//! `tests/run` built, and write input files into a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the repository")
        .to_path_buf()
}

/// Path to a workspace binary in the same target directory as this test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("a test knows its own path");
    // target/<profile>/deps/<test>-<hash>  ->  target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (tests/run does: cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Run `pumpgwd` with arguments from the repository root.
pub fn pumpgwd(args: &[&str]) -> Output {
    Command::new(binary("pumpgwd"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("pumpgwd runs")
}

/// Write `value` as JSON into `dir/name` and return the path as a string.
pub fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(value).expect("JSON serialises"),
    )
    .expect("temporary directory is writable");
    path.display().to_string()
}

/// The example library, relative to the repository root.
pub const EXAMPLE_LIBRARY: &str = "config/drug-library.example.json";

/// `pumpgwd ders check` against the example library, with `extra` arguments
/// (e.g. `--json`, `--history FILE`).
pub fn ders_check(care_area: &str, program: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "ders",
        "check",
        "--library",
        EXAMPLE_LIBRARY,
        "--care-area",
        care_area,
        "--program",
        program,
    ];
    args.extend_from_slice(extra);
    pumpgwd(&args)
}
