//! Helpers for the end-to-end tests: find the real binaries that
//! `tests/run` built, and write input files into a temporary directory.

pub mod controller;
pub mod display;
pub mod mqtt;
pub mod postgres;
pub mod report_fixture;
pub mod terminal;
pub mod touch;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the repository")
        .to_path_buf()
}

/// The Python of the validators' virtual environment that `tests/run`
/// makes (`target/venv`, beside the binaries' folder).
pub fn validators_python() -> PathBuf {
    let exe = std::env::current_exe().expect("a test knows its own path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binaries live in target/<profile>/deps");
    let python = target.join("venv/bin/python");
    assert!(
        python.exists(),
        "{} not found: run tests/run, which makes the validators' virtual environment",
        python.display()
    );
    python
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

/// Runs `pumpgwd` and returns its exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = pumpgwd(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The example library's text, renumbered as `version`.
pub fn library(version: u64) -> String {
    let text =
        std::fs::read_to_string(repo_root().join(EXAMPLE_LIBRARY)).expect("the example library");
    let out = text.replacen("\"version\": 12", &format!("\"version\": {version}"), 1);
    assert!(out.contains(&format!("\"version\": {version}")));
    out
}

/// The second pharmacist's key that goes with the pharmacy key `key`:
/// `KEY-approver`, made with `library keygen` the first time it is needed.
pub fn approver_key(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push("-approver");
    let p = PathBuf::from(p);
    if !p.exists() {
        let (code, _, err) = run(&["library", "keygen", "--out", &p.display().to_string()]);
        assert_eq!(code, 0, "{err}");
    }
    p
}

/// The config line that trusts the pharmacy key `key` and its approver
/// ([`approver_key`]), as a gateway with the default `approvals = 1` needs.
pub fn trusted_keys(key: &Path) -> String {
    let approver = approver_key(key);
    format!(
        "trusted_keys = [{:?}, {:?}]",
        format!("{}.pub", key.display()),
        format!("{}.pub", approver.display())
    )
}

/// Writes `text` as `dir/name` and its signature file as `dir/name.sig`:
/// proposed with the pharmacy key at `key` (PKCS#8), approved with its
/// [`approver_key`]; returns both paths.
pub fn write_signed(dir: &Path, name: &str, text: &str, key: &Path) -> (String, String) {
    use pumpgw::library::signature;
    let file = dir.join(name);
    std::fs::write(&file, text).expect("the bench is writable");
    let at = "2026-12-04T10:00:00.000Z";
    let pkcs8 = std::fs::read(key).expect("the key was made");
    let mut sig = signature::propose(text.as_bytes(), &pkcs8, key, "Pat Proposer", at)
        .expect("the key signs");
    let approver = approver_key(key);
    let pkcs8 = std::fs::read(&approver).expect("the approver's key was made");
    signature::approve(
        text.as_bytes(),
        &mut sig,
        &pkcs8,
        &approver,
        "Alex Approver",
        at,
    )
    .expect("the approver's key signs");
    let sig_path = dir.join(format!("{name}.sig"));
    std::fs::write(&sig_path, serde_json::to_vec(&sig).expect("JSON"))
        .expect("the bench is writable");
    (file.display().to_string(), sig_path.display().to_string())
}

/// Signs the example library renumbered as `version` with the pharmacy
/// key `key`, then imports and activates it with the CLI on the gateway
/// config `config`, as a pharmacist would.
pub fn import_and_activate(config: &Path, version: u64, key: &Path, reason: &str) {
    let dir = config.parent().expect("a config is in a folder");
    let name = format!("v{version}.json");
    let (file, sig) = write_signed(dir, &name, &library(version), key);
    let cfg = config.display().to_string();
    let (code, said, err) = run(&[
        "library",
        "import",
        &file,
        "--signature",
        &sig,
        "--config",
        &cfg,
    ]);
    assert_eq!(code, 0, "{said}{err}");
    let version = version.to_string();
    let (code, _, err) = run(&[
        "library", "activate", &version, "--config", &cfg, "--reason", reason,
    ]);
    assert_eq!(code, 0, "{err}");
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

/// A `pump-sim` scenario: an adult critical-care pump (70 kg) with `pump`
/// lines added to its `[pump]`, that waits for the library, loads a
/// fentaNYL syringe (2,500 micrograms in 50 mL) and plays `steps`.
pub fn fentanyl_pump(serial: &str, pump: &str, steps: &str) -> String {
    format!(
        "[pump]\nserial = \"{serial}\"\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n{pump}\n\
         [[step]]\naction = \"wait_library\"\n\n\
         [[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n{steps}"
    )
}

/// A running binary whose stdout and stderr go to files in its bench.
pub struct Proc {
    child: std::process::Child,
    name: String,
    /// stderr (the log).
    pub log: PathBuf,
    /// stdout.
    pub out: PathBuf,
}

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Everything printed on stdout so far.
    pub fn out_text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Lines of the log containing every one of `needles`.
    pub fn count(&self, needles: &[&str]) -> usize {
        self.log_text()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
    }

    /// Waits until `count(needles) >= n`; panics with the log after `secs`.
    pub fn wait_for(&self, needles: &[&str], n: usize, secs: u64) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if self.count(needles) >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "{}: {n} log line(s) with {needles:?} not seen within {secs} s; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// Waits for the process to exit; panics with the log after `secs`.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if let Some(status) = self.child.try_wait().expect("waiting on a child works") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "{} still running after {secs} s; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until a `pump-sim` that stays (`--stay`) has played its steps,
    /// and checks that every expectation was met.
    pub fn played(&self) {
        self.wait_for(&["scenario played"], 1, 60);
        assert_eq!(
            self.count(&["scenario played", "failures=0"]),
            1,
            "{}",
            self.log_text()
        );
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self, secs: u64) -> std::process::ExitStatus {
        let pid =
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(secs)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary folder holding a gateway config, scenarios, pseudo-terminal
/// links and logs.
pub struct Bench {
    dir: tempfile::TempDir,
    /// Whether the gateway config has the bench's own bedside terminal
    /// (then `sim` plays the staff there too).
    bedside: std::cell::Cell<bool>,
}

/// The bench's nurse (in every bench gateway's staff file).
pub const NURSE: (&str, &str) = ("n.okafor", "482916");
/// The bench's doctor.
pub const DOCTOR: (&str, &str) = ("d.patel", "719384");
/// A second doctor.
pub const DOCTOR_2: (&str, &str) = ("d.wright", "530718");
/// A pharmacist (who may confirm nothing at the bedside).
pub const PHARMACIST: (&str, &str) = ("p.lee", "864209");

impl Default for Bench {
    fn default() -> Self {
        Self::new()
    }
}

impl Bench {
    /// A new empty bench.
    pub fn new() -> Self {
        Bench {
            dir: tempfile::tempdir().expect("a temporary folder can be made"),
            bedside: std::cell::Cell::new(false),
        }
    }

    /// The bench folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a workspace binary with its output in the bench; `stdin`
    /// is written to it (and closed) when given, otherwise it is empty.
    pub fn spawn_with_input(
        &self,
        name: &str,
        bin: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Proc {
        self.spawn_program(name, &binary(bin), args, stdin)
    }

    /// Starts any program (e.g. `prlimit` around a binary) like
    /// [`Bench::spawn_with_input`].
    pub fn spawn_program(
        &self,
        name: &str,
        program: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Proc {
        let log = self.path().join(format!("{name}.log"));
        let out = self.path().join(format!("{name}.out"));
        let mut child = Command::new(program)
            .args(args)
            .current_dir(repo_root())
            .env("RUST_LOG", "info")
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::fs::File::create(&out).expect("bench is writable"))
            .stderr(std::fs::File::create(&log).expect("bench is writable"))
            .spawn()
            .expect("the binary starts");
        if let Some(text) = stdin {
            use std::io::Write as _;
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(text.as_bytes())
                .expect("the child reads stdin");
        }
        Proc {
            child,
            name: name.to_owned(),
            log,
            out,
        }
    }

    /// Sends SIGINT (Ctrl-C) to a process and waits for its exit.
    pub fn interrupt(proc: &mut Proc, secs: u64) -> std::process::ExitStatus {
        let pid =
            nix::unistd::Pid::from_raw(i32::try_from(proc.child.id()).expect("pids fit in i32"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        proc.wait_exit(secs)
    }

    fn spawn(&self, name: &str, bin: &str, args: &[&str]) -> Proc {
        self.spawn_with_input(name, bin, args, None)
    }

    /// Writes a gateway config for ports named `ports` (their devices are
    /// links in the bench), with `extra` TOML appended, and starts
    /// `pumpgwd run` on it.
    /// The example library is signed, imported and activated in the
    /// bench's store first (once).
    pub fn gateway(&self, ports: &[&str], extra: &str) -> Proc {
        self.gateway_in("adult-icu", ports, extra)
    }

    /// [`Bench::gateway`] for a bed in another care area.
    pub fn gateway_in(&self, care_area: &str, ports: &[&str], extra: &str) -> Proc {
        let library =
            std::fs::read(repo_root().join(EXAMPLE_LIBRARY)).expect("the example library");
        pumpgw::sim::library::install_library(self.path(), "test-bed", care_area, &library)
            .expect("the example library installs");
        let path = self.gateway_config_in(care_area, ports, extra);
        self.spawn(
            "gateway",
            "pumpgwd",
            &["run", "--config", &path.display().to_string()],
        )
    }

    /// [`Bench::gateway`] started through `wrapper` (a program and its
    /// arguments, before `pumpgwd run ...`): `env` with variables, say.
    pub fn gateway_wrapped(&self, ports: &[&str], extra: &str, wrapper: &[&str]) -> Proc {
        let library =
            std::fs::read(repo_root().join(EXAMPLE_LIBRARY)).expect("the example library");
        pumpgw::sim::library::install_library(self.path(), "test-bed", "adult-icu", &library)
            .expect("the example library installs");
        let path = self.gateway_config(ports, extra).display().to_string();
        let (program, first) = wrapper.split_first().expect("a wrapper names a program");
        let bin = binary("pumpgwd").display().to_string();
        let mut args: Vec<&str> = first.to_vec();
        args.extend([bin.as_str(), "run", "--config", &path]);
        self.spawn_program("gateway", Path::new(program), &args, None)
    }

    /// The records of type `kind` in the bench's event log, as
    /// `pumpgwd events export` writes them.
    pub fn exported(&self, kind: &str) -> Vec<serde_json::Value> {
        let dir = self.path().display().to_string();
        let out = pumpgwd(&["events", "export", "--data-dir", &dir, "--type", kind]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("records are UTF-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is a record"))
            .collect()
    }

    /// The bench's terminal socket (in every gateway config whose `extra`
    /// has no `[terminal]` of its own).
    pub fn terminal_socket(&self) -> PathBuf {
        self.path().join("terminal.sock")
    }

    /// Writes the bench's staff file (a nurse, two doctors, a pharmacist)
    /// into the gateway's data folder, if it is not there yet.
    pub fn staff_file(&self) -> PathBuf {
        use pumpgw::library::Role;
        let path = self.path().join("staff.json");
        if !path.exists() {
            let mut roster = pumpgw::staff::Roster::default();
            for (who, name, role) in [
                (NURSE, "Nkechi Okafor", Role::Nurse),
                (DOCTOR, "Dev Patel", Role::Doctor),
                (DOCTOR_2, "Sam Wright", Role::Doctor),
                (PHARMACIST, "Pat Lee", Role::Pharmacist),
            ] {
                roster
                    .add(who.0, name, role, who.1)
                    .expect("the bench's staff are valid");
            }
            roster.save(&path).expect("the staff file saves");
        }
        path
    }

    /// The arguments that make `pump-sim` play the bench's nurse and doctor
    /// at the bench's terminal.
    pub fn bedside_args(&self) -> Vec<String> {
        vec![
            "--terminal".to_owned(),
            self.terminal_socket().display().to_string(),
            "--nurse".to_owned(),
            format!("{}:{}", NURSE.0, NURSE.1),
            "--doctor".to_owned(),
            format!("{}:{}", DOCTOR.0, DOCTOR.1),
        ]
    }

    /// Writes the gateway config `gateway` uses and returns its path. Unless
    /// `extra` has its own `[terminal]`, the gateway gets the bench's
    /// terminal socket and staff file, and `sim` plays staff there.
    pub fn gateway_config(&self, ports: &[&str], extra: &str) -> PathBuf {
        self.gateway_config_in("adult-icu", ports, extra)
    }

    /// [`Bench::gateway_config`] for a bed in another care area.
    pub fn gateway_config_in(&self, care_area: &str, ports: &[&str], extra: &str) -> PathBuf {
        let mut config = format!(
            "gateway_id = \"test-bed\"\ncare_area = {care_area:?}\ndata_dir = \".\"\n{extra}\n"
        );
        let bedside = !extra.contains("[terminal]");
        if bedside {
            let _ = write!(
                config,
                "\n[terminal]\nsocket = {:?}\n",
                self.terminal_socket().display().to_string()
            );
        }
        self.staff_file();
        self.bedside.set(bedside);
        for p in ports {
            let _ = write!(
                config,
                "\n[[port]]\nname = {p:?}\npath = {:?}\n",
                self.path().join(p).display().to_string()
            );
        }
        let path = self.path().join("gateway.toml");
        std::fs::write(&path, config).expect("bench is writable");
        path
    }

    /// Writes `scenario` and starts `pump-sim` on a pseudo-terminal linked
    /// at `port`, with `args` added; it also plays the bench's staff at the
    /// bench's terminal when the gateway has it.
    pub fn sim(&self, port: &str, scenario: &str, args: &[&str]) -> Proc {
        let bedside = if self.bedside.get() {
            self.bedside_args()
        } else {
            Vec::new()
        };
        let mut all: Vec<&str> = bedside.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        self.sim_alone(port, scenario, &all)
    }

    /// [`Bench::sim`] without simulated staff: nobody answers its
    /// confirmations unless the test does.
    pub fn sim_alone(&self, port: &str, scenario: &str, args: &[&str]) -> Proc {
        let file = self.path().join(format!("{port}.toml"));
        std::fs::write(&file, scenario).expect("bench is writable");
        let link = self.path().join(port).display().to_string();
        let file = file.display().to_string();
        let mut all = vec!["--scenario", &file, "--link", &link];
        all.extend_from_slice(args);
        self.spawn(&format!("sim-{port}"), "pump-sim", &all)
    }
}

/// A process's peak resident memory (`VmHWM`), in KiB; 0 if unknown.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// An example scenario's text (`config/examples/scenarios/NAME.toml`).
pub fn example_scenario(name: &str) -> String {
    std::fs::read_to_string(
        repo_root()
            .join("config/examples/scenarios")
            .join(format!("{name}.toml")),
    )
    .expect("example scenario exists")
}

/// A pump that raises and clears alarms quickly: two events every 40 ms.
pub fn alarm_storm(serial: &str, alarms: usize) -> String {
    let mut s = format!("[pump]\nserial = \"{serial}\"\n\n[[step]]\naction = \"wait_online\"\n");
    for _ in 0..alarms {
        let _ = write!(
            s,
            "\n[[step]]\naction = \"alarm\"\ncondition = \"air_in_line\"\npriority = \"low\"\ntext = \"Air in line\"\nclear_after = \"0.02 s\"\n\n[[step]]\naction = \"wait\"\nduration = \"0.04 s\"\n"
        );
    }
    s
}

/// Appends `n` records to the log in `data_dir` (a backlog made without a
/// gateway running), in transactions of 1,000.
pub fn prefill(data_dir: &Path, n: u64) {
    use pumpgw::store::{Context, Event, Store, log::Log};
    let mut log = Log::new(Store::open(&Store::file_in(data_dir)).expect("the store opens"))
        .expect("the log opens");
    let ctx = Context {
        gateway: "test-bed".to_owned(),
        pump: Some("p1".to_owned()),
        care_area: "adult-icu".to_owned(),
        library_version: Some(12),
    };
    let mut left = n;
    while left > 0 {
        let k = left.min(1_000);
        let events = (0..k)
            .map(|i| {
                (
                    ctx.clone(),
                    Event::LinkDown {
                        reason: format!("backlog filler {}", n - left + i),
                    },
                )
            })
            .collect();
        log.append(events, time::OffsetDateTime::now_utc())
            .expect("the backlog is written");
        left -= k;
    }
}

/// Runs `pumpgwd` with `args` on a real pseudo-terminal (util-linux
/// `script`), answering each prompt only once it is shown, as a person
/// would: `answers` are (words of the prompt, what to type) in order.
/// Returns the exit status and everything the terminal showed.
pub fn on_a_terminal(args: &[&str], answers: &[(&str, &str)]) -> (i32, String) {
    use std::io::{Read as _, Write as _};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let cmd = format!("{} {}", binary("pumpgwd").display(), quoted.join(" "));
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(repo_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().expect("piped");
    let sink = shown.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("not poisoned")
                .extend_from_slice(&buf[..n]);
        }
    });
    let mut stdin = child.stdin.take().expect("piped");
    let mut seen = 0;
    for (prompt, answer) in answers {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let text = shown.lock().expect("not poisoned").clone();
            let text = String::from_utf8_lossy(&text[seen..]).into_owned();
            if let Some(at) = text.find(prompt) {
                seen += at + prompt.len();
                break;
            }
            assert!(
                Instant::now() < until,
                "no {prompt:?} prompt; the terminal showed:\n{}",
                String::from_utf8_lossy(&shown.lock().expect("not poisoned"))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .expect("typed");
    }
    let status = child.wait().expect("it ends");
    reader.join().expect("reader ends");
    let text = String::from_utf8_lossy(&shown.lock().expect("not poisoned")).into_owned();
    (status.code().unwrap_or(-1), text)
}
