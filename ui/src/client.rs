//! The connection to the daemon, on its own threads: one reads the socket
//! and hands each message to the UI thread (`upgrade_in_event_loop`), one
//! writes what the UI sends. A lost connection shows the full-screen
//! "no connection" state and is tried again every second.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use pumpgw::terminal::protocol::{FromTerminal, ToTerminal, VERSION};
use slint::Weak;
use tracing::{info, warn};

use crate::MainWindow;
use crate::desk;

/// How long to wait before connecting again.
const RETRY: Duration = Duration::from_secs(1);

/// Connects to `socket` as `name` for as long as the process runs; lines
/// from the UI come in on `lines`.
pub fn spawn(socket: PathBuf, name: String, ui: Weak<MainWindow>, lines: Receiver<FromTerminal>) {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(lines));
    std::thread::Builder::new()
        .name("daemon-link".to_owned())
        .spawn(move || {
            loop {
                let problem = match session(&socket, &name, &ui, &lines) {
                    Ok(()) => "the gateway closed the connection".to_owned(),
                    Err(e) => e,
                };
                warn!(socket = %socket.display(), problem = %problem, "no connection to the gateway");
                let shown = format!("{}: {problem}", socket.display());
                let _ = ui.upgrade_in_event_loop(move |ui| {
                    desk::with(|d| desk::connection(&ui, d, false, &shown));
                });
                std::thread::sleep(RETRY);
            }
        })
        .expect("a thread can be started");
}

fn session(
    socket: &std::path::Path,
    name: &str,
    ui: &Weak<MainWindow>,
    lines: &std::sync::Arc<std::sync::Mutex<Receiver<FromTerminal>>>,
) -> Result<(), String> {
    let stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let hello = FromTerminal::Hello {
        protocol: VERSION,
        terminal: name.to_owned(),
    };
    write_line(&mut writer, &hello)?;
    let reader_stream = stream.try_clone().map_err(|e| e.to_string())?;
    // The writer: UI lines until this connection ends.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_done = done.clone();
    let lines = lines.clone();
    let writer_thread = std::thread::spawn(move || {
        let Ok(rx) = lines.lock() else { return };
        // Lines typed while there was no connection (PINs among them) are
        // dropped: nothing confirmed on a "no connection" screen is sent.
        while rx.try_recv().is_ok() {}
        while !writer_done.load(std::sync::atomic::Ordering::Relaxed) {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if write_line(&mut writer, &line).is_err() {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    });
    let mut reader = BufReader::new(reader_stream);
    let mut welcomed = false;
    let result = loop {
        let mut text = String::new();
        match reader.read_line(&mut text) {
            Ok(0) => break Ok(()),
            Err(e) => break Err(e.to_string()),
            Ok(_) => {}
        }
        let message: ToTerminal = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "a line from the gateway this terminal cannot read");
                continue;
            }
        };
        if let ToTerminal::Error {
            fatal: true,
            message,
            ..
        } = &message
        {
            break Err(message.clone());
        }
        if !welcomed && matches!(message, ToTerminal::Welcome { .. }) {
            welcomed = true;
            info!(socket = %socket.display(), "connected to the gateway");
            let _ = ui.upgrade_in_event_loop(|ui| {
                desk::with(|d| desk::connection(&ui, d, true, ""));
            });
        }
        let _ = ui.upgrade_in_event_loop(move |ui| {
            desk::with(|d| desk::apply(&ui, d, message));
        });
    };
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = writer_thread.join();
    result
}

fn write_line(w: &mut UnixStream, line: &FromTerminal) -> Result<(), String> {
    let mut text = serde_json::to_string(line).map_err(|e| e.to_string())?;
    text.push('\n');
    w.write_all(text.as_bytes()).map_err(|e| e.to_string())
}
