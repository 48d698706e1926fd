//! A pump controller written for the tests from `docs/protocol.md`, apart
//! from pump-sim: its own pseudo-terminal, its own COBS (the paper's
//! `StuffData` and `UnStuffData`, dropping the decoder's phantom zero as a
//! controller written from the paper does), its own acknowledgements,
//! stop-and-wait in version 1 and a window of frames in flight in version 2
//! (`speaking`). Only the message structs and the CRC'd frame layout come
//! from the `pumpgw` crate. Tests use it to check what the gateway sends a
//! controller and when: the timing of answers, what arrives at a stop.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pumpgw::link::message::{Hello, LibraryInstalled, ProgrammeRequest};
use pumpgw::link::{Frame, Header, Message, sha256};

/// COBS as in Cheshire and Baker's paper (`StuffData`).
pub fn paper_stuff(data: &[u8]) -> Vec<u8> {
    let mut dst = vec![0u8];
    let mut code_at = 0;
    let mut code = 1u8;
    for &b in data {
        if b == 0 {
            dst[code_at] = code;
            code_at = dst.len();
            dst.push(0);
            code = 1;
        } else {
            dst.push(b);
            code += 1;
            if code == 0xFF {
                dst[code_at] = code;
                code_at = dst.len();
                dst.push(0);
                code = 1;
            }
        }
    }
    dst[code_at] = code;
    dst
}

/// The paper's `UnStuffData`, then the phantom zero it writes after the
/// last block dropped; `None` for a code byte pointing past the end.
pub fn paper_unstuff(stuffed: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < stuffed.len() {
        let code = usize::from(stuffed[at]);
        at += 1;
        if code == 0 || at + code - 1 > stuffed.len() {
            return None;
        }
        out.extend_from_slice(&stuffed[at..at + code - 1]);
        at += code - 1;
        if code < 0xFF {
            out.push(0);
        }
    }
    out.pop();
    Some(out)
}

/// A message from the gateway and when it arrived.
#[derive(Debug, Clone)]
pub struct Heard {
    /// The message.
    pub message: Message,
    /// When the frame was read.
    pub at: Instant,
}

/// A controller on its own pseudo-terminal, linked at a bench port path.
pub struct Controller {
    writer: Arc<Mutex<std::fs::File>>,
    _slave: OwnedFd,
    heard: Receiver<Heard>,
    acks: Receiver<u16>,
    seq: u16,
    /// Versions offered in HELLO.
    versions: Vec<u8>,
    /// The version in headers: 1 until WELCOME chose another (shared with
    /// the reader, which writes the ACKs).
    version: Arc<AtomicU8>,
    /// Frames in flight at most: WELCOME's `window` in version 2, else 1.
    window: u16,
    /// Messages heard and not yet taken by [`Controller::expect`].
    pub backlog: Vec<Heard>,
    /// Frames that did not decode (bad stuffing or CRC).
    pub bad_frames: Arc<Mutex<u64>>,
}

