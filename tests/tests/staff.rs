//! `pumpgwd staff`: the staff file and its changes, PINs from a script and
//! from a real terminal (with echo off), and every refusal with its
//! message.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use pumpgw_tests::{binary, on_a_terminal, pumpgwd};

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(binary("pumpgwd"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pumpgwd runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect("it ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn gateway(dir: &Path) -> String {
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "gateway_id = \"bed-1\"\ncare_area = \"adult-icu\"\ndata_dir = \"state\"\n\n[[port]]\npath = \"/dev/null\"\n",
    )
    .expect("writable");
    config.display().to_string()
}

fn add(cfg: &str, id: &str, name: &str, role: &str, pin: &str) -> (i32, String, String) {
    run(
        &[
            "staff",
            "add",
            "--config",
            cfg,
            "--id",
            id,
            "--name",
            name,
            "--role",
            role,
            "--pin-stdin",
            "--by",
            "biomed",
        ],
        &format!("{pin}\n"),
    )
}

#[test]
fn staff_are_added_listed_given_a_new_pin_and_removed_and_every_change_is_logged() {
    let dir = tempfile::tempdir().expect("a folder");
    let cfg = gateway(dir.path());
    let (code, said, err) = add(&cfg, "n.okafor", "Nkechi Okafor", "nurse", "274913");
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("n.okafor (Nkechi Okafor, nurse) added"),
        "{said}"
    );
    assert_eq!(add(&cfg, "d.patel", "Dev Patel", "doctor", "508162").0, 0);

    // The file: private, no PIN in it.
    let file = dir.path().join("state/staff.json");
    let text = std::fs::read_to_string(&file).expect("written");
    assert!(!text.contains("274913") && !text.contains("508162"));
    assert!(text.contains("pbkdf2-hmac-sha256"));
    let mode = std::fs::metadata(&file)
        .expect("there")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);

    let (code, said, _) = run(&["staff", "list", "--config", &cfg], "");
    assert_eq!(code, 0);
    assert!(
        said.contains("n.okafor") && said.contains("doctor") && said.contains("Dev Patel"),
        "{said}"
    );
    assert!(!said.contains("pbkdf2"), "{said}");

    let (code, said, err) = run(
        &[
            "staff",
            "set-pin",
            "--config",
            &cfg,
            "--id",
            "d.patel",
            "--pin-stdin",
        ],
        "739155\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("new PIN set for d.patel"), "{said}");
    let (code, _, _) = run(
        &["staff", "remove", "--config", &cfg, "--id", "n.okafor"],
        "",
    );
    assert_eq!(code, 0);
    let (code, _, err) = run(
        &["staff", "remove", "--config", &cfg, "--id", "n.okafor"],
        "",
    );
    assert_eq!(code, 1, "{err}");

    let out = pumpgwd(&[
        "events",
        "export",
        "--config",
        &cfg,
        "--type",
        "staff_changed",
    ]);
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let actions: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or(""),
                r["staff_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("added", "n.okafor"),
            ("added", "d.patel"),
            ("pin_set", "d.patel"),
            ("removed", "n.okafor")
        ]
    );
    assert_eq!(records[0]["by"], "biomed");
}

#[test]
fn bad_input_is_refused_with_its_reason_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("a folder");
    let cfg = gateway(dir.path());
    assert_eq!(add(&cfg, "d.patel", "Dev Patel", "doctor", "508162").0, 0);
    let file = dir.path().join("state/staff.json");
    let before = std::fs::read(&file).expect("written");
    for (id, pin, says) in [
        ("d.patel", "864202", "exists already"),
        ("x.y", "123456", "a run of digits"),
        ("x.y", "000000", "one digit repeated"),
        ("x.y", "12345", "6 to 12 digits"),
        ("X Y", "864202", "a-z, 0-9"),
    ] {
        let (code, _, err) = add(&cfg, id, "X Y", "nurse", pin);
        assert_eq!(code, 1, "{id} {pin}: {err}");
        assert!(
            err.contains(says) && err.contains("nothing was changed"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&file).expect("still there"), before);
    let (code, _, err) = run(
        &[
            "staff",
            "add",
            "--config",
            &cfg,
            "--id",
            "x",
            "--name",
            "X",
            "--role",
            "surgeon",
            "--pin-stdin",
        ],
        "864202\n",
    );
    assert_eq!(code, 64, "{err}");

    // A staff file others can read is refused, with what to do.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("ours");
    let (code, _, err) = run(&["staff", "list", "--config", &cfg], "");
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("readable by others") && err.contains("chmod"),
        "{err}"
    );
}

/// Runs `pumpgwd staff add` on a real pseudo-terminal, typing each PIN
/// only once its prompt is shown, as a person would.
fn add_on_a_terminal(cfg: &str, id: &str, pins: [&str; 2]) -> (i32, String) {
    on_a_terminal(
        &[
            "staff",
            "add",
            "--config",
            cfg,
            "--id",
            id,
            "--name",
            "Ana Silva",
            "--role",
            "doctor",
        ],
        // Echo is switched off before each prompt is written.
        &[("New PIN", pins[0]), ("again", pins[1])],
    )
}

#[test]
fn on_a_terminal_the_pin_is_asked_twice_and_never_shown() {
    let dir = tempfile::tempdir().expect("a folder");
    let cfg = gateway(dir.path());
    let (code, shown) = add_on_a_terminal(&cfg, "a.silva", ["246810", "246810"]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("a.silva (Ana Silva, doctor) added"),
        "{shown}"
    );
    assert!(!shown.contains("246810"), "the PIN was echoed:\n{shown}");

    let (code, shown) = add_on_a_terminal(&cfg, "b.silva", ["246810", "246811"]);
    assert_eq!(code, 64, "{shown}");
    assert!(shown.contains("the two PINs differ"), "{shown}");
    let (_, said, _) = run(&["staff", "list", "--config", &cfg], "");
    assert!(!said.contains("b.silva"), "{said}");
}
