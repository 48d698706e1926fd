//! What the terminal shows and what people type, on the UI thread: the
//! daemon's messages put into the `api.slint` globals, and the keypad,
//! signer and confirm actions turned into protocol lines. The PINs stay
//! here; the screen only ever gets dots.
//!
//! A screen a person is using stays until they leave it: a new
//! confirmation never opens by itself, it is announced on the home screen
//! and waits in the list; one closed elsewhere while on screen here is
//! said once, in words, and the person goes home from there.

use std::cell::RefCell;
use std::sync::mpsc::Sender;

use pumpgw::terminal::protocol::{
    ConfirmationCard, FromTerminal, NeedCard, PumpCard as Card, Signer as SignerLine, ToTerminal,
};
use slint::{ComponentHandle as _, Model as _, ModelRc, SharedString, VecModel};

use crate::{
    AlarmLine, Bedside, Fact, Gateway, MainWindow, PumpCard, PumpRow, Screen, Signer, WaitingLine,
};

/// The longest PIN and amount accepted from the keypad.
const MAX_DIGITS: usize = 12;

/// The terminal's own state.
#[derive(Default)]
pub struct Desk {
    /// Open confirmations, oldest first, as the daemon last sent them.
    open: Vec<ConfirmationCard>,
    /// The one on screen.
    shown: Option<ConfirmationCard>,
    /// After a stage: the id of the next one, opened when it arrives.
    next: Option<u64>,
    /// Confirmation ids already announced, so that only a new one sounds.
    seen: std::collections::HashSet<u64>,
    /// Run (not waited for) when a new confirmation is announced: the
    /// board's buzzer.
    sound: Option<String>,
    pin: String,
    pin_2: String,
    /// Lines for the daemon.
    out: Option<Sender<FromTerminal>>,
    /// The pump cards as last shown, those that need attention first.
    cards: Vec<PumpCard>,
    /// The waiting list's rows, changed in place (the time left every
    /// second) so that a finger on a row is not lost to a rebuilt list.
    waiting: std::rc::Rc<VecModel<WaitingLine>>,
    /// Whether the home list's end was in view when it last moved.
    home_end: Option<bool>,
    /// The confirmation the daemon was last told is on screen here.
    viewing: Option<u64>,
}

thread_local! {
    /// The terminal's state, on the UI thread only.
    static DESK: RefCell<Desk> = RefCell::new(Desk::default());
}

/// Runs `f` on the terminal's state (UI thread only).
pub fn with<R>(f: impl FnOnce(&mut Desk) -> R) -> R {
    DESK.with(|d| f(&mut d.borrow_mut()))
}

