//! The terminal service: the daemon's Unix socket that bedside terminals
//! connect to. One task accepts; one task per terminal (at most
//! `max_terminals`) checks the peer's credentials (`SO_PEERCRED`), expects
//! `hello`, then streams the pump cards and the open confirmations: each
//! terminal task waits on the core's snapshot watch and sends only the
//! latest state, so a slow terminal skips intermediate states instead of
//! growing a queue.
//!
//! A `confirm` is checked here first (every PIN, on a blocking thread:
//! PBKDF2 is slow on purpose), then passed to the core, which owns the
//! confirmations and consumes each once.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::codec::{Framed, LinesCodec};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::command::{Command, Outcome};
use super::confirm::Refused;
use super::protocol::{
    self, ConfirmationCard, FromTerminal, MAX_LINE, Signer, ToTerminal, VERSION,
};
use crate::gateway::Snapshot;
use crate::staff::{Attempt, Lockout, PinOutcome, Roster, roster::Member};
use crate::store::{Context, Store};

/// How long a terminal has to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Fastest status rate to one terminal.
const STATUS_EVERY: Duration = Duration::from_millis(200);

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The socket cannot be made.
    #[error("terminal socket {path}: {detail}")]
    Socket {
        /// The socket's path.
        path: String,
        /// Why.
        detail: String,
    },
}

/// Who may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The daemon's own uid (always allowed, as is root).
    pub own_uid: u32,
    /// The socket's group: members by primary group are allowed.
    pub group: Option<u32>,
}

impl Access {
    /// Whether a peer with these credentials may talk to the daemon.
    pub fn allows(&self, uid: u32, gid: u32) -> bool {
        uid == 0 || uid == self.own_uid || self.group == Some(gid)
    }
}

/// What the service needs to take confirmations.
#[derive(Clone)]
pub struct Desk {
    /// Commands to the core.
    pub commands: mpsc::Sender<Command>,
    /// How many terminals are connected (the core denies what needs a
    /// person when none is).
    pub connected: std::sync::Arc<watch::Sender<usize>>,
    /// A connection to the store for PIN attempts and their events.
    pub store: std::sync::Arc<std::sync::Mutex<Store>>,
    /// The staff file (read at every confirmation, so `pumpgwd staff`
    /// changes apply at once).
    pub staff_file: PathBuf,
    /// The lockout after wrong PINs.
    pub lockout: Lockout,
    /// A practice gateway: terminals are told (`welcome`).
    pub practice: bool,
    /// Practice mode's board (`pumpgwd demo --practice`), sent to every
    /// terminal as it changes.
    pub board: Option<watch::Receiver<protocol::PracticeBoard>>,
    /// Which confirmation each connected terminal has on screen
    /// (`viewing`): connection number → (terminal name, confirmation).
    pub viewing: std::sync::Arc<watch::Sender<Viewing>>,
}

/// Which confirmation each connected terminal has on screen.
pub type Viewing = std::collections::BTreeMap<u64, (String, u64)>;

/// `open` with, on each card, the other terminals that have it on screen
/// (not the terminal `me`).
fn marked(open: &[ConfirmationCard], viewing: &Viewing, me: u64) -> Vec<ConfirmationCard> {
    open.iter()
        .map(|card| {
            let mut card = card.clone();
            card.open_at = viewing
                .iter()
                .filter(|(conn, (_, id))| **conn != me && *id == card.id)
                .map(|(_, (name, _))| name.clone())
                .collect();
            card.open_at.sort();
            card.open_at.dedup();
            card
        })
        .collect()
}

/// The service, ready to accept.
pub struct Service {
    listener: UnixListener,
    path: PathBuf,
    access: Access,
    max_terminals: usize,
    gateway: String,
    care_area: String,
}

