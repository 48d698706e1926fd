//! The core's side of bedside confirmations: it opens them on the board
//! (stage by stage), tells the pump to keep waiting, takes the terminals'
//! confirmations and declines, expires and withdraws them, and on the last
//! stage makes the token. Every step is logged before anything is answered.

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{Core, store_unavailable};
use crate::ders::{Programme, Verdict};
use crate::gateway::authorise::{self, ConfirmedLoad, codes};
use crate::pump::{Decision, PumpId};
use crate::store::Event;
use crate::terminal::command::{Command, Outcome};
use crate::terminal::confirm::{Ask, Need, Pending, Refused, Reply};
use crate::terminal::screen;

/// How much longer the pump is told to wait than the confirmation lasts.
const AWAIT_GRACE: time::Duration = time::Duration::seconds(5);

/// Closed confirmations remembered for logging late answers.
const CLOSED_KEPT: usize = 256;

/// What became of closed confirmations, kept for the terminals that still
/// show them (they read the snapshot at most a few hundred ms later).
const NOTICES_KEPT: usize = 32;

/// A programme waiting for people.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) pump: PumpId,
    pub(super) request: u32,
    pub(super) hash: [u8; 32],
    pub(super) programme: Programme,
    pub(super) verdict: Verdict,
    /// Stages not opened yet.
    pub(super) later: Vec<Vec<Need>>,
    /// The container, once its concentration is confirmed.
    pub(super) load: Option<ConfirmedLoad>,
    /// The library file the verdict was made with: a token is made only
    /// while the gateway and the pump still run it.
    pub(super) library_hash: [u8; 32],
    pub(super) reply: mpsc::Sender<Decision>,
}

/// The stage name of a set of needs (as logged and shown).
fn stage_name(needs: &[Need]) -> &'static str {
    let bolus = needs.iter().any(|n| matches!(n, Need::Bolus { .. }));
    let overriding = needs.iter().any(|n| matches!(n, Need::Override { .. }));
    if needs
        .iter()
        .any(|n| matches!(n, Need::Concentration { .. }))
    {
        "concentration"
    } else if bolus && overriding {
        "bolus_override"
    } else if bolus {
        "bolus"
    } else {
        "override"
    }
}

/// The code a refusal is logged under.
fn refusal_code(r: &Refused) -> &'static str {
    match r {
        Refused::NotOpen => codes::CONFIRMATION_WITHDRAWN,
        Refused::Expired(_) => codes::CONFIRMATION_EXPIRED,
        Refused::ScreenChanged => "SCREEN_CHANGED",
        Refused::ConcentrationMismatch { .. } => codes::CONCENTRATION_MISMATCH,
        Refused::Incomplete(_) => "INCOMPLETE",
        Refused::NotAllowed(_) => "NOT_ALLOWED",
    }
}

impl Core {
    /// Whether a terminal is there to ask.
    pub(super) fn terminal_connected(&self) -> bool {
        *self.terminals.borrow() > 0
    }