/// Wires the screens' callbacks; lines for the daemon go to `out`.
pub fn attach(ui: &MainWindow, out: Sender<FromTerminal>) {
    with(|d| {
        d.out = Some(out);
        ui.global::<Gateway>()
            .set_waiting_list(ModelRc::from(d.waiting.clone()));
    });
    let weak = ui.as_weak();
    ui.global::<Gateway>().on_open_list(move || {
        if let Some(ui) = weak.upgrade() {
            with(|d| {
                waiting_list(d);
                show(&ui.global::<Bedside>(), Screen::Waiting);
                tell_viewing(&ui, d);
            });
        }
    });
    let weak = ui.as_weak();
    ui.global::<Gateway>().on_pick(move |id| {
        if let Some(ui) = weak.upgrade() {
            with(|d| {
                let id = u64::try_from(id).unwrap_or(u64::MAX);
                if let Some(card) = d.open.iter().find(|c| c.id == id).cloned() {
                    open_card(&ui, d, card);
                }
                tell_viewing(&ui, d);
            });
        }
    });
    let weak = ui.as_weak();
    ui.global::<Gateway>().on_columns_changed(move || {
        if let Some(ui) = weak.upgrade() {
            with(|d| rows(&ui, d));
        }
    });
    ui.global::<Gateway>().on_home_moved(|end| {
        with(|d| {
            // Said when it changes: whether the last pump came into view.
            if d.home_end != Some(end) {
                d.home_end = Some(end);
                tracing::info!(end_in_view = end, "home list moved");
            }
        });
    });
    let weak = ui.as_weak();
    ui.global::<Gateway>().on_home(move || {
        if let Some(ui) = weak.upgrade() {
            show(&ui.global::<Bedside>(), Screen::Home);
            with(|d| tell_viewing(&ui, d));
        }
    });
    let weak = ui.as_weak();
    ui.global::<Gateway>().on_open_summary(move || {
        if let Some(ui) = weak.upgrade() {
            show(&ui.global::<Bedside>(), Screen::Summary);
        }
    });
    let weak = ui.as_weak();
    ui.global::<Bedside>().on_key(move |k| {
        if let Some(ui) = weak.upgrade() {
            with(|d| key(&ui, d, &k));
        }
    });
    let weak = ui.as_weak();
    ui.global::<Bedside>().on_confirm(move || {
        if let Some(ui) = weak.upgrade() {
            with(|d| confirm(&ui, d));
        }
    });
    let weak = ui.as_weak();
    ui.global::<Bedside>().on_decline(move || {
        if let Some(ui) = weak.upgrade() {
            with(|d| {
                decline(&ui, d);
                tell_viewing(&ui, d);
            });
        }
    });
    let weak = ui.as_weak();
    ui.global::<Bedside>().on_dismiss(move || {
        if let Some(ui) = weak.upgrade() {
            with(|d| {
                dismiss(&ui, d);
                tell_viewing(&ui, d);
            });
        }
    });
}

/// Puts `screen` up, and says so in the log: what a person saw, and when
/// (also what the tests of the real window follow).
fn show(b: &Bedside<'_>, screen: Screen) {
    if b.get_screen() != screen {
        tracing::info!(screen = ?screen, "screen");
    }
    b.set_screen(screen);
}

/// The connection to the daemon came up or went down.
pub fn connection(ui: &MainWindow, desk: &mut Desk, up: bool, problem: &str) {
    let g = ui.global::<Gateway>();
    g.set_connected(up);
    g.set_connection_problem(problem.into());
    if !up {
        // Nothing confirmed over a lost connection can be trusted to land.
        desk.viewing = None;
        desk.open.clear();
        desk.shown = None;
        desk.next = None;
        clear_entry(ui, desk);
        show(&ui.global::<Bedside>(), Screen::Home);
        g.set_waiting(0);
    }
}

/// One message from the daemon.
pub fn apply(ui: &MainWindow, desk: &mut Desk, message: ToTerminal) {
    take(ui, desk, message);
    tell_viewing(ui, desk);
}

/// Tells the daemon which confirmation is on screen here, when that
/// changed (`viewing`): the other terminals' lists then say it is open
/// here, so that two people do not answer it at once.
fn tell_viewing(ui: &MainWindow, desk: &mut Desk) {
    let now = match ui.global::<Bedside>().get_screen() {
        Screen::Concentration | Screen::Confirm | Screen::Result => {
            desk.shown.as_ref().map(|c| c.id)
        }
        _ => None,
    };
    if now != desk.viewing {
        desk.viewing = now;
        if let Some(out) = &desk.out {
            // A closed connection is shown by the reader; nothing to add.
            let _ = out.send(FromTerminal::Viewing { id: now });
        }
    }
}