impl Service {
    /// Binds the socket at `path` (replacing a stale socket, never another
    /// kind of file), mode 0660, group `group` if given.
    pub fn bind(
        path: &Path,
        group: Option<&str>,
        max_terminals: usize,
        gateway: &str,
        care_area: &str,
    ) -> Result<Service, ServiceError> {
        let fail = |detail: String| ServiceError::Socket {
            path: path.display().to_string(),
            detail,
        };
        let gid = match group {
            None => None,
            Some(name) => Some(
                nix::unistd::Group::from_name(name)
                    .map_err(|e| fail(format!("group {name}: {e}")))?
                    .ok_or_else(|| fail(format!("no group named {name}")))?
                    .gid
                    .as_raw(),
            ),
        };
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                std::fs::remove_file(path).map_err(|e| fail(format!("stale socket: {e}")))?;
            }
            Ok(_) => {
                return Err(fail(
                    "exists and is not a socket; it was left alone".to_owned(),
                ));
            }
            Err(_) => {}
        }
        // Under systemd, RuntimeDirectory= made the folder; by hand, or in
        // a provisioned root, nobody has.
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        }
        let listener = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| fail(e.to_string()))?;
        if let Some(g) = gid {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(g)))
                .map_err(|e| fail(format!("cannot give it to its group: {e}")))?;
        }
        Ok(Service {
            listener,
            path: path.to_path_buf(),
            access: Access {
                own_uid: nix::unistd::getuid().as_raw(),
                group: gid,
            },
            max_terminals: max_terminals.max(1),
            gateway: gateway.to_owned(),
            care_area: care_area.to_owned(),
        })
    }

    /// Serves until `cancel`; closes every terminal and removes the socket.
    pub async fn run(self, view: watch::Receiver<Snapshot>, desk: Desk, cancel: CancellationToken) {
        info!(socket = %self.path.display(), "terminal service listening");
        let mut terminals = JoinSet::new();
        let mut connections = 0u64;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(_) = terminals.join_next(), if !terminals.is_empty() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        // Terminals that have just gone do not count.
                        while terminals.try_join_next().is_some() {}
                        let full = terminals.len() >= self.max_terminals;
                        connections += 1;
                        terminals.spawn(serve(stream, Ctx {
                            conn: connections,
                            access: self.access,
                            full,
                            gateway: self.gateway.clone(),
                            care_area: self.care_area.clone(),
                            view: view.clone(),
                            desk: desk.clone(),
                            cancel: cancel.clone(),
                        }));
                    }
                    Err(e) => {
                        warn!(error = %e, "terminal socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        while terminals.join_next().await.is_some() {}
        if let Err(e) = std::fs::remove_file(&self.path) {
            debug!(error = %e, "terminal socket already gone");
        }
        info!("terminal service stopped");
    }
}

struct Ctx {
    /// This connection's number (the key of its `viewing`).
    conn: u64,
    access: Access,
    full: bool,
    gateway: String,
    care_area: String,
    view: watch::Receiver<Snapshot>,
    desk: Desk,
    cancel: CancellationToken,
}

type Lines = Framed<UnixStream, LinesCodec>;

async fn send(lines: &mut Lines, message: &ToTerminal) -> bool {
    let text = serde_json::to_string(message).expect("messages always serialise");
    lines.send(text).await.is_ok()
}

async fn serve(stream: UnixStream, mut ctx: Ctx) {
    let cred = getsockopt(&stream, PeerCredentials);
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    let (uid, gid, pid) = match cred {
        Ok(c) => (c.uid(), c.gid(), c.pid()),
        Err(e) => {
            warn!(error = %e, "terminal refused: its credentials cannot be read");
            return;
        }
    };
    if !ctx.access.allows(uid, gid) {
        warn!(
            uid,
            gid, pid, "terminal refused: not the daemon's user, root or the socket's group"
        );
        send(
            &mut lines,
            &protocol::error(
                "NOT_ALLOWED",
                "this user may not use the gateway's terminal socket",
                true,
            ),
        )
        .await;
        return;
    }
    if ctx.full {
        warn!(uid, pid, "terminal refused: too many terminals");
        send(
            &mut lines,
            &protocol::error(
                "TOO_MANY_TERMINALS",
                "the gateway serves no more terminals",
                true,
            ),
        )
        .await;
        return;
    }
    let Some(name) = hello(&mut lines, &ctx).await else {
        return;
    };
    info!(terminal = %name, uid, pid, "terminal connected");
    serve_terminal(&mut lines, &mut ctx, &name).await;
    let conn = ctx.conn;
    ctx.desk
        .viewing
        .send_if_modified(|v| v.remove(&conn).is_some());
    ctx.desk.connected.send_modify(|n| *n = n.saturating_sub(1));
    info!(terminal = %name, "terminal disconnected");
}