    /// Opens the first stage of `waiting` (or the next one) and tells the
    /// pump to wait; `Err` with the decision to send when it cannot.
    pub(super) async fn open_stage(
        &mut self,
        mut waiting: Waiting,
        now: OffsetDateTime,
    ) -> Result<(), (Waiting, Decision)> {
        if waiting.later.is_empty() {
            let decision = authorise::deny(
                "unavailable",
                codes::CONFIRMATION_UNAVAILABLE,
                "Nothing left to confirm, yet no authorisation was made.".to_owned(),
            );
            return Err((waiting, decision));
        }
        let needs = waiting.later.remove(0);
        let library = self.library.borrow().clone();
        let drug = library.as_deref().and_then(|l| {
            l.library
                .care_area(&self.gateway.care_area)?
                .drug(&waiting.programme.drug)
        });
        // The order the verdict compared with (not one that came since).
        let order = self
            .order_for(&waiting.pump, &waiting.programme)
            .filter(|o| waiting.verdict.order.as_deref() == Some(o.number.as_str()));
        let screen = screen::build(
            &waiting.pump,
            &needs,
            &waiting.programme,
            drug,
            &waiting.verdict,
            order,
        );
        let stage = stage_name(&needs);
        let ask = Ask {
            pump: waiting.pump.to_string(),
            request: waiting.request,
            programme_hash: waiting.hash,
            needs,
            screen,
        };
        let (pending, replaced) = self.board.open(ask, now);
        let pending = pending.clone();
        if let Some(old) = replaced {
            self.close_waiting(
                &old,
                codes::CONFIRMATION_WITHDRAWN,
                "a new request from the pump replaced it",
                (Vec::new(), None),
                now,
            )
            .await;
        }
        let logged = self
            .log(
                Some(&waiting.pump),
                vec![Event::ConfirmationRequested {
                    request: waiting.request,
                    confirmation: pending.id,
                    stage: stage.to_owned(),
                    screen_hash: hex::encode(pending.screen_hash),
                    expires: pending.expires,
                }],
            )
            .await;
        if !logged {
            self.board.withdraw(&waiting.pump);
            return Err((waiting, store_unavailable()));
        }
        let message = match stage {
            "concentration" => "Confirm the container's concentration at the bedside terminal.",
            "bolus" | "bolus_override" => {
                "Waiting for the bolus to be confirmed at the bedside terminal."
            }
            _ => "Waiting for the override to be confirmed at the bedside terminal.",
        };
        info!(pump = %waiting.pump, request = waiting.request, confirmation = pending.id, stage, "awaiting confirmation at the terminal");
        let _ = waiting.reply.try_send(Decision::Awaiting {
            // Beyond the board's own limit, so that an answer given at
            // the last moment (then logged with fsync) still finds the
            // pump waiting.
            until: pending.expires + AWAIT_GRACE,
            message: message.to_owned(),
        });
        self.waiting.insert(pending.id, waiting);
        Ok(())
    }