fn take(ui: &MainWindow, desk: &mut Desk, message: ToTerminal) {
    match message {
        ToTerminal::Welcome {
            gateway,
            care_area,
            practice,
            ..
        } => {
            let g = ui.global::<Gateway>();
            g.set_gateway(gateway.into());
            g.set_care_area(care_area.into());
            crate::practice::welcome(ui, practice);
        }
        ToTerminal::Practice(board) => crate::practice::board(ui, &board),
        ToTerminal::Status { library, pumps, .. } => status(ui, desk, library, &pumps),
        ToTerminal::Confirmations { open, .. } => confirmations(ui, desk, open),
        ToTerminal::Closed {
            id,
            outcome,
            message,
            ..
        } => closed_elsewhere(ui, desk, id, &outcome, message),
        ToTerminal::Result {
            result,
            closed,
            message,
            next,
            entered,
            programmed,
            ..
        } => {
            let b = ui.global::<Bedside>();
            b.set_busy(false);
            let ok = result == "authorised" || result == "next_stage";
            desk.next = next;
            b.set_result_ok(ok);
            b.set_result_title(
                match (result.as_str(), closed) {
                    ("authorised", _) => "Confirmed: the pump may start",
                    ("next_stage", _) => "Concentration confirmed",
                    ("declined", _) => "Declined: the pump will not start",
                    (_, true) if entered.is_some() => {
                        "DO NOT START: the label is not what was programmed"
                    }
                    (_, true) => "Not confirmed: the pump will not start",
                    _ => "Not accepted",
                }
                .into(),
            );
            tracing::info!(result = %result, title = %b.get_result_title(), "result");
            b.set_result_message(message.into());
            b.set_entered(entered.unwrap_or_default().into());
            b.set_programmed(programmed.unwrap_or_default().into());
            if closed {
                desk.shown = None;
            }
            desk.pin.clear();
            desk.pin_2.clear();
            b.set_pin(SharedString::new());
            b.set_pin_2(SharedString::new());
            show(&b, Screen::Result);
        }
        ToTerminal::Error { message, .. } => {
            ui.global::<Gateway>()
                .set_connection_problem(message.into());
        }
        ToTerminal::Pong => {}
    }
}

fn status(ui: &MainWindow, desk: &mut Desk, library: Option<String>, pumps: &[Card]) {
    let g = ui.global::<Gateway>();
    g.set_library(
        library
            .map_or_else(
                || "NO LIBRARY: nothing is authorised".to_owned(),
                |l| format!("library {l}"),
            )
            .into(),
    );
    let rank = |p: &str| match p {
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    };
    let mut banner: Option<(&str, String)> = None;
    let cards: Vec<PumpCard> = pumps
        .iter()
        .map(|c| {
            for a in &c.alarms {
                if banner
                    .as_ref()
                    .is_none_or(|(p, _)| rank(&a.priority) > rank(p))
                {
                    banner = Some((a.priority.as_str(), format!("{}: {}", c.pump, a.text)));
                }
            }
            card(c)
        })
        .collect();
    let (priority, text) =
        banner.map_or((String::new(), String::new()), |(p, t)| (p.to_owned(), t));
    g.set_banner_priority(priority.into());
    g.set_banner_text(text.into());
    g.set_pumps(ModelRc::new(VecModel::from(cards.clone())));
    let mut cards = cards;
    // Those that need attention first (a stable sort: port order within).
    cards.sort_by_key(|c| std::cmp::Reverse(attention(c)));
    desk.cards = cards;
    rows(ui, desk);
}

/// How much a card needs attention: a high alarm, then a medium one, a
/// stopped programme, a lost link or another library, a low alarm.
fn attention(c: &PumpCard) -> u8 {
    match c.top_priority.as_str() {
        "high" => 6,
        "medium" => 5,
        _ if !c.stop_title.is_empty() => 4,
        _ if !c.online => 3,
        _ if !c.library_ok => 2,
        "low" => 1,
        _ => 0,
    }
}

/// The home screen's rows, `columns` cards each; a short last row is
/// padded with blank cards (no pump), which the screen keeps invisible.
fn rows(ui: &MainWindow, desk: &Desk) {
    let g = ui.global::<Gateway>();
    let columns = usize::try_from(g.get_columns()).unwrap_or(2).max(1);
    let rows: Vec<PumpRow> = desk
        .cards
        .chunks(columns)
        .map(|row| {
            let mut cards = row.to_vec();
            cards.resize_with(columns, PumpCard::default);
            PumpRow {
                cards: ModelRc::new(VecModel::from(cards)),
            }
        })
        .collect();
    g.set_pump_rows(ModelRc::new(VecModel::from(rows)));
}

