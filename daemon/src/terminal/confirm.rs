//! Confirmations awaiting a person, without I/O. Each is bound to the exact
//! programme the pump asked for (the hash of its request) and to the exact
//! screen a terminal showed (the hash of that screen's content); each is
//! used once and expires. A confirmation is accepted only when everything
//! still matches: the same screen, in time, by people whose roles the
//! library allows (PINs already checked), and for a container, a blind
//! re-entry of its label equal to what was programmed.
//!
//! The core owns the one board (`gateway/core/bedside.rs`): the terminal
//! socket's `confirm` and `decline` reach it as commands, and the pump link
//! carries the outcome.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use crate::library::{Policy, Role};
use crate::staff::policy::{self, BolusRule};
use crate::staff::roster::Member;
use crate::units::Concentration;

/// What a person must do for a programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Type the container's label (amount and volume) without seeing the
    /// programmed value; it must be equal.
    Concentration {
        /// What the pump was programmed with.
        programmed: Concentration,
    },
    /// Confirm a bolus of this drug.
    Bolus {
        /// The drug's display name.
        drug: String,
        /// Whether it is high-alert.
        high_alert: bool,
        /// Who, and how many.
        rule: BolusRule,
    },
    /// Override a soft limit, with a reason.
    Override {
        /// Roles allowed.
        roles: Vec<Role>,
        /// Reasons offered.
        reasons: Vec<String>,
    },
}

/// A programme waiting for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// Which pump.
    pub pump: String,
    /// Its request id.
    pub request: u32,
    /// SHA-256 of the request exactly as received.
    pub programme_hash: [u8; 32],
    /// What must be done, all of it.
    pub needs: Vec<Need>,
    /// What the terminal shows (every field in words); its hash binds the
    /// confirmation to it.
    pub screen: serde_json::Value,
}

/// An open confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its id on the terminals.
    pub id: u64,
    /// What it is for.
    pub ask: Ask,
    /// SHA-256 of the screen, as terminals must quote it.
    pub screen_hash: [u8; 32],
    /// When it lapses.
    pub expires: OffsetDateTime,
}

/// What a terminal sends back.
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    /// The hash of the screen the people saw.
    pub screen_hash: [u8; 32],
    /// Who signed, in order, their PINs already accepted.
    pub signers: Vec<&'a Member>,
    /// The label typed, for a container.
    pub concentration: Option<Concentration>,
    /// The reason chosen, for an override.
    pub reason: Option<String>,
}

/// Granted: the core may now authorise exactly this programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// Which pump.
    pub pump: String,
    /// Its request.
    pub request: u32,
    /// The programme it authorises.
    pub programme_hash: [u8; 32],
    /// Who confirmed (staff ids, in order).
    pub by: Vec<String>,
    /// The override reason, if any.
    pub reason: Option<String>,
    /// The label typed, for a container (it matched the programme).
    pub entered: Option<Concentration>,
}

/// Why a reply was not accepted. `closed` says whether the confirmation is
/// over (the programme must then be denied) or still open for another try.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No such open confirmation: never opened, used, withdrawn or expired.
    #[error("this confirmation is no longer open (used, withdrawn or expired)")]
    NotOpen,
    /// Too late.
    #[error("too late: the confirmation lapsed at {0}")]
    Expired(OffsetDateTime),
    /// The screen confirmed is not the one the programme has.
    #[error("what was confirmed is not what the pump asked for: the screen has changed")]
    ScreenChanged,
    /// The label typed differs from the programme.
    #[error(
        "the concentration typed from the label ({entered}) is not the one programmed ({programmed}): do not start; check the container and programme again"
    )]
    ConcentrationMismatch {
        /// What was typed, in words.
        entered: String,
        /// What was programmed, in words.
        programmed: String,
    },
    /// Something the needs ask for is missing.
    #[error("{0}")]
    Incomplete(String),
    /// The people who signed may not.
    #[error(transparent)]
    NotAllowed(#[from] policy::Refusal),
}

impl Refused {
    /// Whether the confirmation is over: the programme is denied.
    pub fn closes(&self) -> bool {
        matches!(
            self,
            Refused::NotOpen | Refused::Expired(_) | Refused::ConcentrationMismatch { .. }
        )
    }
}

