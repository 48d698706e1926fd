//! `pumpgw-terminal --screenshots DIR`: every screen, with the sample data,
//! rendered headless by Slint's software renderer (the one the board uses)
//! to PNG, at 800x480 and 1280x800. No display is needed.

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use slint::ComponentHandle as _;
use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, WindowAdapter};

use crate::{Bedside, Gateway, MainWindow, desk, sample};

/// The panel sizes the terminal is made for.
pub const SIZES: [(u32, u32); 2] = [(800, 480), (1280, 800)];

struct Headless {
    window: Rc<MinimalSoftwareWindow>,
    start: Instant,
}

impl Platform for Headless {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        Ok(self.window.clone())
    }

    fn duration_since_start(&self) -> Duration {
        self.start.elapsed()
    }
}

/// One screen: its file name and how to get there.
struct Shot {
    name: &'static str,
    set_up: fn(&MainWindow),
}

fn apply(ui: &MainWindow, m: pumpgw::terminal::protocol::ToTerminal) {
    desk::with(|d| desk::apply(ui, d, m));
}

/// A confirmation arrives and the person opens it from the list.
fn opened(ui: &MainWindow, m: pumpgw::terminal::protocol::ToTerminal) {
    let first = match &m {
        pumpgw::terminal::protocol::ToTerminal::Confirmations { open, .. } => {
            open.first().map(|c| c.id)
        }
        _ => None,
    };
    apply(ui, m);
    if let Some(id) = first {
        ui.global::<Gateway>()
            .invoke_pick(i32::try_from(id).unwrap_or(i32::MAX));
    }
}

fn connected(ui: &MainWindow) {
    desk::with(|d| desk::connection(ui, d, true, ""));
    apply(ui, sample::welcome());
    apply(ui, sample::status());
}

const SHOTS: &[Shot] = &[
    Shot {
        name: "no-connection",
        set_up: |ui| {
            desk::with(|d| {
                desk::connection(
                    ui,
                    d,
                    false,
                    "/run/pumpgw/terminal.sock: Connection refused (os error 111)",
                );
            });
        },
    },
    Shot {
        name: "home",
        set_up: connected,
    },
    Shot {
        name: "home-waiting",
        set_up: |ui| {
            connected(ui);
            apply(ui, sample::concentration());
        },
    },
    Shot {
        name: "waiting-list",
        set_up: |ui| {
            connected(ui);
            apply(ui, sample::concentration());
            ui.global::<Gateway>().invoke_open_list();
        },
    },
    Shot {
        name: "concentration",
        set_up: |ui| {
            connected(ui);
            opened(ui, sample::concentration());
            for k in ["2", "5", "0", "0"] {
                desk::with(|d| desk::key(ui, d, k));
            }
            ui.global::<Bedside>().set_unit("micrograms".into());
            ui.global::<Bedside>().set_field("volume".into());
            for k in ["5", "0", "signer:n.okafor", "4", "8", "2"] {
                desk::with(|d| desk::key(ui, d, k));
            }
        },
    },
    Shot {
        name: "bolus",
        set_up: |ui| {
            connected(ui);
            opened(ui, sample::bolus());
            desk::with(|d| desk::key(ui, d, "signer:d.patel"));
        },
    },
    Shot {
        name: "soft-limit",
        set_up: |ui| {
            connected(ui);
            opened(ui, sample::soft_limit());
            ui.global::<Bedside>()
                .set_reason("Titrating to a documented clinical target".into());
        },
    },
    Shot {
        name: "concentration-mismatch",
        set_up: |ui| {
            connected(ui);
            opened(ui, sample::concentration());
            apply(ui, sample::mismatch());
        },
    },
    Shot {
        name: "nurse-refused",
        set_up: |ui| {
            connected(ui);
            opened(ui, sample::bolus());
            apply(ui, sample::not_allowed());
        },
    },
    Shot {
        name: "bolus-confirmed",
        set_up: |ui| {
            connected(ui);
            opened(ui, sample::bolus());
            apply(ui, sample::authorised());
        },
    },
    Shot {
        name: "practice-home",
        set_up: |ui| {
            desk::with(|d| desk::connection(ui, d, true, ""));
            apply(ui, sample::practice_welcome());
            apply(ui, sample::status());
            apply(ui, sample::practice(1));
        },
    },
    Shot {
        name: "practice-summary",
        set_up: |ui| {
            desk::with(|d| desk::connection(ui, d, true, ""));
            apply(ui, sample::practice_welcome());
            apply(ui, sample::status());
            apply(ui, sample::practice(4));
            ui.global::<Gateway>().invoke_open_summary();
        },
    },
];

/// Renders every screen at every size into `dir` as
/// `<name>-<width>x<height>.png`; returns the files written.
pub fn render_all(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let window = headless()?;
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut written = Vec::new();
    for (w, h) in SIZES {
        for shot in SHOTS {
            let ui = MainWindow::new().context("the screens build")?;
            desk::with(|d| *d = desk::Desk::default());
            desk::attach(&ui, tx.clone());
            window.set_size(slint::PhysicalSize::new(w, h));
            ui.show().context("the window shows")?;
            (shot.set_up)(&ui);
            let path = dir.join(format!("{}-{w}x{h}.png", shot.name));
            let pixels = render(&window, w, h);
            write_png(&path, w, h, &pixels)?;
            ui.hide().context("the window hides")?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Makes the software renderer this process's platform (once per
/// process), drawing every frame whole; returns its window.
pub fn headless() -> anyhow::Result<Rc<MinimalSoftwareWindow>> {
    let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
    slint::platform::set_platform(Box::new(Headless {
        window: window.clone(),
        start: Instant::now(),
    }))
    .map_err(|e| anyhow::anyhow!("cannot use the software renderer: {e}"))?;
    Ok(window)
}

/// Every screen the screenshots show: its name and how to get there with
/// the sample data.
pub fn screens() -> impl Iterator<Item = (&'static str, fn(&MainWindow))> {
    SHOTS.iter().map(|s| (s.name, s.set_up))
}

/// One frame, as RGB bytes.
pub fn render(window: &MinimalSoftwareWindow, w: u32, h: u32) -> Vec<u8> {
    let mut buffer = vec![slint::Rgb8Pixel::default(); (w * h) as usize];
    slint::platform::update_timers_and_animations();
    window.request_redraw();
    window.draw_if_needed(|renderer| {
        renderer.render(&mut buffer, w as usize);
    });
    buffer.iter().flat_map(|p| [p.r, p.g, p.b]).collect()
}

fn write_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .write_image_data(rgb)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