/// A pump card for the screen (every value already in words).
pub fn card(c: &Card) -> PumpCard {
    let online = c.link == "online";
    let library = match c.library_matches {
        Some(true) => "runs the gateway's library".to_owned(),
        Some(false) => "LIBRARY MISMATCH: nothing is authorised".to_owned(),
        None => "library not known yet".to_owned(),
    };
    PumpCard {
        pump: c.pump.clone().into(),
        online,
        link: if online {
            "online".into()
        } else {
            format!(
                "LINK LOST{}",
                c.offline_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
            .into()
        },
        state: c.state.clone().unwrap_or_default().replace('_', " ").into(),
        drug: c.drug.clone().unwrap_or_default().into(),
        rate: c.rate.clone().unwrap_or_default().into(),
        volume: c.volume_remaining.clone().unwrap_or_default().into(),
        library_ok: c.library_matches == Some(true),
        library: library.into(),
        alarms: ModelRc::new(VecModel::from(
            c.alarms
                .iter()
                .map(|a| AlarmLine {
                    priority: a.priority.clone().into(),
                    text: a.text.clone().into(),
                })
                .collect::<Vec<_>>(),
        )),
        top_priority: c
            .alarms
            .first()
            .map(|a| a.priority.clone())
            .unwrap_or_default()
            .into(),
        stop_title: stop_title(c.last_decision.as_deref()).into(),
        stop_reason: c
            .last_reason
            .as_deref()
            .map(|r| r.split_once(": ").map_or(r, |(_, words)| words))
            .unwrap_or_default()
            .into(),
    }
}

/// What a stopped programme means for the people at the bed.
fn stop_title(decision: Option<&str>) -> &'static str {
    match decision {
        Some("denied (hard_limit)") => "HARD LIMIT: not started. No override: programme it again.",
        Some("denied (block)") => "BLOCKED: not started. Do not give; check the programme.",
        Some("denied (soft_limit)") => {
            "SOFT LIMIT: not started. It needs an override at this terminal."
        }
        Some(d) if d.starts_with("denied") => "NOT STARTED: the gateway could not authorise it.",
        _ => "",
    }
}

/// The shell command run, without waiting, when a new confirmation is
/// announced (the board's buzzer), if any.
pub fn set_sound(desk: &mut Desk, command: Option<String>) {
    desk.sound = command;
}

fn confirmations(ui: &MainWindow, desk: &mut Desk, open: Vec<ConfirmationCard>) {
    ui.global::<Gateway>()
        .set_waiting(i32::try_from(open.len()).unwrap_or(i32::MAX));
    let fresh = open.iter().any(|c| !desk.seen.contains(&c.id));
    desk.seen.extend(open.iter().map(|c| c.id));
    let pumps: Vec<&str> = open.iter().map(|c| c.pump.as_str()).collect();
    tracing::info!(pumps = %pumps.join(","), "waiting list");
    desk.open = open;
    waiting_list(desk);
    if fresh && let Some(command) = &desk.sound {
        // The board's buzzer: announced, never waited for.
        match std::process::Command::new("sh")
            .args(["-c", command])
            .stdin(std::process::Stdio::null())
            .spawn()
        {
            // Reaped on a thread of its own, so that none is left a zombie.
            Ok(mut child) => {
                std::thread::spawn(move || child.wait());
            }
            Err(e) => tracing::warn!(error = %e, "the sound command cannot run"),
        }
    }
    let b = ui.global::<Bedside>();
    if let Some(next) = desk.next
        && let Some(card) = desk.open.iter().find(|c| c.id == next).cloned()
    {
        desk.next = None;
        // The person's own next stage opens once they have read the result.
        desk.shown = Some(card);
        return;
    }
    if let Some(shown) = &desk.shown
        && !desk.open.iter().any(|c| c.id == shown.id)
        && matches!(b.get_screen(), Screen::Concentration | Screen::Confirm)
    {
        // Gone without a word from the gateway (an older gateway): say
        // so in general terms.
        let pump = shown.pump.clone();
        closed_screen(
            ui,
            desk,
            false,
            "This confirmation is closed",
            format!(
                "Pump {pump}: it was answered at another terminal, withdrawn, or it lapsed. The pump shows what happened."
            ),
        );
    }
}