/// The SHA-256 of a screen: its JSON with keys in order.
pub fn screen_hash(screen: &serde_json::Value) -> [u8; 32] {
    crate::link::sha256(&serde_json::to_vec(screen).expect("JSON values always serialise"))
}

/// Every open confirmation.
#[derive(Debug)]
pub struct Board {
    validity: Duration,
    next: u64,
    open: BTreeMap<u64, Pending>,
}

impl Board {
    /// A board whose confirmations last `validity` (default 120 s).
    pub fn new(validity: Duration) -> Board {
        Board {
            validity,
            next: 1,
            open: BTreeMap::new(),
        }
    }

    /// Opens a confirmation; any earlier one for the same pump is
    /// withdrawn (a new request replaces it) and returned.
    pub fn open(&mut self, ask: Ask, now: OffsetDateTime) -> (&Pending, Option<Pending>) {
        let replaced = self.withdraw(&ask.pump);
        let id = self.next;
        self.next += 1;
        let pending = Pending {
            id,
            screen_hash: screen_hash(&ask.screen),
            expires: now + self.validity,
            ask,
        };
        let p = self.open.entry(id).or_insert(pending);
        (p, replaced)
    }

    /// The open confirmations, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.open.values()
    }

    /// Withdraws the open confirmation of `pump` (it went offline or asked
    /// again).
    pub fn withdraw(&mut self, pump: &str) -> Option<Pending> {
        let id = self.open.values().find(|p| p.ask.pump == pump)?.id;
        self.open.remove(&id)
    }

    /// A person declined: the programme is to be denied.
    pub fn decline(&mut self, id: u64) -> Option<Pending> {
        self.open.remove(&id)
    }

    /// Moves every expiry by `by` (the gateway's clock followed a step of
    /// the wall clock): each confirmation keeps the time it had left.
    pub fn shift(&mut self, by: Duration) {
        for p in self.open.values_mut() {
            p.expires += by;
        }
    }

    /// Removes and returns every confirmation that has lapsed.
    pub fn expire(&mut self, now: OffsetDateTime) -> Vec<Pending> {
        let lapsed: Vec<u64> = self
            .open
            .values()
            .filter(|p| p.expires <= now)
            .map(|p| p.id)
            .collect();
        lapsed
            .iter()
            .filter_map(|id| self.open.remove(id))
            .collect()
    }

    /// Takes a reply. Accepted: the confirmation is used up and the grant
    /// returned. Refused: see [`Refused::closes`].
    pub fn confirm(
        &mut self,
        id: u64,
        reply: &Reply<'_>,
        now: OffsetDateTime,
    ) -> Result<Granted, Refused> {
        let p = self.open.get(&id).ok_or(Refused::NotOpen)?;
        if p.expires <= now {
            let expires = p.expires;
            self.open.remove(&id);
            return Err(Refused::Expired(expires));
        }
        if reply.screen_hash != p.screen_hash {
            return Err(Refused::ScreenChanged);
        }
        if let Err(e) = check_needs(&p.ask.needs, reply) {
            if e.closes() {
                self.open.remove(&id);
            }
            return Err(e);
        }
        let p = self.open.remove(&id).ok_or(Refused::NotOpen)?;
        Ok(Granted {
            pump: p.ask.pump,
            request: p.ask.request,
            programme_hash: p.ask.programme_hash,
            by: reply.signers.iter().map(|m| m.id.clone()).collect(),
            reason: reply.reason.clone(),
            entered: reply.concentration.filter(|_| {
                p.ask
                    .needs
                    .iter()
                    .any(|n| matches!(n, Need::Concentration { .. }))
            }),
        })
    }
}

