//! Simulated staff at the bedside terminal, for `pump-sim --terminal` and
//! the demo: a real terminal-protocol client on the gateway's socket that
//! answers the confirmations of this simulated pump as staff would, going
//! by what the scenario says is true at the bedside.
//!
//! The nurse types the container's *label* (the scenario's `label`, which
//! may differ from what was programmed: that is how the wrong-concentration
//! incidents are played); a bolus is signed by the staff whose roles the
//! confirmation names; a soft limit is overridden only with the reason the
//! scenario step gives, and declined otherwise. It stays connected, as a
//! real terminal does, so the gateway knows a terminal is there.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{Framed, LinesCodec};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::terminal::protocol::{
    ConfirmationCard, FromTerminal, MAX_LINE, NeedCard, Signer, ToTerminal, VERSION,
};

/// One person: staff id and PIN (from the gateway's staff file).
#[derive(Clone, PartialEq, Eq)]
pub struct Staff {
    /// Staff id.
    pub id: String,
    /// PIN.
    pub pin: String,
}

impl std::fmt::Debug for Staff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Staff({})", self.id)
    }
}

impl std::str::FromStr for Staff {
    type Err = String;

    /// `ID:PIN`.
    fn from_str(s: &str) -> Result<Staff, String> {
        let (id, pin) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: write staff as ID:PIN"))?;
        if id.is_empty() || pin.is_empty() {
            return Err(format!("{s:?}: write staff as ID:PIN"));
        }
        Ok(Staff {
            id: id.to_owned(),
            pin: pin.to_owned(),
        })
    }
}

/// Who is at the bedside, and where the terminal socket is.
#[derive(Debug, Clone, Default)]
pub struct Bedside {
    /// The gateway's terminal socket.
    pub socket: PathBuf,
    /// Nurses (the first types container labels).
    pub nurses: Vec<Staff>,
    /// Doctors.
    pub doctors: Vec<Staff>,
}

/// A programme of this pump waiting for confirmation.
#[derive(Debug, Clone)]
pub struct Job {
    /// SHA-256 of the request as the pump sent it.
    pub programme_hash: [u8; 32],
    /// What the container's label really says.
    pub label: String,
    /// The override reason the scenario gives, if any.
    pub override_reason: Option<String>,
}

/// How often a lost terminal connection is tried again.
const RETRY: Duration = Duration::from_millis(200);

/// The simulated staff, running: one terminal connection, shared by every
/// simulated pump of the bed (clone it for each).
#[derive(Debug, Clone)]
pub struct Handle {
    /// Programmes to confirm.
    pub jobs: mpsc::Sender<Job>,
    /// Whether they are at the terminal (welcomed).
    pub up: watch::Receiver<bool>,
}

/// Starts the simulated staff (on the current tokio runtime) until
/// `cancel`.
pub fn spawn(bedside: Bedside, name: String, cancel: CancellationToken) -> Handle {
    let (jobs, rx) = mpsc::channel(32);
    let (up_tx, up) = watch::channel(false);
    tokio::spawn(run(bedside, name, rx, up_tx, cancel));
    Handle { jobs, up }
}

