//! What happens to the process's own log lines when they cannot be
//! written: nothing. A full disk under a log file, or a closed stderr, must
//! not take a task down (the formatting layer reports a failed write with
//! `eprintln!`, which panics when stderr is what failed). [`Lossy`] drops
//! the line, counts it, and says how many were dropped with the next line
//! that can be written.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Lines dropped since the last one written, by every [`Lossy`] writer.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// A writer whose writes never fail: what cannot be written is dropped
/// and counted.
#[derive(Debug)]
pub struct Lossy<W>(pub W);

/// Stderr, lossy: for `tracing_subscriber::fmt().with_writer(...)`.
pub fn stderr() -> Lossy<std::io::Stderr> {
    Lossy(std::io::stderr())
}

/// How many log lines were dropped and not yet reported.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

impl<W: Write> Write for Lossy<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let lost = DROPPED.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let note = format!("({lost} log line(s) could not be written and were dropped)\n");
            if self.0.write_all(note.as_bytes()).is_err() {
                DROPPED.fetch_add(lost + 1, Ordering::Relaxed);
                return Ok(buf.len());
            }
        }
        if self.0.write_all(buf).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_write_is_dropped_counted_and_reported_with_the_next_line() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full exists on Linux");
        let before = dropped();
        let mut w = Lossy(full);
        assert_eq!(w.write(b"one line\n").expect("never fails"), 9);
        assert!(dropped() > before);
        let mut out = Lossy(Vec::new());
        out.write_all(b"next\n").expect("never fails");
        let text = String::from_utf8(out.0).expect("UTF-8");
        assert!(
            text.contains("could not be written and were dropped"),
            "{text}"
        );
        assert!(text.ends_with("next\n"), "{text}");
    }
}