impl Controller {
    /// A new pseudo-terminal with a symlink to it at `link` (where the
    /// gateway's `[[port]]` points), read by a thread that acknowledges
    /// every intact sequenced frame at once.
    pub fn plug(link: &Path) -> Controller {
        let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal opens");
        let mut t = nix::sys::termios::tcgetattr(&pty.slave).expect("termios reads");
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &t)
            .expect("termios sets");
        let device = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .expect("the slave's device path");
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&device, link).expect("the bench is writable");
        let master = std::fs::File::from(pty.master);
        let reader = master.try_clone().expect("the master fd clones");
        let writer = Arc::new(Mutex::new(master));
        let (heard_tx, heard) = channel();
        let (ack_tx, acks) = channel();
        let bad_frames = Arc::new(Mutex::new(0));
        let w = writer.clone();
        let bad = bad_frames.clone();
        let version = Arc::new(AtomicU8::new(1));
        let v = version.clone();
        std::thread::spawn(move || read_loop(reader, &w, &heard_tx, &ack_tx, &bad, &v));
        Controller {
            writer,
            _slave: pty.slave,
            heard,
            acks,
            seq: 0,
            versions: vec![1],
            version,
            window: 1,
            backlog: Vec::new(),
            bad_frames,
        }
    }

    /// Sends a message and waits for its acknowledgement (sending it again
    /// up to four times, 500 ms apart); returns its sequence number.
    pub fn send(&mut self, message: &Message) -> u16 {
        let (seq, raw) = self.frame_for(message);
        for _ in 0..5 {
            write_frame(&self.writer, &raw);
            let until = Instant::now() + Duration::from_millis(500);
            loop {
                match self
                    .acks
                    .recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    Ok(a) if a == seq => return seq,
                    Ok(_) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => panic!("the controller's reader ended"),
                }
            }
        }
        panic!("the gateway did not acknowledge {:?}", message.kind());
    }

    /// Writes a message once, without waiting for an acknowledgement (for
    /// a peer that acknowledges nothing); returns its sequence number.
    pub fn send_unacknowledged(&mut self, message: &Message) -> u16 {
        let (seq, raw) = self.frame_for(message);
        write_frame(&self.writer, &raw);
        seq
    }

    /// Offers these protocol versions in HELLO (default: 1 only).
    #[must_use]
    pub fn speaking(mut self, versions: &[u8]) -> Controller {
        self.versions = versions.to_vec();
        self
    }

    /// The version WELCOME chose and the window in use.
    pub fn session(&self) -> (u8, u16) {
        (self.version.load(Ordering::Relaxed), self.window)
    }

    /// Numbers and frames a message in the session's version without
    /// writing it (a test writes it, or "loses" it, with [`Controller::write`]).
    pub fn frame_for(&mut self, message: &Message) -> (u16, Vec<u8>) {
        self.seq = if self.seq == u16::MAX {
            1
        } else {
            self.seq + 1
        };
        let raw = Frame {
            header: Header {
                version: self.version.load(Ordering::Relaxed),
                kind: message.kind() as u8,
                seq: self.seq,
                ack: 0,
            },
            payload: message.payload(),
        }
        .to_raw()
        .expect("the message fits a frame");
        (self.seq, raw)
    }

    /// Writes a frame made by [`Controller::frame_for`].
    pub fn write(&self, raw: &[u8]) {
        write_frame(&self.writer, raw);
    }

    /// The numbers the gateway acknowledged within `wait`, in arrival order.
    pub fn acks_within(&self, wait: Duration) -> Vec<u16> {
        let until = Instant::now() + wait;
        let mut got = Vec::new();
        while let Ok(a) = self
            .acks
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            got.push(a);
        }
        got
    }

    /// Sends messages keeping up to the window's worth unacknowledged (one
    /// at a time in version 1), resending any not acknowledged within
    /// 500 ms, with those after it, in order (section 5.5); returns when
    /// every one is acknowledged.
    pub fn send_all(&mut self, messages: impl IntoIterator<Item = Message>) {
        let mut messages = messages.into_iter();
        // (seq, frame, resend at, sends)
        let mut in_flight: VecDeque<(u16, Vec<u8>, Instant, u8)> = VecDeque::new();
        loop {
            while in_flight.len() < usize::from(self.window) {
                let Some(message) = messages.next() else {
                    break;
                };
                let (seq, raw) = self.frame_for(&message);
                write_frame(&self.writer, &raw);
                in_flight.push_back((seq, raw, Instant::now() + Duration::from_millis(500), 1));
            }
            let Some(&(_, _, due, _)) = in_flight.front() else {
                return;
            };
            match self
                .acks
                .recv_timeout(due.saturating_duration_since(Instant::now()))
            {
                Ok(a) => in_flight.retain(|f| f.0 != a),
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    for f in in_flight.iter_mut().filter(|f| f.2 <= now) {
                        assert!(f.3 < 5, "the gateway did not acknowledge frame {}", f.0);
                        write_frame(&self.writer, &f.1);
                        f.2 = now + Duration::from_millis(500);
                        f.3 += 1;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => panic!("the controller's reader ended"),
            }
        }
    }

    /// Waits up to `secs` for a message `wanted` accepts (earlier ones are
    /// kept in the backlog), and takes it.
    pub fn expect(&mut self, wanted: impl Fn(&Message) -> bool, secs: u64) -> Heard {
        if let Some(i) = self.backlog.iter().position(|h| wanted(&h.message)) {
            return self.backlog.remove(i);
        }
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            match self
                .heard
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(h) if wanted(&h.message) => return h,
                Ok(h) => self.backlog.push(h),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "nothing wanted from the gateway within {secs} s; heard {:#?}",
                    self.backlog
                        .iter()
                        .map(|h| h.message.kind())
                        .collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Everything heard within `secs` that `wanted` accepts.
    pub fn collect(&mut self, wanted: impl Fn(&Message) -> bool, secs: u64) -> Vec<Heard> {
        let until = Instant::now() + Duration::from_secs(secs);
        while let Ok(h) = self
            .heard
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            self.backlog.push(h);
        }
        let (taken, kept) = std::mem::take(&mut self.backlog)
            .into_iter()
            .partition(|h| wanted(&h.message));
        self.backlog = kept;
        taken
    }

    /// HELLO as `serial`, WELCOME back; a library offered is reported
    /// installed at once (this controller takes the gateway's word for the
    /// file: it is not a pump, and the tests here are not about transfer).
    pub fn hello(&mut self, serial: &str) {
        self.hello_with(serial, None);
        let offer = self.expect(|m| matches!(m, Message::LibraryOffer(_)), 5);
        let Message::LibraryOffer(offer) = offer.message else {
            unreachable!("matched above")
        };
        self.send(&Message::LibraryInstalled(LibraryInstalled {
            version: offer.version,
            hash: offer.hash,
        }));
    }

    /// HELLO as `serial` saying it runs `library` (version, hash), and
    /// WELCOME back; a library offer is left unanswered.
    pub fn hello_with(&mut self, serial: &str, library: Option<(u64, [u8; 32])>) {
        self.version.store(1, Ordering::Relaxed);
        self.window = 1;
        self.send(&Message::Hello(Hello {
            versions: self.versions.clone(),
            manufacturer: "Test".to_owned(),
            model: "controller-from-the-spec".to_owned(),
            serial: serial.to_owned(),
            firmware: "1".to_owned(),
            care_area: Some("adult-icu".to_owned()),
            library_version: library.map(|l| l.0),
            library_hash: library.map(|l| l.1),
        }));
        let welcome = self.expect(|m| matches!(m, Message::Welcome(_)), 5);
        let Message::Welcome(w) = welcome.message else {
            unreachable!("matched above")
        };
        assert!(
            self.versions.contains(&w.version),
            "WELCOME chose version {}, not offered",
            w.version
        );
        self.version.store(w.version, Ordering::Relaxed);
        self.window = if w.version >= 2 {
            w.window.expect("a version 2 WELCOME gives the window")
        } else {
            1
        };
    }

    /// Sends a programme request; returns the hash the answer must carry.
    pub fn request(&mut self, request: u32, programme: &serde_json::Value) -> [u8; 32] {
        let message = Message::ProgrammeRequest(ProgrammeRequest {
            request,
            programme: ciborium::Value::serialized(programme).expect("JSON maps to CBOR"),
        });
        self.send(&message);
        sha256(&message.payload())
    }
}