/// Streams state and answers requests until either side ends.
async fn serve_terminal(lines: &mut Lines, ctx: &mut Ctx, name: &str) {
    let mut last = tokio::time::Instant::now() - STATUS_EVERY;
    let mut dirty = true;
    // The cards last sent: the snapshot also changes for things no card
    // shows (link counters), and those are not news to a terminal.
    let mut shown: Option<(Option<u64>, Vec<protocol::PumpCard>)> = None;
    let mut open_shown: Option<Vec<ConfirmationCard>> = None;
    let mut board = ctx.desk.board.clone();
    let mut viewing = ctx.desk.viewing.subscribe();
    if let Some(b) = &mut board {
        let now = ToTerminal::Practice(b.borrow_and_update().clone());
        if !send(lines, &now).await {
            return;
        }
    }
    loop {
        if dirty && last.elapsed() >= STATUS_EVERY {
            let snapshot = ctx.view.borrow_and_update().clone();
            let cards = (snapshot.library_version, protocol::cards(&snapshot));
            if shown.as_ref() != Some(&cards) {
                let status = protocol::status(&snapshot, time::OffsetDateTime::now_utc());
                if !send(lines, &status).await {
                    break;
                }
                shown = Some(cards);
            }
            if !confirmations(lines, ctx, name, &snapshot, &mut open_shown).await {
                break;
            }
            last = tokio::time::Instant::now();
            dirty = false;
        }
        let wait = STATUS_EVERY.saturating_sub(last.elapsed());
        tokio::select! {
            () = ctx.cancel.cancelled() => break,
            changed = ctx.view.changed() => {
                if changed.is_err() {
                    break; // the core has ended: the daemon is stopping
                }
                // Confirmations go at once (someone stands at the pump);
                // pump cards at most every STATUS_EVERY.
                let snapshot = ctx.view.borrow_and_update().clone();
                if !confirmations(lines, ctx, name, &snapshot, &mut open_shown).await {
                    break;
                }
                dirty = true;
            }
            () = tokio::time::sleep(wait), if dirty => {}
            Ok(()) = viewing.changed() => {
                // Another terminal opened or left a confirmation: the
                // list says where each is open.
                let snapshot = ctx.view.borrow().clone();
                if !confirmations(lines, ctx, name, &snapshot, &mut open_shown).await {
                    break;
                }
            }
            changed = board_changed(&mut board) => {
                if changed {
                    let now = board.as_mut().map(|b| ToTerminal::Practice(b.borrow_and_update().clone()));
                    if let Some(now) = now && !send(lines, &now).await {
                        break;
                    }
                } else {
                    board = None; // the practice has ended
                }
            }
            line = lines.next() => match line {
                None => break,
                Some(Err(e)) => {
                    send(lines, &protocol::error("BAD_LINE", e.to_string(), true)).await;
                    break;
                }
                Some(Ok(text)) => {
                    if !answer(lines, ctx, name, &text).await {
                        break;
                    }
                }
            },
        }
    }
}

