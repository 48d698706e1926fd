//! A real Mosquitto broker on loopback for the MQTT tests: started per test
//! on a free port with a generated config, stopped and restarted on the
//! same port, optionally with TLS (a CA and certificates made with rcgen at
//! test time); a `mosquitto_sub` with a persistent session that records
//! every event batch; and the checks on what it received.

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback has free ports")
        .port()
}

fn wait_listening(port: u16, up: bool, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() == up {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "{what} on port {port} did not {}",
        if up { "start" } else { "stop" }
    );
}

/// TLS material for one test.
pub struct Pki {
    /// The CA that signs the broker's and the gateway's certificates.
    pub ca: PathBuf,
    /// The broker's certificate (for 127.0.0.1 and localhost) and key.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// The gateway's client certificate.
    pub client_cert: PathBuf,
    /// Its key (mode 0600).
    pub client_key: PathBuf,
}

/// Validity of a made certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid from yesterday to next year.
    Current,
    /// Expired yesterday.
    Expired,
}

fn period(params: &mut CertificateParams, v: Validity) {
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    match v {
        Validity::Current => {
            params.not_before = now - day;
            params.not_after = now + day * 365;
        }
        Validity::Expired => {
            params.not_before = now - day * 30;
            params.not_after = now - day;
        }
    }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).expect("the bench is writable");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("the bench is ours");
}

impl Pki {
    /// A CA and a broker and client certificate signed by it, in `dir`,
    /// named with `prefix`.
    pub fn make(dir: &Path, prefix: &str, server: Validity, client: Validity) -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("no names");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{prefix} test CA"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        period(&mut ca, Validity::Current);
        let ca_key = KeyPair::generate().expect("a key");
        let ca_cert = ca.self_signed(&ca_key).expect("self-signed");
        let issuer = Issuer::new(ca, ca_key);

        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, v: Validity| {
            let mut p = CertificateParams::new(names).expect("valid names");
            p.distinguished_name.push(DnType::CommonName, "pumpgw test");
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![usage];
            p.use_authority_key_identifier_extension = true;
            period(&mut p, v);
            let key = KeyPair::generate().expect("a key");
            let cert = p.signed_by(&key, &issuer).expect("signed");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key_pem) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            server,
        );
        let (client_pem, client_key_pem) = leaf(
            vec!["test-bed.gateways.example".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            client,
        );
        let p = |n: &str| dir.join(format!("{prefix}-{n}"));
        let pki = Pki {
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
            client_cert: p("client.pem"),
            client_key: p("client.key"),
        };
        std::fs::write(&pki.ca, ca_cert.pem()).expect("writable");
        std::fs::write(&pki.server_cert, server_pem).expect("writable");
        write_private(&pki.server_key, &server_key_pem);
        std::fs::write(&pki.client_cert, client_pem).expect("writable");
        write_private(&pki.client_key, &client_key_pem);
        pki
    }
}

/// A Mosquitto broker of one test.
pub struct Broker {
    dir: tempfile::TempDir,
    /// The plain listener (always there; the test's own clients use it).
    pub port: u16,
    /// The TLS listener, when configured.
    pub tls_port: Option<u16>,
    conf: PathBuf,
    /// The broker's log.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// `mosquitto_pub` aimed at this broker's plain listener, QoS 1; add
    /// the topic and message.
    pub fn publisher(&self) -> std::process::Command {
        let mut c = std::process::Command::new("mosquitto_pub");
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1"]);
        c
    }

    /// Starts `pumpgwd archive` on `bench` for `site` of this broker into
    /// `database` (its log named `name`), with the default client id, so
    /// an archive started again takes up the same broker session; waits
    /// until it is subscribed.
    pub fn archive(
        &self,
        bench: &crate::Bench,
        site: &str,
        database: &str,
        name: &str,
    ) -> crate::Proc {
        let url = self.url();
        let p = bench.spawn_with_input(
            name,
            "pumpgwd",
            &[
                "archive",
                "--broker",
                &url,
                "--site",
                site,
                "--database",
                database,
            ],
            None,
        );
        p.wait_for(&["archive subscribed"], 1, 20);
        p
    }

    /// A plain broker on a free loopback port.
    pub fn start() -> Broker {
        Self::with_config(None, None)
    }

    /// A broker with a second, TLS listener that requires a client
    /// certificate signed by `pki`'s CA.
    pub fn start_tls(pki: &Pki) -> Broker {
        Self::with_config(None, Some(pki))
    }

    /// A plain broker that only lets `user` with `password` in.
    pub fn start_with_password(user: &str, password: &str) -> Broker {
        Self::with_config(Some((user, password)), None)
    }