/// The list of waiting confirmations, oldest first, with the time left
/// on each (refreshed every second by the caller's timer).
pub fn waiting_list(desk: &Desk) {
    let now = time::OffsetDateTime::now_utc();
    let lines: Vec<WaitingLine> = desk
        .open
        .iter()
        .map(|c| {
            let left = time::OffsetDateTime::parse(
                &c.expires,
                &time::format_description::well_known::Rfc3339,
            )
            .map_or_else(
                |_| String::new(),
                |at| {
                    format!(
                        "{} left",
                        pumpgw::format::countdown((at - now).whole_seconds())
                    )
                },
            );
            WaitingLine {
                id: i32::try_from(c.id).unwrap_or(i32::MAX),
                pump: c.pump.clone().into(),
                drug: c.screen["drug"].as_str().unwrap_or_default().into(),
                asked: asked(&c.needs).into(),
                left: left.into(),
                elsewhere: if c.open_at.is_empty() {
                    SharedString::new()
                } else {
                    format!("open at {}", c.open_at.join(", ")).into()
                },
            }
        })
        .collect();
    let same_rows = desk.waiting.row_count() == lines.len()
        && lines
            .iter()
            .enumerate()
            .all(|(i, l)| desk.waiting.row_data(i).is_some_and(|r| r.id == l.id));
    if same_rows {
        for (i, line) in lines.into_iter().enumerate() {
            if desk.waiting.row_data(i).as_ref() != Some(&line) {
                desk.waiting.set_row_data(i, line);
            }
        }
    } else {
        desk.waiting.set_vec(lines);
    }
}

/// What a confirmation asks for, in words.
fn asked(needs: &[NeedCard]) -> String {
    let words: Vec<&str> = needs
        .iter()
        .map(|n| match n {
            NeedCard::Concentration { .. } => "concentration of a new container",
            NeedCard::Bolus { .. } => "bolus",
            NeedCard::Override { .. } => "soft-limit override",
        })
        .collect();
    words.join(" and ")
}

/// The gateway says a confirmation closed elsewhere: if it is the one on
/// screen here, the person is told once what happened, in words.
fn closed_elsewhere(ui: &MainWindow, desk: &mut Desk, id: u64, outcome: &str, message: String) {
    let b = ui.global::<Bedside>();
    let on_screen = desk.shown.as_ref().is_some_and(|c| c.id == id)
        && matches!(b.get_screen(), Screen::Concentration | Screen::Confirm);
    if !on_screen {
        return;
    }
    let ok = matches!(outcome, "authorised" | "next_stage");
    let title = match outcome {
        "authorised" => "Confirmed at another terminal",
        "next_stage" => "This step was confirmed at another terminal",
        "declined" => "Declined at another terminal",
        "expired" => "Nobody confirmed in time",
        "withdrawn" => "Withdrawn",
        _ => "This confirmation is closed",
    };
    closed_screen(ui, desk, ok, title, message);
}

/// A result screen for a confirmation that closed without this
/// terminal's answer; OK goes home.
fn closed_screen(ui: &MainWindow, desk: &mut Desk, ok: bool, title: &str, message: String) {
    let b = ui.global::<Bedside>();
    desk.shown = None;
    desk.next = None;
    clear_entry(ui, desk);
    b.set_result_ok(ok);
    b.set_result_title(title.into());
    b.set_result_message(message.into());
    b.set_entered(SharedString::new());
    b.set_programmed(SharedString::new());
    show(&b, Screen::Result);
}