/// Waits for practice mode's board to change: `false` once it has gone;
/// never without one.
async fn board_changed(board: &mut Option<watch::Receiver<protocol::PracticeBoard>>) -> bool {
    match board {
        Some(b) => b.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Sends the open confirmations if they changed, after a `closed` notice
/// for each one this terminal was shown that closed other than by its own
/// answer; `false` when the terminal is gone.
async fn confirmations(
    lines: &mut Lines,
    ctx: &Ctx,
    name: &str,
    snapshot: &Snapshot,
    shown: &mut Option<Vec<ConfirmationCard>>,
) -> bool {
    let now = marked(
        &snapshot.confirmations,
        &ctx.desk.viewing.borrow(),
        ctx.conn,
    );
    if shown.as_ref() == Some(&now) {
        return true;
    }
    // Names to pick from: the staff file as it is now.
    let roster = Roster::load(&ctx.desk.staff_file).unwrap_or_default();
    let gone = shown
        .iter()
        .flatten()
        .filter(|c| !snapshot.confirmations.iter().any(|o| o.id == c.id));
    for card in gone {
        let Some(notice) = snapshot.closed.iter().find(|n| n.id == card.id) else {
            continue;
        };
        if notice.terminal.as_deref() == Some(name) {
            // Its own answer: the terminal has the result.
            continue;
        }
        if !send(lines, &protocol::closed_notice(notice, &roster)).await {
            return false;
        }
    }
    let open = ToTerminal::Confirmations {
        at: crate::store::record::time_text(time::OffsetDateTime::now_utc()),
        open: protocol::with_staff(now.clone(), &roster),
    };
    *shown = Some(now);
    send(lines, &open).await
}

/// Waits for `hello` and answers `welcome`; `None` ends the connection.
async fn hello(lines: &mut Lines, ctx: &Ctx) -> Option<String> {
    let first = tokio::select! {
        () = ctx.cancel.cancelled() => return None,
        r = tokio::time::timeout(HELLO_TIMEOUT, lines.next()) => r,
    };
    let text = match first {
        Err(_) => {
            send(
                lines,
                &protocol::error("TIMEOUT", "no hello within 5 s", true),
            )
            .await;
            return None;
        }
        Ok(None) => return None,
        Ok(Some(Err(e))) => {
            send(lines, &protocol::error("BAD_LINE", e.to_string(), true)).await;
            return None;
        }
        Ok(Some(Ok(t))) => t,
    };
    match serde_json::from_str::<FromTerminal>(&text) {
        Ok(FromTerminal::Hello { protocol, terminal }) if protocol == VERSION => {
            let welcome = ToTerminal::Welcome {
                protocol: VERSION,
                gateway: ctx.gateway.clone(),
                care_area: ctx.care_area.clone(),
                practice: ctx.desk.practice,
            };
            // Counted before the welcome: once welcomed, a terminal is
            // there for any programme that arrives.
            ctx.desk.connected.send_modify(|n| *n += 1);
            if send(lines, &welcome).await {
                Some(terminal)
            } else {
                ctx.desk.connected.send_modify(|n| *n = n.saturating_sub(1));
                None
            }
        }
        Ok(FromTerminal::Hello { protocol, terminal }) => {
            warn!(terminal = %terminal, protocol, "terminal refused: protocol version");
            let msg = format!("this gateway speaks terminal protocol {VERSION}, not {protocol}");
            send(lines, &protocol::error("VERSION", msg, true)).await;
            None
        }
        Ok(_) | Err(_) => {
            let msg =
                "the first line must be {\"type\":\"hello\",\"protocol\":1,\"terminal\":NAME}";
            send(lines, &protocol::error("HELLO_FIRST", msg, true)).await;
            None
        }
    }
}

/// Answers one line after `hello`; `false` ends the connection.
async fn answer(lines: &mut Lines, ctx: &Ctx, name: &str, text: &str) -> bool {
    match serde_json::from_str::<FromTerminal>(text) {
        Ok(FromTerminal::Ping) => send(lines, &ToTerminal::Pong).await,
        Ok(FromTerminal::Confirm {
            id,
            screen_hash,
            signers,
            concentration,
            reason,
        }) => {
            let result = confirm(
                ctx,
                name,
                Confirm {
                    id,
                    screen_hash,
                    signers,
                    concentration,
                    reason,
                },
            )
            .await;
            send(lines, &result).await
        }
        Ok(FromTerminal::Viewing { id }) => {
            let conn = ctx.conn;
            ctx.desk.viewing.send_if_modified(|v| match id {
                Some(id) => v.insert(conn, (name.to_owned(), id)) != Some((name.to_owned(), id)),
                None => v.remove(&conn).is_some(),
            });
            true
        }
        Ok(FromTerminal::Decline { id, reason }) => {
            let (done, answer) = oneshot::channel();
            let command = Command::Decline {
                id,
                reason,
                terminal: name.to_owned(),
                done,
            };
            let result = match ask_core(ctx, command, answer).await {
                Some(outcome) => result_of(id, outcome, &[]),
                None => stopping(id),
            };
            send(lines, &result).await
        }
        Ok(FromTerminal::Hello { .. }) => {
            send(
                lines,
                &protocol::error("UNKNOWN_MESSAGE", "hello was already said", false),
            )
            .await
        }
        Err(e) => {
            // Only where and what kind: the line may hold a PIN.
            debug!(line = e.line(), column = e.column(), kind = ?e.classify(), "a line that is not a message");
            let msg = "not a message of terminal protocol 1 (after hello: ping, viewing, confirm, decline)";
            send(lines, &protocol::error("UNKNOWN_MESSAGE", msg, false)).await
        }
    }
}

/// A `confirm` as received.
struct Confirm {
    id: u64,
    screen_hash: String,
    signers: Vec<Signer>,
    concentration: Option<String>,
    reason: Option<String>,
}

/// Checks a `confirm` (the screen hash, the label typed, every PIN) and
/// passes it to the core; the `result` line to send back.
async fn confirm(ctx: &Ctx, name: &str, c: Confirm) -> ToTerminal {
    let id = c.id;
    let refuse = |message: String| refused(id, false, message);
    let card = ctx
        .view
        .borrow()
        .confirmations
        .iter()
        .find(|card| card.id == id)
        .cloned();
    let Some(card) = card else {
        // Not open: no PIN is checked, but the core logs the attempt
        // against the request it was for (a second use, or too late).
        let (done, answer) = oneshot::channel();
        let command = Command::Confirm {
            id,
            screen_hash: [0; 32],
            signers: Vec::new(),
            concentration: None,
            reason: None,
            terminal: name.to_owned(),
            done,
        };
        let outcome = ask_core(ctx, command, answer)
            .await
            .unwrap_or(Outcome::Refused(Refused::NotOpen));
        return result_of(id, outcome, &[]);
    };
    let mut screen_hash = [0u8; 32];
    if hex::decode_to_slice(&c.screen_hash, &mut screen_hash).is_err() {
        return refuse(
            "screen_hash must be the 64 hex digits of the confirmation's screen_hash".to_owned(),
        );
    }
    let concentration = match c
        .concentration
        .as_deref()
        .map(crate::units::parse_concentration)
    {
        None => None,
        Some(Ok(conc)) => Some(conc),
        Some(Err(e)) => {
            return refuse(format!(
                "the concentration typed cannot be read ({e}); type the amount, its unit and the volume, e.g. 2500 micrograms in 50 mL"
            ));
        }
    };
    if c.signers.is_empty() || c.signers.len() > 2 {
        return refuse("one or two people sign a confirmation".to_owned());
    }
    if c.signers.len() == 2 && c.signers[0].staff_id == c.signers[1].staff_id {
        return refuse("the two signatures must be by two different people".to_owned());
    }
    let purpose = purpose(&card);
    let mut members = Vec::new();
    for signer in c.signers {
        match check(ctx, &card, &purpose, signer).await {
            Ok(m) => members.push(m),
            Err(why) => return refuse(why),
        }
    }
    let (done, answer) = oneshot::channel();
    let command = Command::Confirm {
        id,
        screen_hash,
        signers: members.clone(),
        concentration,
        reason: c.reason,
        terminal: name.to_owned(),
        done,
    };
    match ask_core(ctx, command, answer).await {
        Some(outcome) => result_of(id, outcome, &members),
        None => stopping(id),
    }
}

/// What a PIN is entered for, as the log says it.
fn purpose(card: &ConfirmationCard) -> String {
    let words: Vec<&str> = card
        .needs
        .iter()
        .map(|n| match n {
            protocol::NeedCard::Concentration { .. } => "concentration confirmation",
            protocol::NeedCard::Bolus { .. } => "bolus confirmation",
            protocol::NeedCard::Override { .. } => "soft-limit override",
        })
        .collect();
    words.join(" and ")
}

/// Checks one signer's PIN (logged whatever its result); the member, or
/// why not in words.
async fn check(
    ctx: &Ctx,
    card: &ConfirmationCard,
    purpose: &str,
    signer: Signer,
) -> Result<Member, String> {
    let roster = Roster::load(&ctx.desk.staff_file)
        .map_err(|e| format!("the staff file cannot be used, so nobody can sign: {e}"))?;
    let store = ctx.desk.store.clone();
    let lockout = ctx.desk.lockout;
    let snapshot = ctx.view.borrow().clone();
    let context = Context {
        gateway: snapshot.gateway_id.clone(),
        pump: Some(card.pump.clone()),
        care_area: snapshot.care_area.clone(),
        library_version: snapshot.library_version,
    };
    let purpose = purpose.to_owned();
    let staff_id = signer.staff_id.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let mut store = store
            .lock()
            .map_err(|_| "the PIN store is unusable".to_owned())?;
        crate::staff::check_pin(
            &mut store,
            &context,
            &roster,
            Attempt {
                staff_id: &signer.staff_id,
                pin: &signer.pin,
                purpose: &purpose,
            },
            lockout,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| format!("the gateway cannot check PINs now: {e}"))
    })
    .await
    .map_err(|_| "the PIN check failed".to_owned())??;
    match checked {
        PinOutcome::Accepted(m) => Ok(m),
        PinOutcome::Wrong { left, .. } => Err(format!(
            "wrong PIN for {staff_id}: {left} more {} before a lockout",
            if left == 1 { "try" } else { "tries" }
        )),
        PinOutcome::LockedOut { until } => Err(format!(
            "{staff_id} is locked out after too many wrong PINs, until {} UTC; someone else must sign, or a biomedical engineer resets the PIN",
            crate::store::record::time_text(until)
                .get(11..16)
                .unwrap_or("later")
        )),
        PinOutcome::Unknown => Err(format!("no staff member has the id {staff_id}")),
    }
}