async fn run(
    b: Bedside,
    name: String,
    mut jobs: mpsc::Receiver<Job>,
    up: watch::Sender<bool>,
    cancel: CancellationToken,
) {
    let mut todo: Vec<(tokio::time::Instant, Job)> = Vec::new();
    let mut said = false;
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => return,
            s = UnixStream::connect(&b.socket) => s,
        };
        match stream {
            Ok(stream) => {
                said = false;
                let over = session(&b, &name, stream, &mut jobs, &mut todo, &up, &cancel).await;
                up.send_replace(false);
                if over {
                    return;
                }
            }
            Err(e) if !said => {
                said = true;
                info!(pump = %name, socket = %b.socket.display(), error = %e, "bedside terminal not reachable yet; trying again");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// One connection; `true` when the simulation is over.
async fn session(
    b: &Bedside,
    name: &str,
    stream: UnixStream,
    jobs: &mut mpsc::Receiver<Job>,
    todo: &mut Vec<(tokio::time::Instant, Job)>,
    up: &watch::Sender<bool>,
    cancel: &CancellationToken,
) -> bool {
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    let hello = FromTerminal::Hello {
        protocol: VERSION,
        terminal: format!("simulated bedside of {name}"),
    };
    if !send(&mut lines, &hello).await {
        return false;
    }
    let mut open: Vec<ConfirmationCard> = Vec::new();
    let mut answered: HashSet<u64> = HashSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return true,
            job = jobs.recv() => match job {
                Some(job) => todo.push((tokio::time::Instant::now(), job)),
                None => return true,
            },
            line = lines.next() => match line {
                Some(Ok(text)) => match serde_json::from_str::<ToTerminal>(&text) {
                    Ok(ToTerminal::Welcome { .. }) => {
                        up.send_replace(true);
                    }
                    Ok(ToTerminal::Confirmations { open: o, .. }) => open = o,
                    Ok(ToTerminal::Result { id, result, message, .. }) => {
                        info!(pump = %name, confirmation = id, result = %result, "bedside: {message}");
                    }
                    Ok(ToTerminal::Error { code, message, fatal }) => {
                        warn!(pump = %name, code = %code, "bedside terminal: {message}");
                        if fatal {
                            return false;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => warn!(pump = %name, error = %e, "bedside terminal: a line it cannot read"),
                },
                Some(Err(e)) => {
                    warn!(pump = %name, error = %e, "bedside terminal connection failed");
                    return false;
                }
                None => return false,
            },
        }
        // Forgotten after the longest a confirmation can stay open.
        todo.retain(|(at, _)| at.elapsed() < Duration::from_secs(600));
        for card in &open {
            if answered.contains(&card.id) {
                continue;
            }
            let Some((_, job)) = todo
                .iter()
                .find(|(_, j)| hex::encode(j.programme_hash) == card.programme_hash)
            else {
                continue;
            };
            answered.insert(card.id);
            let reply = answer(b, job, card);
            if let FromTerminal::Decline { reason, .. } = &reply {
                info!(pump = %name, confirmation = card.id, "bedside declines: {}", reason.as_deref().unwrap_or(""));
            }
            if !send(&mut lines, &reply).await {
                return false;
            }
        }
    }
}

async fn send(lines: &mut Framed<UnixStream, LinesCodec>, m: &FromTerminal) -> bool {
    let text = serde_json::to_string(m).expect("messages always serialise");
    lines.send(text).await.is_ok()
}

/// What the simulated staff answer to one confirmation.
fn answer(b: &Bedside, job: &Job, card: &ConfirmationCard) -> FromTerminal {
    let decline = |why: &str| FromTerminal::Decline {
        id: card.id,
        reason: Some(why.to_owned()),
    };
    let mut signers: Vec<&Staff> = Vec::new();
    let mut concentration = None;
    let mut reason = None;
    for need in &card.needs {
        match need {
            NeedCard::Concentration { .. } => {
                let Some(who) = b.nurses.first().or(b.doctors.first()) else {
                    return decline("no nurse at the simulated bedside");
                };
                signers = vec![who];
                concentration = Some(job.label.clone());
            }
            NeedCard::Bolus { roles, people, .. } => {
                let mut pool: Vec<&Staff> = Vec::new();
                if roles.iter().any(|r| r == "nurse") {
                    pool.extend(&b.nurses);
                }
                if roles.iter().any(|r| r == "doctor") {
                    pool.extend(&b.doctors);
                }
                let people = usize::from(*people);
                if pool.len() < people {
                    return decline("nobody at the simulated bedside may confirm this bolus");
                }
                signers = pool.into_iter().take(people).collect();
            }
            NeedCard::Override { reasons, .. } => match &job.override_reason {
                Some(r) if reasons.contains(r) => reason = Some(r.clone()),
                _ => return decline("the scenario gives no override reason for this limit"),
            },
        }
    }
    if signers.is_empty() {
        // An override alone: whoever the bedside has, doctors first.
        match b.doctors.first().or(b.nurses.first()) {
            Some(who) => signers.push(who),
            None => return decline("nobody at the simulated bedside"),
        }
    }
    FromTerminal::Confirm {
        id: card.id,
        screen_hash: card.screen_hash.clone(),
        signers: signers
            .into_iter()
            .map(|s| Signer {
                staff_id: s.id.clone(),
                pin: s.pin.clone(),
            })
            .collect(),
        concentration,
        reason,
    }
}
