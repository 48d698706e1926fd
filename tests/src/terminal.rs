//! A bedside terminal for tests: the terminal protocol over the gateway's
//! Unix socket, line by line, as a real terminal speaks it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One connection to the gateway's terminal socket.
pub struct Terminal {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Terminal {
    /// Connects (no hello yet).
    pub fn connect(path: &Path) -> Terminal {
        let stream = UnixStream::connect(path).expect("the socket accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout can be set");
        Terminal {
            reader: BufReader::new(stream.try_clone().expect("clonable")),
            writer: stream,
        }
    }

    /// Connects, waiting up to 10 s for the socket, and says hello.
    pub fn open(path: &Path, name: &str) -> Terminal {
        let until = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < until, "no socket at {}", path.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut t = Terminal::connect(path);
        t.send(&json!({"type": "hello", "protocol": 1, "terminal": name}).to_string());
        let welcome = t.line().expect("welcome");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        t
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .expect("the daemon reads");
    }

    /// The next line, or `None` at EOF.
    pub fn line(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("every line is JSON")),
        }
    }

    /// The next line that is neither a status nor the confirmations list.
    pub fn next_other(&mut self) -> Value {
        loop {
            let m = self.line().expect("connected");
            if m["type"] != "status" && m["type"] != "confirmations" {
                return m;
            }
        }
    }

    /// Messages of type `kind` until one satisfies `ok`.
    pub fn until(&mut self, kind: &str, ok: impl Fn(&Value) -> bool, secs: u64) -> Value {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let m = self.line().expect("the stream goes on");
            if m["type"] == kind && ok(&m) {
                return m;
            }
            assert!(Instant::now() < until, "no such {kind}; last: {m}");
        }
    }

    /// Confirmations lists until the open cards satisfy `ok`.
    pub fn open_until(&mut self, ok: impl Fn(&[Value]) -> bool, secs: u64) -> Value {
        self.until(
            "confirmations",
            |m| m["open"].as_array().is_some_and(|o| ok(o)),
            secs,
        )
    }

    /// Status messages until one satisfies `ok`.
    pub fn status_until(&mut self, ok: impl Fn(&Value) -> bool, secs: u64) -> Value {
        self.until("status", ok, secs)
    }

    /// Waits for an open confirmation of `pump` whose first need is of
    /// `kind` (`concentration`, `bolus`, `override`); returns its card.
    pub fn confirmation(&mut self, pump: &str, kind: &str, secs: u64) -> Value {
        let m = self.until("confirmations", |m| card_of(m, pump, kind).is_some(), secs);
        card_of(&m, pump, kind).expect("checked").clone()
    }

    /// Sends `confirm` for `card` and returns the `result`.
    pub fn confirm(
        &mut self,
        card: &Value,
        signers: &[(&str, &str)],
        concentration: Option<&str>,
        reason: Option<&str>,
    ) -> Value {
        let signers: Vec<Value> = signers
            .iter()
            .map(|(id, pin)| json!({"staff_id": id, "pin": pin}))
            .collect();
        let mut m = json!({
            "type": "confirm",
            "id": card["id"],
            "screen_hash": card["screen_hash"],
            "signers": signers,
        });
        if let Some(c) = concentration {
            m["concentration"] = json!(c);
        }
        if let Some(r) = reason {
            m["reason"] = json!(r);
        }
        self.send(&m.to_string());
        self.result(&card["id"])
    }

    /// The next `result` for confirmation `id`.
    pub fn result(&mut self, id: &Value) -> Value {
        let id = id.clone();
        self.until("result", move |m| m["id"] == id, 15)
    }
}

fn card_of<'a>(m: &'a Value, pump: &str, kind: &str) -> Option<&'a Value> {
    m["open"].as_array()?.iter().find(|c| {
        c["pump"] == pump
            && c["needs"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["kind"] == kind))
    })
}