/// Sends a command to the core and waits for its answer; `None` when the
/// core has stopped.
async fn ask_core(
    ctx: &Ctx,
    command: Command,
    answer: oneshot::Receiver<Outcome>,
) -> Option<Outcome> {
    ctx.desk.commands.send(command).await.ok()?;
    answer.await.ok()
}

fn refused(id: u64, closed: bool, message: String) -> ToTerminal {
    ToTerminal::Result {
        id,
        result: "refused".to_owned(),
        closed,
        message,
        next: None,
        entered: None,
        programmed: None,
    }
}

fn stopping(id: u64) -> ToTerminal {
    refused(
        id,
        true,
        "the gateway is stopping; nothing was authorised".to_owned(),
    )
}

/// The `result` line for what the core answered.
fn result_of(id: u64, outcome: Outcome, signers: &[Member]) -> ToTerminal {
    let names: Vec<&str> = signers.iter().map(|m| m.name.as_str()).collect();
    let by = names.join(" and ");
    let done = |result: &str, message: String, next: Option<u64>| ToTerminal::Result {
        id,
        result: result.to_owned(),
        closed: true,
        message,
        next,
        entered: None,
        programmed: None,
    };
    match outcome {
        Outcome::Authorised => done(
            "authorised",
            format!("Confirmed by {by}. The pump may start this programme."),
            None,
        ),
        Outcome::NextStage(next) => done(
            "next_stage",
            format!("Concentration confirmed by {by}. Next: confirm what the pump will give."),
            Some(next),
        ),
        Outcome::Declined => done(
            "declined",
            "Declined. The pump was told not to start.".to_owned(),
            None,
        ),
        Outcome::Closed(why) => refused(id, true, format!("Not authorised: {why}")),
        Outcome::NotLogged => refused(
            id,
            true,
            "The gateway could not record this, so nothing was authorised.".to_owned(),
        ),
        Outcome::Refused(r) => {
            let closed = r.closes();
            let mut line = refused(id, closed, crate::format::capitalise(&r.to_string()));
            if let (
                Refused::ConcentrationMismatch {
                    entered: e,
                    programmed: p,
                },
                ToTerminal::Result {
                    entered,
                    programmed,
                    ..
                },
            ) = (&r, &mut line)
            {
                *entered = Some(e.clone());
                *programmed = Some(p.clone());
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_the_daemon_and_the_socket_group_may_connect() {
        let a = Access {
            own_uid: 990,
            group: Some(991),
        };
        assert!(a.allows(0, 0));
        assert!(a.allows(990, 5));
        assert!(a.allows(1000, 991));
        assert!(!a.allows(1000, 1000));
        let none = Access {
            own_uid: 990,
            group: None,
        };
        assert!(!none.allows(1000, 991));
    }
}