/// Puts a confirmation on screen, with empty fields.
pub fn open_card(ui: &MainWindow, desk: &mut Desk, card: ConfirmationCard) {
    let b = ui.global::<Bedside>();
    let s = &card.screen;
    let text = |key: &str| s[key].as_str().unwrap_or_default().to_owned();
    let pairs = |key: &str| -> Vec<Fact> {
        s[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| Fact {
                        label: f[0].as_str().unwrap_or_default().into(),
                        value: f[1].as_str().unwrap_or_default().into(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    b.set_title(text("title").into());
    b.set_pump(text("pump").into());
    b.set_drug(text("drug").into());
    b.set_high_alert(s["high_alert"].as_bool().unwrap_or(false));
    b.set_instruction(text("instruction").into());
    b.set_facts(ModelRc::new(VecModel::from(pairs("facts"))));
    b.set_limits(ModelRc::new(VecModel::from(pairs("limits"))));
    let soft: Vec<SharedString> = s["soft_limits"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l["message"].as_str().unwrap_or_default().into())
                .collect()
        })
        .unwrap_or_default();
    b.set_soft_limits(ModelRc::new(VecModel::from(soft)));
    let order: Vec<SharedString> = s["order"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str())
                .map(Into::into)
                .collect()
        })
        .unwrap_or_default();
    b.set_order(ModelRc::new(VecModel::from(order)));
    let who: Vec<&str> = s["who"]
        .as_array()
        .map(|a| a.iter().filter_map(|w| w.as_str()).collect())
        .unwrap_or_default();
    b.set_who(who.join(" ").into());
    let mut people = 1;
    let mut reasons = Vec::new();
    let mut concentration = false;
    for need in &card.needs {
        match need {
            NeedCard::Concentration { .. } => concentration = true,
            NeedCard::Bolus { people: p, .. } => people = i32::from(*p),
            NeedCard::Override { reasons: r, .. } => {
                reasons = r.iter().map(|r| SharedString::from(r.as_str())).collect();
            }
        }
    }
    b.set_people(people);
    b.set_reasons(ModelRc::new(VecModel::from(reasons)));
    b.set_staff(ModelRc::new(VecModel::from(
        card.staff
            .iter()
            .map(|p| Signer {
                id: p.id.clone().into(),
                name: p.name.clone().into(),
                role: p.role.clone().into(),
            })
            .collect::<Vec<_>>(),
    )));
    b.set_expires(card.expires.clone().into());
    desk.shown = Some(card);
    clear_entry(ui, desk);
    b.set_field(if concentration { "amount" } else { "pin" }.into());
    show(
        &b,
        if concentration {
            Screen::Concentration
        } else {
            Screen::Confirm
        },
    );
}

fn clear_entry(ui: &MainWindow, desk: &mut Desk) {
    let b = ui.global::<Bedside>();
    desk.pin.clear();
    desk.pin_2.clear();
    for set in [
        Bedside::set_amount,
        Bedside::set_volume,
        Bedside::set_staff_id,
        Bedside::set_staff_id_2,
        Bedside::set_pin,
        Bedside::set_pin_2,
        Bedside::set_reason,
        // No unit until the person taps the label's: one chosen for the
        // last container must not stand for this one.
        Bedside::set_unit,
    ] {
        set(&b, SharedString::new());
    }
    b.set_busy(false);
}