/// A continuous fentanyl infusion from a newly loaded syringe (`load`): the
/// nurse must confirm its concentration at the terminal.
pub fn fentanyl_infusion(load: u64, rate: &str, flow: &str) -> serde_json::Value {
    serde_json::json!({
        "drug": "fentanyl",
        "care_area": "adult-icu",
        "library_version": 12,
        "requested_at": "2026-12-03T03:00:00Z",
        "patient_weight": "70 kg",
        "container": {
            "concentration": "2500 micrograms in 50 mL",
            "volume_loaded": "50 mL",
            "volume_remaining": "50 mL",
            "load": load
        },
        "delivery": {"kind": "continuous", "rate": rate, "vtbi": "50 mL", "pump_flow_rate": flow}
    })
}

fn write_frame(writer: &Mutex<std::fs::File>, raw: &[u8]) {
    let mut wire = paper_stuff(raw);
    wire.push(0);
    let mut w = writer.lock().expect("the writer lock is not poisoned");
    // The gateway may have closed the port for a moment: a lost frame is
    // what the link's resends are for.
    let _ = w.write_all(&wire);
}

fn read_loop(
    mut master: std::fs::File,
    writer: &Mutex<std::fs::File>,
    heard: &Sender<Heard>,
    acks: &Sender<u16>,
    bad: &Mutex<u64>,
    version: &AtomicU8,
) {
    let mut run = Vec::new();
    let mut buf = [0u8; 4096];
    // Numbers taken lately: a resend (its ACK lost) is not heard twice.
    let mut recent: VecDeque<u16> = VecDeque::new();
    loop {
        let n = match master.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            // EIO while no process has the slave open (the gateway between
            // two opens of its port): wait.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        for &b in &buf[..n] {
            if b != 0 {
                run.push(b);
                continue;
            }
            let stuffed = std::mem::take(&mut run);
            if stuffed.is_empty() {
                continue;
            }
            let Some(frame) = paper_unstuff(&stuffed).and_then(|raw| Frame::from_raw(&raw).ok())
            else {
                *bad.lock().expect("not poisoned") += 1;
                continue;
            };
            let at = Instant::now();
            if frame.header.kind == 0x01 {
                if acks.send(frame.header.ack).is_err() {
                    return;
                }
                continue;
            }
            let ack = Frame {
                header: Header {
                    version: version.load(Ordering::Relaxed),
                    kind: 0x01,
                    seq: 0,
                    ack: frame.header.seq,
                },
                payload: Message::Ack.payload(),
            };
            write_frame(writer, &ack.to_raw().expect("an ACK fits"));
            // WELCOME is always taken (a gateway restarts its numbering).
            if frame.header.kind == 0x03 {
                recent.clear();
            } else if recent.contains(&frame.header.seq) {
                continue;
            }
            recent.push_back(frame.header.seq);
            if recent.len() > 64 {
                recent.pop_front();
            }
            let Ok(message) = Message::decode(frame.header.kind, &frame.payload) else {
                *bad.lock().expect("not poisoned") += 1;
                continue;
            };
            if heard.send(Heard { message, at }).is_err() {
                return;
            }
        }
    }
}