    /// Handles one terminal command.
    pub(super) async fn command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::Confirm {
                id,
                screen_hash,
                signers,
                concentration,
                reason,
                terminal,
                done,
            } => {
                let open = self.board.pending().find(|p| p.id == id).cloned();
                let outcome = self
                    .confirm(
                        id,
                        screen_hash,
                        &signers,
                        concentration,
                        reason,
                        &terminal,
                        now,
                    )
                    .await;
                if let Some(p) = &open {
                    let by = || {
                        (
                            signers.iter().map(|m| m.id.clone()).collect(),
                            Some(terminal.clone()),
                        )
                    };
                    match &outcome {
                        Outcome::Authorised => self.notice(p, "authorised", "", by()),
                        Outcome::NextStage(_) => self.notice(p, "next_stage", "", by()),
                        Outcome::Closed(words) => self.notice(p, "denied", words, by()),
                        Outcome::NotLogged => {
                            self.notice(p, "denied", "the decision could not be logged", by());
                        }
                        // A refusal that closes it is noticed where it closes.
                        Outcome::Refused(_) | Outcome::Declined => {}
                    }
                }
                let _ = done.send(outcome);
            }
            Command::Decline {
                id,
                reason,
                terminal,
                done,
            } => {
                let outcome = if let Some(p) = self.board.decline(id) {
                    let words = reason.map_or_else(
                        || "declined at the bedside terminal".to_owned(),
                        |r| format!("declined at the bedside terminal: {r}"),
                    );
                    self.close_waiting(
                        &p,
                        codes::DECLINED,
                        &words,
                        (Vec::new(), Some(terminal)),
                        now,
                    )
                    .await;
                    Outcome::Declined
                } else {
                    self.not_open(id, Vec::new(), &terminal).await;
                    Outcome::Refused(Refused::NotOpen)
                };
                let _ = done.send(outcome);
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "the fields of one command")]
    async fn confirm(
        &mut self,
        id: u64,
        screen_hash: [u8; 32],
        signers: &[crate::staff::roster::Member],
        concentration: Option<crate::units::Concentration>,
        reason: Option<String>,
        terminal: &str,
        now: OffsetDateTime,
    ) -> Outcome {
        let Some(open) = self.board.pending().find(|p| p.id == id).cloned() else {
            let by = signers.iter().map(|m| m.id.clone()).collect();
            self.not_open(id, by, terminal).await;
            return Outcome::Refused(Refused::NotOpen);
        };
        let reply = Reply {
            screen_hash,
            signers: signers.iter().collect(),
            concentration,
            reason,
        };
        let by: Vec<String> = signers.iter().map(|m| m.id.clone()).collect();
        match self.board.confirm(id, &reply, now) {
            Err(refused) => {
                let closed = refused.closes();
                if closed {
                    let words = refused.to_string();
                    self.close_waiting(
                        &open,
                        refusal_code(&refused),
                        &words,
                        (by, Some(terminal.to_owned())),
                        now,
                    )
                    .await;
                } else {
                    let event = Event::ConfirmationRefused {
                        request: open.ask.request,
                        confirmation: id,
                        code: refusal_code(&refused).to_owned(),
                        message: refused.to_string(),
                        closed: false,
                        by,
                        terminal: Some(terminal.to_owned()),
                    };
                    let pump = self.waiting.get(&id).map(|w| w.pump.clone());
                    self.log(pump.as_ref(), vec![event]).await;
                }
                warn!(pump = %open.ask.pump, request = open.ask.request, confirmation = id, refused = %refused, closed, "confirmation refused");
                Outcome::Refused(refused)
            }
            Ok(granted) => self.granted(&open, granted, terminal, now).await,
        }
    }

    /// A stage confirmed: the next stage opens, or the token is made.
    async fn granted(
        &mut self,
        open: &Pending,
        granted: crate::terminal::confirm::Granted,
        terminal: &str,
        now: OffsetDateTime,
    ) -> Outcome {
        let id = open.id;
        let Some(mut waiting) = self.waiting.remove(&id) else {
            return Outcome::Refused(Refused::NotOpen);
        };
        self.remember_closed(id, &waiting);
        if let Some((code, words)) = self.stale(&waiting) {
            self.deny_closed(
                id,
                &waiting,
                code,
                words,
                (granted.by.clone(), Some(terminal.to_owned())),
                now,
            )
            .await;
            return Outcome::Closed(sentence(words));
        }
        let stage = stage_name(&open.ask.needs);
        if stage == "concentration" {
            waiting.load = ConfirmedLoad::of(&waiting.programme);
        }
        let confirmed = Event::Confirmed {
            request: granted.request,
            confirmation: id,
            stage: stage.to_owned(),
            by: granted.by.clone(),
            reason: granted.reason.clone(),
            terminal: terminal.to_owned(),
            entered: granted.entered.map(crate::format::concentration),
        };
        info!(pump = %waiting.pump, request = granted.request, confirmation = id, stage, by = %granted.by.join(","), "confirmed at the terminal");
        if !waiting.later.is_empty() {
            if !self.log(Some(&waiting.pump), vec![confirmed]).await {
                self.finish(waiting, store_unavailable(), now).await;
                return Outcome::NotLogged;
            }
            return match self.open_stage(waiting, now).await {
                Ok(()) => {
                    let next = self
                        .board
                        .pending()
                        .find(|p| p.ask.request == granted.request && p.ask.pump == granted.pump)
                        .map_or(0, |p| p.id);
                    Outcome::NextStage(next)
                }
                Err((waiting, decision)) => {
                    self.finish(waiting, decision, now).await;
                    Outcome::NotLogged
                }
            };
        }
        // While people confirmed, the bed may have changed (another pump
        // started, a bolus was authorised, a delivery was reported): the
        // cross-check runs again on the exposure now, and what it would
        // refuse now is refused.
        if let Some(decision) = self.recheck(&waiting, now) {
            let words = match &decision {
                Decision::Deny { reasons, .. } => reasons
                    .first()
                    .map_or_else(String::new, |r| r.message.clone()),
                _ => String::new(),
            };
            let events = vec![
                confirmed,
                super::decision_event(waiting.request, &waiting.hash, &decision),
            ];
            if !self.log(Some(&waiting.pump), events).await {
                self.finish_unlogged(&waiting, now);
                return Outcome::NotLogged;
            }
            self.send_final(&waiting, decision, now);
            return Outcome::Closed(format!(
                "while this waited the bed's doses changed, and the check now refuses it: {words}"
            ));
        }
        let rng = &self.rng;
        let decision = authorise::authorise(now, self.validity, || {
            use ring::rand::SecureRandom as _;
            let mut t = [0u8; 16];
            rng.fill(&mut t).ok().map(|()| t)
        });
        let authorised = matches!(decision, Decision::Authorise { .. });
        let mut events = vec![confirmed];
        events.push(super::decision_event(
            waiting.request,
            &waiting.hash,
            &decision,
        ));
        if !self.log(Some(&waiting.pump), events).await {
            self.finish_unlogged(&waiting, now);
            return Outcome::NotLogged;
        }
        if let Some(load) = waiting.load.clone() {
            self.confirmed.insert(waiting.pump.clone(), load);
        }
        self.send_final(&waiting, decision, now);
        if authorised {
            Outcome::Authorised
        } else {
            Outcome::NotLogged
        }
    }

    /// Ends an open confirmation without a grant: logged, and the pump is
    /// denied.
    pub(super) async fn close_waiting(
        &mut self,
        p: &Pending,
        code: &str,
        words: &str,
        (by, terminal): (Vec<String>, Option<String>),
        now: OffsetDateTime,
    ) {
        let Some(waiting) = self.waiting.remove(&p.id) else {
            return;
        };
        let outcome = match code {
            codes::DECLINED => "declined",
            codes::CONFIRMATION_EXPIRED => "expired",
            codes::CONFIRMATION_WITHDRAWN => "withdrawn",
            // Refused at a terminal (a label that is not what was
            // programmed), or withdrawn by the gateway (the pump's session
            // or the library changed).
            _ if terminal.is_some() => "refused",
            _ => "withdrawn",
        };
        self.notice(p, outcome, words, (by.clone(), terminal.clone()));
        self.remember_closed(p.id, &waiting);
        self.deny_closed(p.id, &waiting, code, words, (by, terminal), now)
            .await;
    }

    /// Denies the programme of a confirmation already taken off the board
    /// and out of `waiting`: logged, then sent.
    async fn deny_closed(
        &mut self,
        id: u64,
        waiting: &Waiting,
        code: &str,
        words: &str,
        (by, terminal): (Vec<String>, Option<String>),
        now: OffsetDateTime,
    ) {
        warn!(pump = %waiting.pump, request = waiting.request, confirmation = id, code, reason = words, "confirmation closed: programme denied");
        let refused = Event::ConfirmationRefused {
            request: waiting.request,
            confirmation: id,
            code: code.to_owned(),
            message: words.to_owned(),
            closed: true,
            by,
            terminal,
        };
        let outcome = if code == codes::DECLINED || code == codes::CONCENTRATION_MISMATCH {
            "block"
        } else {
            "unavailable"
        };
        let decision = authorise::deny(outcome, code, sentence(words));
        let events = vec![
            refused,
            super::decision_event(waiting.request, &waiting.hash, &decision),
        ];
        if self.log(Some(&waiting.pump), events).await {
            self.send_final(waiting, decision, now);
        } else {
            self.finish_unlogged(waiting, now);
        }
    }

    /// Why a token cannot be made now for `waiting`, though people
    /// confirmed: the pump's session is gone, or the library the verdict
    /// used is no longer the gateway's or the pump's.
    fn stale(&self, waiting: &Waiting) -> Option<(&'static str, &'static str)> {
        if waiting.reply.is_closed() {
            return Some((
                codes::CONFIRMATION_WITHDRAWN,
                "the pump's session ended (it went offline or started again) while this waited",
            ));
        }
        let gateway = self.library.borrow().as_ref().map(|l| l.hash);
        let pump = self
            .pumps
            .get(&waiting.pump)
            .and_then(|v| v.identity.as_ref())
            .and_then(|i| i.library_hash);
        if gateway != Some(waiting.library_hash) || pump != Some(waiting.library_hash) {
            return Some((
                codes::LIBRARY_HASH_MISMATCH,
                "the drug library changed while this waited for a confirmation; programme the pump again so it is checked against the library in use",
            ));
        }
        None
    }

    /// The cross-check again, at the moment a token would be made, with
    /// the bed's exposure now: a denial when it would now refuse the
    /// programme (a cumulative limit reached meanwhile), else `None`.
    fn recheck(&self, waiting: &Waiting, now: OffsetDateTime) -> Option<Decision> {
        let library = self.library.borrow().clone()?;
        let mut programme = waiting.programme.clone();
        programme.requested_at = now;
        let replacing = super::replacing(&waiting.pump, Some(&programme));
        let history = self.ledger.exposure(&programme.drug, now, replacing);
        let verdict = authorise::cross_check(
            &library.library,
            &self.gateway.care_area,
            &programme,
            &history,
            self.order_for(&waiting.pump, &programme),
        );
        matches!(
            verdict.outcome,
            crate::ders::Outcome::Block | crate::ders::Outcome::HardLimit
        )
        .then(|| Decision::Deny {
            outcome: authorise::outcome_name(verdict.outcome),
            reasons: authorise::reasons_of(&verdict),
        })
    }

    /// Lapsed confirmations: denied.
    pub(super) async fn expire_confirmations(&mut self, now: OffsetDateTime) {
        for p in self.board.expire(now) {
            self.close_waiting(
                &p,
                codes::CONFIRMATION_EXPIRED,
                "nobody confirmed in time",
                (Vec::new(), None),
                now,
            )
            .await;
        }
        // A pump gone or a library changed: what waits can no longer be
        // authorised, so it is denied now rather than at its expiry.
        let stale: Vec<(Pending, &'static str, &'static str)> = self
            .board
            .pending()
            .filter_map(|p| {
                let waiting = self.waiting.get(&p.id)?;
                let (code, words) = self.stale(waiting)?;
                Some((p.clone(), code, words))
            })
            .collect();
        for (p, code, words) in stale {
            self.board.withdraw(&p.ask.pump);
            self.close_waiting(&p, code, words, (Vec::new(), None), now)
                .await;
        }
        // No terminal left to ask: nothing can be confirmed, so nothing
        // waits for it.
        if !self.terminal_connected() {
            self.withdraw_all("no bedside terminal is connected any more", now)
                .await;
        }
    }

    /// The pump withdrew a request (CANCEL): its confirmation, if one is
    /// open, is closed and logged as withdrawn; the denial goes to the pump
    /// like any answer, and the pump, which has forgotten the request,
    /// ignores it.
    pub(super) async fn cancelled(&mut self, pump: &PumpId, request: u32, now: OffsetDateTime) {
        let open = self
            .board
            .pending()
            .any(|p| *p.ask.pump == **pump && p.ask.request == request);
        if open {
            self.withdraw_pump(pump, "the pump withdrew the request", now)
                .await;
        } else {
            info!(pump = %pump, request, "the pump withdrew a request no confirmation waits for");
        }
    }

    /// Every open confirmation is withdrawn (the gateway is stopping, or no
    /// terminal is left to answer them).
    pub(super) async fn withdraw_all(&mut self, why: &str, now: OffsetDateTime) {
        let pumps: Vec<PumpId> = self
            .board
            .pending()
            .map(|p| PumpId::from(p.ask.pump.as_str()))
            .collect();
        for pump in pumps {
            self.withdraw_pump(&pump, why, now).await;
        }
    }

    /// A pump went offline or stopped: its open confirmation is withdrawn.
    pub(super) async fn withdraw_pump(&mut self, pump: &PumpId, why: &str, now: OffsetDateTime) {
        if let Some(p) = self.board.withdraw(pump) {
            self.close_waiting(
                &p,
                codes::CONFIRMATION_WITHDRAWN,
                why,
                (Vec::new(), None),
                now,
            )
            .await;
        }
    }

    /// Logs the final decision, then sends it.
    async fn finish(&mut self, waiting: Waiting, decision: Decision, now: OffsetDateTime) {
        let event = super::decision_event(waiting.request, &waiting.hash, &decision);
        if self.log(Some(&waiting.pump), vec![event]).await {
            self.send_final(&waiting, decision, now);
        } else {
            self.finish_unlogged(&waiting, now);
        }
    }

    /// The decision could not be logged: the pump is denied (never
    /// authorised without a record).
    fn finish_unlogged(&mut self, waiting: &Waiting, now: OffsetDateTime) {
        self.send_final(waiting, store_unavailable(), now);
    }

    /// Keeps what became of confirmation `p` (once), for the terminals that
    /// still show it: `outcome` as in the terminal protocol's `closed`,
    /// `words` why, for a denial.
    fn notice(
        &mut self,
        p: &Pending,
        outcome: &str,
        words: &str,
        (by, terminal): (Vec<String>, Option<String>),
    ) {
        if self.notices.iter().any(|n| n.id == p.id) {
            return;
        }
        if self.notices.len() >= NOTICES_KEPT {
            self.notices.pop_front();
        }
        self.notices
            .push_back(crate::terminal::protocol::ClosedCard {
                id: p.id,
                pump: p.ask.pump.clone(),
                drug: p.ask.screen["drug"].as_str().unwrap_or_default().to_owned(),
                outcome: outcome.to_owned(),
                words: words.to_owned(),
                by,
                terminal,
            });
    }

    /// Keeps which pump and request a closed confirmation was for, so that
    /// a late or second answer to it is logged against them.
    fn remember_closed(&mut self, id: u64, waiting: &Waiting) {
        if self.closed.len() >= CLOSED_KEPT {
            self.closed.pop_front();
        }
        self.closed
            .push_back((id, waiting.pump.clone(), waiting.request));
    }

    /// An answer to a confirmation that is not open: a second use, or one
    /// too late. Logged when the gateway still knows what it was for.
    async fn not_open(&mut self, id: u64, by: Vec<String>, terminal: &str) {
        let Some((_, pump, request)) = self.closed.iter().find(|(c, _, _)| *c == id).cloned()
        else {
            warn!(
                confirmation = id,
                terminal, "answer to a confirmation this gateway does not know"
            );
            return;
        };
        warn!(pump = %pump, request, confirmation = id, terminal, "answer to a confirmation that is closed");
        let event = Event::ConfirmationRefused {
            request,
            confirmation: id,
            code: "NOT_OPEN".to_owned(),
            message: Refused::NotOpen.to_string(),
            closed: true,
            by,
            terminal: Some(terminal.to_owned()),
        };
        self.log(Some(&pump), vec![event]).await;
    }

    /// Sends a final decision (already logged) and records what it issued.
    fn send_final(&mut self, waiting: &Waiting, decision: Decision, now: OffsetDateTime) {
        let drug = &waiting.programme.drug;
        let (decided, reason) = self.conclude(
            &waiting.pump,
            (
                waiting.request,
                Some(&waiting.programme),
                Some(&waiting.verdict),
            ),
            drug,
            &decision,
            now,
        );
        info!(pump = %waiting.pump, drug = %drug, request = waiting.request, decision = %decided, reason = %reason, "programme decided after confirmation");
        let _ = waiting.reply.try_send(decision);
    }
}

/// "nobody confirmed in time" → "Nobody confirmed in time."
fn sentence(words: &str) -> String {
    let mut c = words.chars();
    let mut out: String = c
        .next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}
