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

impl Display {
    /// A click of the left button at (`x`, `y`), as a finger's tap.
    pub fn tap(&self, x: u32, y: u32) {
        let status = Command::new("xdotool")
            .args(["mousemove", &x.to_string(), &y.to_string(), "click", "1"])
            .env("DISPLAY", &self.name)
            .status()
            .expect("xdotool runs (tests/run installs it)");
        assert!(status.success(), "xdotool tap at {x},{y}");
    }

    /// A finger put down at `from`, drawn to `to` in small steps, and
    /// lifted: a drag, as a flick of a list.
    pub fn drag(&self, from: (u32, u32), to: (u32, u32)) {
        let mut args = vec![
            "mousemove".to_owned(),
            from.0.to_string(),
            from.1.to_string(),
            "mousedown".to_owned(),
            "1".to_owned(),
        ];
        for step in 1..=10 {
            let at = |a: u32, b: u32| {
                let (a, b) = (i64::from(a), i64::from(b));
                (a + (b - a) * step / 10).to_string()
            };
            args.extend([
                "sleep".to_owned(),
                "0.03".to_owned(),
                "mousemove".to_owned(),
                at(from.0, to.0),
                at(from.1, to.1),
            ]);
        }
        args.extend(["mouseup".to_owned(), "1".to_owned()]);
        let status = Command::new("xdotool")
            .args(&args)
            .env("DISPLAY", &self.name)
            .status()
            .expect("xdotool runs (tests/run installs it)");
        assert!(status.success(), "xdotool drag from {from:?} to {to:?}");
    }

    /// The whole screen as it is now, read with `xwd`.
    pub fn screenshot(&self) -> Screenshot {
        let out = Command::new("xwd")
            .args(["-root", "-silent"])
            .env("DISPLAY", &self.name)
            .output()
            .expect("xwd runs (tests/run installs x11-apps)");
        assert!(out.status.success(), "xwd");
        Screenshot::from_xwd(&out.stdout)
    }
}

/// A screenshot: width, height and RGB pixels.
pub struct Screenshot {
    /// Pixels across.
    pub width: usize,
    /// Pixels down.
    pub height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Screenshot {
    /// Reads an X window dump (XWD, the format `xwd` writes: a header of
    /// big-endian 32-bit fields, a colour map, then the rows).
    fn from_xwd(data: &[u8]) -> Screenshot {
        let field = |i: usize| {
            u32::from_be_bytes(data[i * 4..i * 4 + 4].try_into().expect("four bytes")) as usize
        };
        let (header, width, height) = (field(0), field(4), field(5));
        let (byte_order, bpp, line) = (field(7), field(11), field(12));
        let masks = [field(14), field(15), field(16)];
        let colours = field(19);
        assert_eq!(bpp, 32, "a 24-bit display dumps 32 bits a pixel");
        let start = header + colours * 12;
        let mut rgb = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let at = start + y * line + x * 4;
                let b: [u8; 4] = data[at..at + 4].try_into().expect("four bytes");
                let v = if byte_order == 0 {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                } as usize;
                let c = |m: usize| u8::try_from((v & m) >> m.trailing_zeros()).unwrap_or(u8::MAX);
                rgb.push([c(masks[0]), c(masks[1]), c(masks[2])]);
            }
        }
        Screenshot { width, height, rgb }
    }

    /// The share of pixels in the region (x, y, width, height) that differ
    /// from `other`'s.
    pub fn changed(&self, other: &Screenshot, (x0, y0, w, h): (usize, usize, usize, usize)) -> f64 {
        let mut differ = 0usize;
        for y in y0..(y0 + h).min(self.height) {
            for x in x0..(x0 + w).min(self.width) {
                let i = y * self.width + x;
                if self.rgb[i] != other.rgb.get(i).copied().unwrap_or_default() {
                    differ += 1;
                }
            }
        }
        #[allow(clippy::cast_precision_loss, reason = "pixel counts")]
        let share = differ as f64 / (w * h) as f64;
        share
    }

    /// The share of pixels in the region (x, y, width, height) within 8 of
    /// `colour` in each channel.
    pub fn share(&self, (x0, y0, w, h): (usize, usize, usize, usize), colour: [u8; 3]) -> f64 {
        let mut hits = 0usize;
        for y in y0..(y0 + h).min(self.height) {
            for x in x0..(x0 + w).min(self.width) {
                let p = self.rgb[y * self.width + x];
                if p.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 8) {
                    hits += 1;
                }
            }
        }
        #[allow(clippy::cast_precision_loss, reason = "pixel counts")]
        let share = hits as f64 / (w * h) as f64;
        share
    }
}