/// A keypad key, or `signer:ID` for a name tapped.
pub fn key(ui: &MainWindow, desk: &mut Desk, k: &str) {
    let b = ui.global::<Bedside>();
    if let Some(id) = k.strip_prefix("signer:") {
        let first = b.get_staff_id();
        if first == id {
            b.set_staff_id(SharedString::new());
        } else if b.get_staff_id_2() == id {
            b.set_staff_id_2(SharedString::new());
        } else if first.is_empty() || b.get_people() < 2 {
            b.set_staff_id(id.into());
            b.set_field("pin".into());
        } else {
            b.set_staff_id_2(id.into());
            b.set_field("pin-2".into());
        }
        return;
    }
    let field = b.get_field();
    let edit = |s: &mut String, digits_only: bool| {
        if k == "delete" {
            s.pop();
        } else if s.len() < MAX_DIGITS && (k != "." || (!digits_only && !s.contains('.'))) {
            s.push_str(k);
        }
    };
    match field.as_str() {
        "amount" | "volume" => {
            let mut s = if field == "amount" {
                b.get_amount().to_string()
            } else {
                b.get_volume().to_string()
            };
            edit(&mut s, false);
            if field == "amount" {
                b.set_amount(s.into());
            } else {
                b.set_volume(s.into());
            }
        }
        "pin" => {
            edit(&mut desk.pin, true);
            b.set_pin(dots(&desk.pin).into());
        }
        "pin-2" => {
            edit(&mut desk.pin_2, true);
            b.set_pin_2(dots(&desk.pin_2).into());
        }
        _ => {}
    }
}

fn dots(pin: &str) -> String {
    "●".repeat(pin.len())
}

/// The `confirm` line for what is on screen, if it is complete enough to
/// send (the daemon checks everything again).
pub fn confirm(ui: &MainWindow, desk: &mut Desk) {
    let b = ui.global::<Bedside>();
    let Some(card) = desk.shown.clone() else {
        return;
    };
    let mut signers = vec![SignerLine {
        staff_id: b.get_staff_id().to_string(),
        pin: desk.pin.clone(),
    }];
    if b.get_people() >= 2 {
        signers.push(SignerLine {
            staff_id: b.get_staff_id_2().to_string(),
            pin: desk.pin_2.clone(),
        });
    }
    let label = card
        .needs
        .iter()
        .any(|n| matches!(n, NeedCard::Concentration { .. }));
    if label && b.get_unit().is_empty() {
        b.set_result_ok(false);
        b.set_result_title("Choose the unit on the label".into());
        b.set_result_message(
            "Tap the unit the label gives (micrograms, mg, units...), then Confirm again.".into(),
        );
        b.set_entered(SharedString::new());
        b.set_programmed(SharedString::new());
        show(&b, Screen::Result);
        return;
    }
    let concentration = label.then(|| {
        format!(
            "{} {} in {} mL",
            b.get_amount(),
            b.get_unit(),
            b.get_volume()
        )
    });
    let reason = Some(b.get_reason().to_string()).filter(|r| !r.is_empty());
    let line = FromTerminal::Confirm {
        id: card.id,
        screen_hash: card.screen_hash.clone(),
        signers,
        concentration,
        reason,
    };
    send(ui, desk, line);
}

/// The `decline` line for what is on screen.
pub fn decline(ui: &MainWindow, desk: &mut Desk) {
    let Some(card) = desk.shown.clone() else {
        return;
    };
    send(
        ui,
        desk,
        FromTerminal::Decline {
            id: card.id,
            reason: Some("declined at the bedside".to_owned()),
        },
    );
}

fn send(ui: &MainWindow, desk: &Desk, line: FromTerminal) {
    let b = ui.global::<Bedside>();
    match &desk.out {
        Some(out) if out.send(line).is_ok() => b.set_busy(true),
        _ => ui
            .global::<Gateway>()
            .set_connection_problem("the connection to the gateway is closed".into()),
    }
}

/// OK on a result: the next stage, the same confirmation again, or home.
pub fn dismiss(ui: &MainWindow, desk: &mut Desk) {
    let b = ui.global::<Bedside>();
    match desk.shown.clone() {
        Some(card) if desk.open.iter().any(|c| c.id == card.id) => {
            // A wrong PIN or a missing field: try again; what was typed of
            // the label stays, the PINs do not.
            let screen = if card
                .needs
                .iter()
                .any(|n| matches!(n, NeedCard::Concentration { .. }))
            {
                Screen::Concentration
            } else {
                Screen::Confirm
            };
            if desk.next.is_none() && b.get_result_ok() {
                open_card(ui, desk, card);
            } else {
                show(&b, screen);
            }
        }
        _ => {
            desk.shown = None;
            show(&b, Screen::Home);
        }
    }
}
