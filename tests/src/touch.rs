//! The touchscreen as a finger meets it, for the tests of the real window
//! (`tests/touch*.rs`, `tests/practice.rs`): the demo started on a display,
//! where things are on the 800x480 panel, and the touchscreen's log
//! followed line by line.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary;
use crate::display::Display;

/// `pumpgwd ARGS` (a demo) for `seconds`, its touchscreen on `display`; with its output read up to the header line
/// starting `until`, whose path it returns (the demo's folder, holding its
/// logs, is removed when it ends: read them while it runs).
pub fn demo(
    display: &Display,
    args: &[&str],
    seconds: &str,
    until: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
    std::path::PathBuf,
) {
    let mut demo = Command::new(binary("pumpgwd"))
        .args(args)
        .args(["--duration", seconds])
        .env("DISPLAY", &display.name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo starts");
    let mut out = std::io::BufReader::new(demo.stdout.take().expect("stdout is piped"));
    let mut header = String::new();
    let path = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).expect("reads") > 0, "{header}");
        header.push_str(&line);
        if let Some(path) = line.strip_prefix(until) {
            break std::path::PathBuf::from(path.trim());
        }
    };
    (demo, out, header, path)
}

/// Where things are on the 800x480 panel, for a finger: the keypad and
/// buttons of a confirmation screen with one row of names.
pub mod at {
    /// The home screen's announcement, no alarm banner above it.
    pub const BANNER_NO_ALARM: (u32, u32) = (400, 65);
    /// The announcement under the bed's alarm banner, or under the
    /// practice line.
    pub const BANNER_UNDER_ALARM: (u32, u32) = (400, 117);
    /// The practice line on the home screen (no alarm banner).
    pub const PRACTICE_LINE: (u32, u32) = (400, 65);
    /// The first name to sign with.
    pub const FIRST_NAME: (u32, u32) = (566, 34);
    /// The label's amount.
    pub const AMOUNT: (u32, u32) = (245, 200);
    /// The unit "micrograms".
    pub const MICROGRAMS: (u32, u32) = (86, 256);
    /// The unit "mg".
    pub const MG: (u32, u32) = (245, 256);
    /// The label's volume.
    pub const VOLUME: (u32, u32) = (245, 368);
    /// The first reason to override a soft limit.
    pub const FIRST_REASON: (u32, u32) = (245, 343);
    /// Confirm.
    pub const CONFIRM: (u32, u32) = (743, 433);
    /// The result's OK.
    pub const OK: (u32, u32) = (400, 430);

    /// The list's row `i` (0 first).
    pub fn row(i: usize) -> (u32, u32) {
        (400, 100 + 77 * u32::try_from(i).expect("a short list"))
    }

    /// A keypad digit.
    pub fn key(d: char) -> (u32, u32) {
        let (x, y) = match d {
            '0' => (642, 359),
            d => {
                let n = d.to_digit(10).expect("a digit") - 1;
                (
                    [540, 642, 743][(n % 3) as usize],
                    [166, 230, 295][(n / 3) as usize],
                )
            }
        };
        (x, y)
    }
}

/// The touchscreen's log, followed line by line.
pub struct Follow {
    path: std::path::PathBuf,
    /// Lines already seen.
    pub seen: usize,
}

impl Follow {
    /// Follows the log at `path` from its start.
    pub fn new(path: std::path::PathBuf) -> Follow {
        Follow { path, seen: 0 }
    }

    /// Waits for a line after those seen with every needle; returns it.
    pub fn until(&mut self, needles: &[&str], secs: u64) -> String {
        self.find(needles, secs).unwrap_or_else(|| {
            panic!(
                "the touchscreen never logged {needles:?}:\n{}",
                std::fs::read_to_string(&self.path).unwrap_or_default()
            )
        })
    }

    /// The lines logged after the first `mark` ones, up to those seen.
    pub fn since(&self, mark: usize) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .skip(mark)
            .take(self.seen.saturating_sub(mark))
            .map(str::to_owned)
            .collect()
    }

    /// The last line logged with `needle`, seen or not.
    pub fn latest(&self, needle: &str) -> String {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .rev()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_owned()
    }

    /// Whether a line after those seen has every needle, within `secs`.
    pub fn within(&mut self, needles: &[&str], secs: u64) -> bool {
        self.find(needles, secs).is_some()
    }

    /// The next line after those seen with every needle, within `secs`.
    pub fn find(&mut self, needles: &[&str], secs: u64) -> Option<String> {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = std::fs::read_to_string(&self.path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            if let Some(i) = lines[self.seen.min(lines.len())..]
                .iter()
                .position(|l| needles.iter().all(|n| l.contains(n)))
            {
                self.seen += i + 1;
                return Some(lines[self.seen - 1].to_owned());
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
