//! What deployment relies on: the daemon under a service manager (a real
//! `NOTIFY_SOCKET` datagram socket, as systemd gives it), and the Yocto
//! layer's crates include against `Cargo.lock`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use pumpgw_tests::{Bench, binary, repo_root};

/// The socket systemd would listen on, and what arrives on it.
struct Manager {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl Manager {
    fn new(bench: &Bench) -> Manager {
        let path = bench.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("the bench can bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a timeout can be set");
        Manager { socket, path }
    }

    /// The next message, if one comes within 200 ms.
    fn next(&self) -> Option<String> {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Forgets what has arrived so far.
    fn drain(&self) {
        self.socket.set_nonblocking(true).expect("non-blocking");
        let mut buf = [0u8; 4096];
        while self.socket.recv(&mut buf).is_ok() {}
        self.socket.set_nonblocking(false).expect("blocking");
    }

    /// Messages for `secs`, each with when it came.
    fn during(&self, secs: f32) -> Vec<(Instant, String)> {
        let until = Instant::now() + Duration::from_secs_f32(secs);
        let mut got = Vec::new();
        while Instant::now() < until {
            if let Some(m) = self.next() {
                got.push((Instant::now(), m));
            }
        }
        got
    }

    /// Waits up to `secs` for a message containing `what`.
    fn wait_for(&self, what: &str, secs: u64) -> String {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(m) = self.next()
                && m.contains(what)
            {
                return m;
            }
            assert!(Instant::now() < until, "no {what:?} from the daemon");
        }
    }
}

/// `pumpgwd run` on the bench's gateway config, under `manager`, with a
/// watchdog of `watchdog_ms`.
fn run_under(
    bench: &Bench,
    manager: &Manager,
    watchdog_ms: u64,
    ports: &[&str],
) -> pumpgw_tests::Proc {
    let config = bench.gateway_config(ports, "");
    pumpgw::sim::library::install_library(
        bench.path(),
        "test-bed",
        "adult-icu",
        &std::fs::read(repo_root().join(pumpgw_tests::EXAMPLE_LIBRARY)).expect("the library"),
    )
    .expect("the library installs");
    let notify = format!("NOTIFY_SOCKET={}", manager.path.display());
    let watchdog = format!("WATCHDOG_USEC={}", watchdog_ms * 1000);
    let pumpgwd = binary("pumpgwd").display().to_string();
    let config = config.display().to_string();
    bench.spawn_program(
        "gateway",
        Path::new("/usr/bin/env"),
        &[&notify, &watchdog, &pumpgwd, "run", "--config", &config],
        None,
    )
}

#[test]
fn systemd_hears_ready_once_the_terminal_socket_is_up_then_the_watchdog_then_stopping() {
    let bench = Bench::new();
    let manager = Manager::new(&bench);
    let mut gw = run_under(&bench, &manager, 2_000, &["p1"]);
    let ready = manager.wait_for("READY=1", 15);
    // Ready means ready: the store is open and the terminal accepts.
    assert!(bench.path().join("pumpgw.sqlite").exists());
    std::os::unix::net::UnixStream::connect(bench.terminal_socket())
        .expect("the terminal socket is up when READY=1 is sent");
    assert!(
        ready.contains("STATUS=running: 1 pump port(s), library version 12"),
        "{ready}"
    );
    // Fed every half interval (1 s) by the main loop.
    let fed = manager
        .during(3.5)
        .into_iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .count();
    assert!((3..=4).contains(&fed), "{fed} feeds in 3.5 s");
    assert!(!gw.log_text().contains("not feeding"), "{}", gw.log_text());
    pumpgw_tests::Bench::interrupt(&mut gw, 10);
    manager.wait_for("STOPPING=1", 2);
}

#[test]
fn a_core_stuck_on_the_event_log_stops_the_watchdog_feeding_until_it_moves_again() {
    let bench = Bench::new();
    let manager = Manager::new(&bench);
    let mut gw = run_under(&bench, &manager, 2_000, &["p1"]);
    manager.wait_for("READY=1", 15);
    manager.wait_for("WATCHDOG=1", 2);

    // Another process holds the event log's write lock; the core's next
    // record (the pump coming online) waits on it (5 s busy timeout).
    let db = rusqlite::Connection::open(bench.path().join("pumpgw.sqlite")).expect("opens");
    db.execute_batch("BEGIN EXCLUSIVE")
        .expect("the lock is taken");
    let mut sim = bench.sim_alone(
        "p1",
        "[pump]\nserial = \"SIM-WD-1\"\ncare_area = \"adult-icu\"\n\n[[step]]\naction = \"wait_library\"\n",
        &[],
    );
    // The main loop sees the core stand still, and stops feeding.
    gw.wait_for(&["not feeding the watchdog"], 1, 4);
    manager.drain();
    let stalled = manager.during(1.5);
    assert!(
        stalled.iter().all(|(_, m)| !m.contains("WATCHDOG=1")),
        "fed while the core was stuck: {stalled:?}"
    );
    assert!(
        gw.count(&["not feeding the watchdog"]) >= 2,
        "{}",
        gw.log_text()
    );
    db.execute_batch("ROLLBACK").expect("the lock is released");

    // The core moves again, and so does the feeding.
    manager.wait_for("WATCHDOG=1", 5);
    assert!(sim.wait_exit(20).success(), "{}", sim.log_text());
    pumpgw_tests::Bench::interrupt(&mut gw, 10);
}

#[test]
fn without_a_service_manager_nothing_is_sent_and_the_daemon_runs() {
    // The plain case (a terminal, the demo): no NOTIFY_SOCKET.
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    gw.wait_for(&["gateway running"], 1, 15);
    assert!(
        !gw.log_text().contains("service manager"),
        "{}",
        gw.log_text()
    );
    assert!(Bench::interrupt(&mut gw, 10).success());
}

#[test]
fn the_yocto_crates_include_matches_cargo_lock() {
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("yocto/update-crates"))
        .arg("--check")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_stale_crates_include_is_caught_with_what_differs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).expect("Cargo.lock");
    // A dependency bumped without running yocto/update-crates.
    let key = "name = \"anyhow\"\nversion = \"";
    let start = lock.find(key).expect("anyhow is locked") + key.len();
    let end = start + lock[start..].find('"').expect("a version string");
    let bumped = format!("{}9.9.9{}", &lock[..start], &lock[end..]);
    let file = dir.path().join("Cargo.lock");
    std::fs::write(&file, bumped).expect("writable");
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("yocto/update-crates"))
        .args(["--check", "--lock"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run yocto/update-crates"), "{err}");
    assert!(err.contains("+    crate://crates.io/anyhow/9.9.9"), "{err}");
}

#[test]
fn the_recipe_pins_a_commit_and_never_autorev() {
    let recipe = std::fs::read_to_string(
        repo_root().join("yocto/meta-pumpgw/recipes-pumpgw/pumpgw/pumpgw_0.1.0.bb"),
    )
    .expect("the recipe");
    assert!(
        !recipe
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("AUTOREV")),
        "AUTOREV in the recipe"
    );
    let srcrev = recipe
        .lines()
        .find_map(|l| l.strip_prefix("SRCREV = \""))
        .and_then(|r| r.strip_suffix('"'))
        .expect("SRCREV is set");
    assert!(
        srcrev.len() == 40 && srcrev.chars().all(|c| c.is_ascii_hexdigit()),
        "SRCREV {srcrev:?} is not a commit"
    );
}
