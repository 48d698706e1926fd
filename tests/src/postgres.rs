//! A real PostgreSQL server for the archive's tests: Debian's binaries
//! (`/usr/lib/postgresql/<version>/bin`), a cluster made by `initdb` in a
//! temporary folder, listening on loopback on a free port, stopped when
//! dropped. As root, the server runs as the `postgres` user (it refuses to
//! run as root).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    child: Child,
    /// `setpriv` arguments that run a program as the server's user (empty
    /// when not root).
    as_user: Vec<String>,
}

/// The newest installed server's binaries.
fn binaries() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (Debian package postgresql; tests/run installs it)")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("a PostgreSQL server with initdb under /usr/lib/postgresql")
}

impl Postgres {
    /// Makes a cluster and starts its server. `durable` keeps PostgreSQL's
    /// own fsync on (for measurements); tests turn it off for speed.
    pub fn start(durable: bool) -> Postgres {
        let bin = binaries();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut as_user = Vec::new();
        if nix::unistd::getuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .expect("the user database reads")
                .expect("the postgres user (made by the Debian package)");
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid))
                .expect("root can give the folder away");
            as_user = vec![
                format!("--reuid={}", user.uid),
                format!("--regid={}", user.gid),
                "--clear-groups".to_owned(),
                "--".to_owned(),
            ];
        }
        let data = dir.path().join("data");
        let mut pg = Postgres {
            dir,
            bin,
            port: crate::mqtt::free_port(),
            child: Command::new("true").spawn().expect("true runs"),
            as_user,
        };
        let out = pg
            .command("initdb")
            .args([
                "-D",
                &data.display().to_string(),
                "-U",
                "pumpgw",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fsync = if durable { "on" } else { "off" };
        let log = std::fs::File::create(pg.dir.path().join("server.log")).expect("writable");
        pg.child = pg
            .command("postgres")
            .args([
                "-D",
                &data.display().to_string(),
                "-p",
                &pg.port.to_string(),
                "-k",
                &pg.dir.path().display().to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                &format!("fsync={fsync}"),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(pg.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &pg.port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < until,
                "PostgreSQL did not start: {}",
                pg.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    fn command(&self, program: &str) -> Command {
        if self.as_user.is_empty() {
            Command::new(self.bin.join(program))
        } else {
            let mut c = Command::new("setpriv");
            c.args(&self.as_user).arg(self.bin.join(program));
            c
        }
    }

    /// `psql` on `database` as the cluster's user, stopping at the first
    /// error; its output.
    fn psql(&self, database: &str, statement: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "pumpgw",
            ])
            .args([
                "-d",
                database,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                statement,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes a database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        format!("postgres://pumpgw@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs one SQL statement on `database`; its output.
    pub fn sql(&self, database: &str, statement: &str) -> String {
        self.psql(database, statement)
    }

    /// The server's log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
        }
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
