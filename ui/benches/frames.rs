//! Frame times: one whole frame of each screen (the sample data of the
//! screenshots), drawn by the software renderer the board uses, at
//! 800x480 and 1280x800. A frame is drawn whole each time (no partial
//! repaint), so this is the worst case of a screen change.
//!
//! ```sh
//! cargo bench -p pumpgw-terminal --bench frames
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use pumpgw_terminal::{MainWindow, desk, shots};
use slint::ComponentHandle as _;

fn frames(c: &mut Criterion) {
    let window = shots::headless().expect("the software renderer is this process's platform");
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut group = c.benchmark_group("frame");
    for (w, h) in shots::SIZES {
        for (name, set_up) in shots::screens() {
            let ui = MainWindow::new().expect("the screens build");
            desk::with(|d| *d = desk::Desk::default());
            desk::attach(&ui, tx.clone());
            window.set_size(slint::PhysicalSize::new(w, h));
            ui.show().expect("the window shows");
            set_up(&ui);
            group.bench_function(format!("{name} {w}x{h}"), |b| {
                b.iter(|| shots::render(&window, w, h));
            });
            ui.hide().expect("the window hides");
        }
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
