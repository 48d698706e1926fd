//! A real X display for the tests of what a person sees: Xvfb on a display
//! number it picks itself (`-displayfd`), no TCP, killed when dropped.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};

/// A running Xvfb.
pub struct Display {
    child: Child,
    /// `:N`, for `DISPLAY`.
    pub name: String,
}

impl Display {
    /// Starts Xvfb with one screen of `width` x `height`.
    pub fn start(width: u32, height: u32) -> Display {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (tests/run installs the xvfb package)");
        // Xvfb writes the display number once it is ready for clients.
        let mut out = child.stdout.take().expect("stdout is piped");
        let mut number = String::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).expect("Xvfb's stdout reads") == 1 && byte[0] != b'\n' {
            number.push(char::from(byte[0]));
        }
        assert!(!number.is_empty(), "Xvfb said no display number");
        Display {
            child,
            name: format!(":{}", number.trim()),
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