    fn with_config(login: Option<(&str, &str)>, pki: Option<&Pki>) -> Broker {
        assert!(
            Command::new("mosquitto").arg("-h").output().is_ok(),
            "mosquitto is not installed: tests/run installs it (apt-get install mosquitto mosquitto-clients)"
        );
        let dir = tempfile::tempdir().expect("a temporary folder");
        let port = free_port();
        // `user root`: when the tests run as root, mosquitto would switch
        // to user mosquitto, which cannot read this private folder.
        let mut conf = format!(
            "per_listener_settings false\nallow_anonymous true\nuser root\npersistence true\npersistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nconnection_messages true\n\nlistener {port} 127.0.0.1\n",
            dir.path().display()
        );
        if let Some((user, password)) = login {
            let file = dir.path().join("passwords");
            let made = Command::new("mosquitto_passwd")
                .args(["-b", "-c"])
                .arg(&file)
                .args([user, password])
                .status()
                .expect("mosquitto_passwd runs");
            assert!(made.success(), "mosquitto_passwd failed");
            conf = conf.replace("allow_anonymous true", "allow_anonymous false");
            let _ = writeln!(conf, "password_file {}", file.display());
        }
        let mut tls_port = None;
        if let Some(pki) = pki {
            let p = free_port();
            tls_port = Some(p);
            let _ = write!(
                conf,
                "\nlistener {p} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
                pki.ca.display(),
                pki.server_cert.display(),
                pki.server_key.display()
            );
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("writable");
        let log = dir.path().join("mosquitto.log");
        let mut b = Broker {
            dir,
            port,
            tls_port,
            conf: conf_path,
            log,
            child: None,
        };
        b.restart();
        b
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// `mqtts://127.0.0.1:TLS_PORT`.
    pub fn tls_url(&self) -> String {
        format!(
            "mqtts://127.0.0.1:{}",
            self.tls_port.expect("a TLS listener was configured")
        )
    }

    /// Stops the broker (SIGTERM: it saves its sessions) and waits until
    /// the port is closed.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("pid"));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
        wait_listening(self.port, false, "mosquitto");
    }

    /// Starts (again) on the same ports.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("writable");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        self.child = Some(child);
        wait_listening(self.port, true, "mosquitto");
        if let Some(p) = self.tls_port {
            wait_listening(p, true, "mosquitto (TLS)");
        }
    }

    /// The broker's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A subscriber with a persistent session (it gets what was published
    /// while it was away, and across broker restarts) writing `topic
    /// payload` lines to a file.
    pub fn subscribe(&self, name: &str, filter: &str) -> Subscriber {
        let out = self.dir.path().join(format!("{name}.sub"));
        let file = std::fs::File::create(&out).expect("writable");
        let port = self.port.to_string();
        let child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-i",
                name,
                "-c",
                "-q",
                "1",
                "-v",
                "-t",
                filter,
            ])
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub starts (package mosquitto-clients)");
        // Subscribed once the broker logs the client (persistent session).
        let until = Instant::now() + Duration::from_secs(10);
        while !self.log_text().contains(&format!("as {name} ")) {
            assert!(Instant::now() < until, "subscriber {name} did not connect");
            std::thread::sleep(Duration::from_millis(25));
        }
        std::thread::sleep(Duration::from_millis(200));
        Subscriber { child, out }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running `mosquitto_sub`.
pub struct Subscriber {
    child: Child,
    out: PathBuf,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a subscriber received of the event log.
#[derive(Debug, Default)]
pub struct Received {
    /// Every record, in arrival order (duplicates included).
    pub records: Vec<serde_json::Value>,
    /// Batches received.
    pub batches: usize,
}

impl Received {
    /// The sequence numbers in arrival order.
    pub fn seqs(&self) -> Vec<u64> {
        self.records
            .iter()
            .map(|r| r["seq"].as_u64().expect("every record has a seq"))
            .collect()
    }

    /// Checks the at-least-once, in-order contract: each sequence number
    /// seen for the first time is one more than the highest before it (no
    /// gap, nothing out of order); a repeat is identical to the first copy.
    /// Returns the highest and the number of duplicates.
    pub fn check_in_order(&self) -> (u64, usize) {
        let mut first: std::collections::HashMap<u64, &serde_json::Value> =
            std::collections::HashMap::new();
        let mut high = 0;
        let mut duplicates = 0;
        for r in &self.records {
            let seq = r["seq"].as_u64().expect("seq");
            if let Some(prev) = first.get(&seq) {
                assert_eq!(*prev, r, "duplicate #{seq} differs from its first copy");
                duplicates += 1;
                continue;
            }
            assert_eq!(
                seq,
                high + 1,
                "#{seq} arrived after #{high}: a gap or out of order"
            );
            high = seq;
            first.insert(seq, r);
        }
        (high, duplicates)
    }
}

impl Subscriber {
    /// Every event batch received so far.
    pub fn received(&self) -> Received {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let mut r = Received::default();
        for line in text.lines() {
            let Some((topic, payload)) = line.split_once(' ') else {
                continue;
            };
            if !topic.ends_with("/events") {
                continue;
            }
            let Ok(batch) = serde_json::from_str::<serde_json::Value>(payload) else {
                continue; // a line still being written
            };
            r.batches += 1;
            r.records
                .extend(batch["records"].as_array().cloned().unwrap_or_default());
        }
        r
    }

    /// The highest `last_seq` among the last batches received (cheap: only
    /// the end of the file is parsed).
    pub fn highest(&self) -> u64 {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .rev()
            .take(8)
            .filter_map(|l| {
                let (topic, payload) = l.split_once(' ')?;
                if !topic.ends_with("/events") {
                    return None;
                }
                serde_json::from_str::<serde_json::Value>(payload).ok()?["last_seq"].as_u64()
            })
            .max()
            .unwrap_or(0)
    }

    /// Waits until a batch up to at least `seq` has been received, then
    /// returns everything received.
    pub fn wait_for_seq(&self, seq: u64, secs: u64) -> Received {
        let until = Instant::now() + Duration::from_secs(secs);
        while self.highest() < seq {
            assert!(
                Instant::now() < until,
                "record #{seq} not received within {secs} s (highest {})",
                self.highest()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.received()
    }

    /// Every `topic payload` line so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The records of a gateway's log, as `pumpgwd events export` writes them.
pub fn exported(config: &Path) -> Vec<serde_json::Value> {
    let out = crate::pumpgwd(&[
        "events",
        "export",
        "--config",
        &config.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("exported records are JSON"))
        .collect()
}
