//! Practice mode on the terminal (`pumpgwd demo --practice`): the line that
//! says the gateway is a practice one and which case is on, and the
//! summary screen with each case's judgement, as the daemon words them.

use pumpgw::sim::practice::outcome;
use pumpgw::terminal::protocol::{PracticeBoard, PracticeCase};
use slint::{ComponentHandle as _, ModelRc, VecModel};

use crate::{Gateway, MainWindow, PracticeLine};

/// What the home screen's practice line says when no case is on yet.
const NO_PATIENT: &str = "PRACTICE · no patient";

/// The gateway said whether it is a practice one (`welcome`).
pub fn welcome(ui: &MainWindow, practice: bool) {
    let g = ui.global::<Gateway>();
    g.set_practice(if practice {
        NO_PATIENT.into()
    } else {
        "".into()
    });
    g.set_practice_over(false);
    g.set_practice_summary(ModelRc::default());
}

/// Where the practice stands (`practice`).
pub fn board(ui: &MainWindow, board: &PracticeBoard) {
    let g = ui.global::<Gateway>();
    let over = board.cases > 0 && board.summary.len() >= board.cases as usize;
    let line = if over {
        "PRACTICE over: tap here to see what was caught".to_owned()
    } else if board.case > 0 {
        format!(
            "{NO_PATIENT} · case {} of {}: {}",
            board.case, board.cases, board.title
        )
    } else {
        NO_PATIENT.to_owned()
    };
    g.set_practice(line.into());
    g.set_practice_over(over);
    let lines: Vec<PracticeLine> = board.summary.iter().map(summary_line).collect();
    g.set_practice_summary(ModelRc::new(VecModel::from(lines)));
}

/// One case as the summary screen shows it.
pub fn summary_line(c: &PracticeCase) -> PracticeLine {
    PracticeLine {
        title: format!("{}. {}", c.case, c.title).into(),
        outcome: outcome::shown(&c.outcome).into(),
        good: outcome::good(&c.outcome),
        what: c.what.clone().into(),
        by: c.by.clone().into(),
        without: c.without.clone().into(),
    }
}