fn check_needs(needs: &[Need], reply: &Reply<'_>) -> Result<(), Refused> {
    let first = reply
        .signers
        .first()
        .ok_or_else(|| Refused::Incomplete("nobody has signed".to_owned()))?;
    for need in needs {
        match need {
            Need::Concentration { programmed } => {
                for s in &reply.signers {
                    policy::concentration(s)?;
                }
                let entered = reply.concentration.ok_or_else(|| {
                    Refused::Incomplete(
                        "type the concentration from the container's label".to_owned(),
                    )
                })?;
                if entered.amount() != programmed.amount()
                    || entered.volume() != programmed.volume()
                {
                    return Err(Refused::ConcentrationMismatch {
                        entered: crate::format::concentration(entered),
                        programmed: crate::format::concentration(*programmed),
                    });
                }
            }
            Need::Bolus {
                drug,
                high_alert,
                rule,
            } => {
                policy::bolus_signers(drug, *high_alert, rule, &reply.signers)?;
            }
            Need::Override { roles, reasons } => {
                let p = Policy {
                    soft_override_roles: roles.clone(),
                    override_reasons: reasons.clone(),
                };
                let reason = reply.reason.as_deref().ok_or_else(|| {
                    Refused::Incomplete("choose the reason for overriding the limit".to_owned())
                })?;
                policy::soft_override(&p, first, reason)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staff::roster::test_member as member;
    use crate::units::parse_concentration;

    fn t(s: i64) -> OffsetDateTime {
        time::macros::datetime!(2026-11-21 03:00 UTC) + Duration::seconds(s)
    }

    fn ask(pump: &str, needs: Vec<Need>) -> Ask {
        Ask {
            pump: pump.to_owned(),
            request: 7,
            programme_hash: [9; 32],
            needs,
            screen: serde_json::json!({"drug": "fentaNYL", "dose": "25 micrograms"}),
        }
    }

    fn bolus(people: u8) -> Need {
        Need::Bolus {
            drug: "fentaNYL".into(),
            high_alert: true,
            rule: BolusRule {
                roles: vec![Role::Doctor],
                people,
            },
        }
    }

    fn reply(hash: [u8; 32], signers: Vec<&Member>) -> Reply<'_> {
        Reply {
            screen_hash: hash,
            signers,
            concentration: None,
            reason: None,
        }
    }

    #[test]
    fn a_bolus_confirmation_is_granted_once_for_what_was_shown() {
        let mut board = Board::new(Duration::seconds(120));
        let (opened, _) = board.open(ask("pump-a", vec![bolus(1)]), t(0));
        let (id, hash) = (opened.id, opened.screen_hash);
        let d = member("d.patel", Role::Doctor);
        let n = member("n.okafor", Role::Nurse);
        // A nurse may not: refused, and it stays open for a doctor.
        let e = board.confirm(id, &reply(hash, vec![&n]), t(5)).unwrap_err();
        assert!(matches!(e, Refused::NotAllowed(_)) && !e.closes(), "{e}");
        // Another screen: refused, still open.
        let e = board
            .confirm(id, &reply([1; 32], vec![&d]), t(6))
            .unwrap_err();
        assert_eq!(e, Refused::ScreenChanged);
        let g = board.confirm(id, &reply(hash, vec![&d]), t(7)).unwrap();
        assert_eq!(g.programme_hash, [9; 32]);
        assert_eq!(g.by, ["d.patel"]);
        // Used once.
        assert_eq!(
            board.confirm(id, &reply(hash, vec![&d]), t(8)),
            Err(Refused::NotOpen)
        );
    }

    #[test]
    fn late_replaced_and_declined_confirmations_are_closed() {
        let mut board = Board::new(Duration::seconds(120));
        let d = member("d", Role::Doctor);
        let (opened, _) = board.open(ask("pump-a", vec![bolus(1)]), t(0));
        let (id, hash) = (opened.id, opened.screen_hash);
        let e = board
            .confirm(id, &reply(hash, vec![&d]), t(120))
            .unwrap_err();
        assert!(matches!(e, Refused::Expired(_)) && e.closes());
        assert_eq!(board.pending().count(), 0);

        let (first, _) = board.open(ask("pump-a", vec![bolus(1)]), t(200));
        let first = first.id;
        let (_, replaced) = board.open(ask("pump-a", vec![bolus(1)]), t(201));
        assert_eq!(
            replaced.map(|p| p.id),
            Some(first),
            "a new request withdraws the old"
        );
        assert_eq!(
            board.confirm(first, &reply(hash, vec![&d]), t(202)),
            Err(Refused::NotOpen)
        );
        let (opened, _) = board.open(ask("pump-b", vec![bolus(1)]), t(300));
        let id = opened.id;
        assert!(board.decline(id).is_some());
        assert_eq!(
            board.expire(t(10_000)).len(),
            1,
            "pump-a's second is lapsed"
        );
        assert_eq!(board.pending().count(), 0);
    }

    #[test]
    fn a_two_person_bolus_needs_two_different_doctors() {
        let mut board = Board::new(Duration::seconds(120));
        let (d1, d2) = (member("d1", Role::Doctor), member("d2", Role::Doctor));
        let (opened, _) = board.open(ask("pump-a", vec![bolus(2)]), t(0));
        let (id, hash) = (opened.id, opened.screen_hash);
        assert!(board.confirm(id, &reply(hash, vec![&d1]), t(1)).is_err());
        assert!(
            board
                .confirm(id, &reply(hash, vec![&d1, &d1]), t(2))
                .is_err()
        );
        let g = board
            .confirm(id, &reply(hash, vec![&d1, &d2]), t(3))
            .unwrap();
        assert_eq!(g.by, ["d1", "d2"]);
    }

    #[test]
    fn blind_reentry_must_equal_the_label_and_a_mismatch_blocks() {
        let programmed = parse_concentration("2,500 micrograms in 50 mL").unwrap();
        let need = || vec![Need::Concentration { programmed }];
        let n = member("n", Role::Nurse);
        let mut board = Board::new(Duration::seconds(120));

        let (opened, _) = board.open(ask("pump-a", need()), t(0));
        let (id, hash) = (opened.id, opened.screen_hash);
        let mut r = reply(hash, vec![&n]);
        assert!(matches!(
            board.confirm(id, &r, t(1)),
            Err(Refused::Incomplete(_))
        ));
        // The same label in other units matches.
        r.concentration = Some(parse_concentration("2.5 mg in 50 mL").unwrap());
        assert!(board.confirm(id, &r, t(2)).is_ok());

        // The HSIB syringe: the label says 2,500 micrograms in 50 mL, the
        // pump was programmed with 25 micrograms in 50 mL. The nurse types
        // the label; it differs; blocked.
        let wrong = parse_concentration("25 micrograms in 50 mL").unwrap();
        let (opened, _) = board.open(
            ask("pump-b", vec![Need::Concentration { programmed: wrong }]),
            t(10),
        );
        let (id, hash) = (opened.id, opened.screen_hash);
        let mut r = reply(hash, vec![&n]);
        r.concentration = Some(programmed);
        let e = board.confirm(id, &r, t(11)).unwrap_err();
        assert!(e.closes(), "a mismatch blocks");
        let text = e.to_string();
        assert!(
            text.contains("2,500 micrograms in 50 mL") && text.contains("25 micrograms in 50 mL"),
            "both values side by side: {text}"
        );
        // Same strength, another container: not the label programmed.
        let (opened, _) = board.open(ask("pump-c", need()), t(20));
        let (id, hash) = (opened.id, opened.screen_hash);
        let mut r = reply(hash, vec![&n]);
        r.concentration = Some(parse_concentration("1,000 micrograms in 20 mL").unwrap());
        assert!(matches!(
            board.confirm(id, &r, t(21)),
            Err(Refused::ConcentrationMismatch { .. })
        ));
    }

    #[test]
    fn an_override_needs_a_listed_reason_and_an_allowed_role() {
        let policy = Policy::default();
        let need = Need::Override {
            roles: policy.soft_override_roles.clone(),
            reasons: policy.override_reasons.clone(),
        };
        let mut board = Board::new(Duration::seconds(120));
        let (opened, _) = board.open(ask("pump-a", vec![need]), t(0));
        let (id, hash) = (opened.id, opened.screen_hash);
        let n = member("n", Role::Nurse);
        let mut r = reply(hash, vec![&n]);
        assert!(matches!(
            board.confirm(id, &r, t(1)),
            Err(Refused::Incomplete(_))
        ));
        r.reason = Some("because".into());
        assert!(matches!(
            board.confirm(id, &r, t(2)),
            Err(Refused::NotAllowed(_))
        ));
        r.reason = Some(policy.override_reasons[0].clone());
        let g = board.confirm(id, &r, t(3)).unwrap();
        assert_eq!(
            g.reason.as_deref(),
            Some(policy.override_reasons[0].as_str())
        );
    }
}
