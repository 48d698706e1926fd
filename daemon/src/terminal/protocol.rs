//! The terminal protocol, version 1 (`docs/terminal-protocol.md`): JSON
//! lines over the gateway's Unix socket. This module owns the messages and
//! the pump cards a terminal draws, with every number already in words by
//! the shared formatting rules, so no terminal formats a dose itself.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::gateway::view::{LinkState, PumpView, Snapshot};
use crate::pump::event::PumpState;
use crate::store::record::time_text;

/// The protocol version this daemon speaks.
pub const VERSION: u32 = 1;
/// The longest line either side may send, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// What a terminal sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FromTerminal {
    /// The first line: who the terminal is and the version it speaks.
    Hello {
        /// Protocol version.
        protocol: u32,
        /// A name for logs, e.g. "bed-12-screen".
        terminal: String,
    },
    /// Are you there? Answered with `pong`.
    Ping,
    /// People confirm an open confirmation as its screen showed it.
    /// Answered with `result`.
    Confirm {
        /// The confirmation's id.
        id: u64,
        /// The `screen_hash` of the confirmation as shown.
        screen_hash: String,
        /// Who signs, in order (two people where the drug asks for two).
        signers: Vec<Signer>,
        /// For a new container: its label as typed, e.g. "2500 micrograms
        /// in 50 mL".
        #[serde(default)]
        concentration: Option<String>,
        /// For an override: one of the reasons offered.
        #[serde(default)]
        reason: Option<String>,
    },
    /// The confirmation on this terminal's screen now, or none: other
    /// terminals' lists then say it is open here. Not answered.
    Viewing {
        /// The confirmation's id (none: no confirmation on screen).
        #[serde(default)]
        id: Option<u64>,
    },
    /// A person declines: the pump is told no. Answered with `result`.
    Decline {
        /// The confirmation's id.
        id: u64,
        /// Why, if they said.
        #[serde(default)]
        reason: Option<String>,
    },
}

/// A person signing: staff id and PIN. The PIN never reaches a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// Staff id.
    pub staff_id: String,
    /// PIN, as typed.
    pub pin: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("staff_id", &self.staff_id)
            .field("pin", &"(hidden)")
            .finish()
    }
}

/// What the daemon sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToTerminal {
    /// The answer to `hello`.
    Welcome {
        /// Protocol version.
        protocol: u32,
        /// Gateway id.
        gateway: String,
        /// Care area.
        care_area: String,
        /// A practice gateway (`pumpgwd demo --practice`, or `practice =
        /// true`): no patient; every record it logs is marked practice.
        /// Sent only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        practice: bool,
    },
    /// Every pump, as it is now. Sent after `welcome` and whenever
    /// anything changes (at most 5 times a second).
    Status {
        /// When.
        at: String,
        /// The active library ("version 12"), or none.
        library: Option<String>,
        /// One card per pump, in port order.
        pumps: Vec<PumpCard>,
    },
    /// Every open confirmation, oldest first. Sent after `welcome` and
    /// whenever one opens, is used, or closes; a confirmation no longer
    /// listed cannot be confirmed.
    Confirmations {
        /// When.
        at: String,
        /// The open confirmations.
        open: Vec<ConfirmationCard>,
    },
    /// A confirmation this terminal had in its open list closed, and not
    /// by this terminal's own answer: what happened, so that a screen
    /// showing it can say so once.
    Closed {
        /// The confirmation.
        id: u64,
        /// Which pump.
        pump: String,
        /// The drug's display name (Tall Man).
        drug: String,
        /// `authorised`, `next_stage`, `declined`, `refused`, `expired`,
        /// `withdrawn` or `denied`.
        outcome: String,
        /// What happened, in words, naming the pump, the terminal and the
        /// people.
        message: String,
    },
    /// The answer to `confirm` or `decline`.
    Result {
        /// The confirmation.
        id: u64,
        /// `authorised`, `next_stage`, `refused` or `declined`.
        result: String,
        /// Whether the confirmation is over (the programme authorised or
        /// denied); otherwise it can be tried again.
        closed: bool,
        /// Words for the screen.
        message: String,
        /// For `next_stage`: the id of the next confirmation.
        #[serde(default)]
        next: Option<u64>,
        /// For a concentration mismatch: what was typed.
        #[serde(default)]
        entered: Option<String>,
        /// For a concentration mismatch: what was programmed.
        #[serde(default)]
        programmed: Option<String>,
    },
    /// Practice mode only: which case is being played, and the judgement
    /// of those played. Sent after `welcome` and whenever it changes.
    Practice(PracticeBoard),
    /// The answer to `ping`.
    Pong,
    /// Something the terminal sent was wrong; `fatal` closes the
    /// connection after this line.
    Error {
        /// Stable code: `BAD_LINE`, `UNKNOWN_MESSAGE`, `HELLO_FIRST`,
        /// `VERSION`, `TOO_MANY_TERMINALS`, `NOT_ALLOWED`, `TIMEOUT`.
        code: String,
        /// Words for the log and the screen.
        message: String,
        /// Whether the daemon closes the connection now.
        fatal: bool,
    },
}

/// Where a practice stands (`pumpgwd demo --practice`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeBoard {
    /// The case being played, from 1 (0: none yet).
    pub case: u32,
    /// How many cases there are.
    pub cases: u32,
    /// The case's title, which gives nothing away ("a fentanyl bolus for
    /// pain").
    pub title: String,
    /// The cases played so far, judged; all of them when the practice is
    /// over.
    pub summary: Vec<PracticeCase>,
}

/// One practice case, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeCase {
    /// Its number, from 1.
    pub case: u32,
    /// Its title.
    pub title: String,
    /// `caught`, `missed`, `given`, `overridden` or `not_given`.
    pub outcome: String,
    /// What happened, in words.
    pub what: String,
    /// Who or what caught it (or who confirmed it).
    pub by: String,
    /// What would have happened without the check.
    pub without: String,
}

/// What one confirmation needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NeedCard {
    /// Blind re-entry of the container's label (amount, unit, volume).
    Concentration {
        /// Roles that may sign.
        roles: Vec<String>,
    },
    /// A bolus.
    Bolus {
        /// Roles that may sign.
        roles: Vec<String>,
        /// How many different people.
        people: u8,
        /// In words: "a doctor's confirmation".
        who: String,
    },
    /// A soft-limit override.
    Override {
        /// Roles that may sign.
        roles: Vec<String>,
        /// The reasons to choose from.
        reasons: Vec<String>,
    },
}

/// One open confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationCard {
    /// Its id, quoted in `confirm` and `decline`.
    pub id: u64,
    /// Which pump (port name).
    pub pump: String,
    /// The pump's request id.
    pub request: u32,
    /// SHA-256 of the pump's request (hex): the programme this is for, as
    /// the pump itself computed it.
    pub programme_hash: String,
    /// What must be done.
    pub needs: Vec<NeedCard>,
    /// What the screen shows, every field in words.
    pub screen: serde_json::Value,
    /// SHA-256 of `screen` (hex), quoted in `confirm`.
    pub screen_hash: String,
    /// When it lapses (RFC 3339).
    pub expires: String,
    /// Who may sign it, from the gateway's staff file (by role), for the
    /// terminal to offer by name.
    #[serde(default)]
    pub staff: Vec<StaffChoice>,
    /// The other terminals (by name) that have it on screen now: someone
    /// may be answering it there. Sent only when there are any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_at: Vec<String>,
}

/// Someone a terminal may offer as a signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffChoice {
    /// Staff id.
    pub id: String,
    /// Name as people know it.
    pub name: String,
    /// `nurse` or `doctor`.
    pub role: String,
}

/// A confirmation that closed, as the core remembers it for the
/// terminals that had it open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedCard {
    /// The confirmation.
    pub id: u64,
    /// Which pump.
    pub pump: String,
    /// The drug's display name (Tall Man).
    pub drug: String,
    /// As in [`ToTerminal::Closed`].
    pub outcome: String,
    /// Why, in words, for a denial (`declined at the bedside terminal`,
    /// `nobody confirmed in time`...).
    pub words: String,
    /// Staff ids of who answered.
    pub by: Vec<String>,
    /// The terminal it was answered at.
    pub terminal: Option<String>,
}

/// The `closed` notice for `card`, people named from `roster`: the one
/// wording of what became of a confirmation elsewhere.
pub fn closed_notice(card: &ClosedCard, roster: &crate::staff::Roster) -> ToTerminal {
    let people: Vec<String> = card.by.iter().map(|id| roster.named(id)).collect();
    let at = card
        .terminal
        .as_deref()
        .map(|t| format!(" at terminal {t}"))
        .unwrap_or_default();
    let by = if people.is_empty() {
        String::new()
    } else {
        format!(" by {}", people.join(" and "))
    };
    let what = match card.outcome.as_str() {
        "authorised" => format!("confirmed{at}{by}; the pump may start."),
        "next_stage" => {
            format!("this step was confirmed{at}{by}; the next confirmation is waiting.")
        }
        "declined" => format!("declined{at}{by}; the pump will not start."),
        "refused" => format!(
            "not confirmed{at}{by}: {}. The pump will not start.",
            card.words
        ),
        "expired" => "nobody confirmed in time; the pump will not start.".to_owned(),
        "withdrawn" => format!("withdrawn ({}); the pump will not start.", card.words),
        _ => format!("{}; the pump will not start.", card.words),
    };
    ToTerminal::Closed {
        id: card.id,
        pump: card.pump.clone(),
        drug: card.drug.clone(),
        outcome: card.outcome.clone(),
        message: format!("Pump {} ({}): {what}", card.pump, card.drug),
    }
}

/// Fills each card's `staff` with the people of `roster` whose role may
/// sign it.
pub fn with_staff(
    mut cards: Vec<ConfirmationCard>,
    roster: &crate::staff::Roster,
) -> Vec<ConfirmationCard> {
    for card in &mut cards {
        let roles: Vec<&str> = card
            .needs
            .iter()
            .flat_map(|n| match n {
                NeedCard::Concentration { roles }
                | NeedCard::Bolus { roles, .. }
                | NeedCard::Override { roles, .. } => roles.iter().map(String::as_str),
            })
            .collect();
        card.staff = roster
            .staff
            .iter()
            .filter_map(|m| {
                let role = crate::format::name(&m.role);
                roles.contains(&role.as_str()).then(|| StaffChoice {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    role,
                })
            })
            .collect();
    }
    cards
}

/// The card of an open confirmation.
pub fn confirmation_card(p: &crate::terminal::confirm::Pending) -> ConfirmationCard {
    use crate::terminal::confirm::Need;
    let roles = |r: &[crate::library::Role]| r.iter().map(crate::format::name).collect();
    ConfirmationCard {
        id: p.id,
        pump: p.ask.pump.clone(),
        request: p.ask.request,
        programme_hash: hex::encode(p.ask.programme_hash),
        needs: p
            .ask
            .needs
            .iter()
            .map(|n| match n {
                Need::Concentration { .. } => NeedCard::Concentration {
                    roles: roles(crate::staff::policy::CONCENTRATION_ROLES),
                },
                Need::Bolus { rule, .. } => NeedCard::Bolus {
                    roles: roles(&rule.roles),
                    people: rule.people,
                    who: crate::staff::policy::who_confirms(rule),
                },
                Need::Override { roles: r, reasons } => NeedCard::Override {
                    roles: roles(r),
                    reasons: reasons.clone(),
                },
            })
            .collect(),
        screen: p.ask.screen.clone(),
        screen_hash: hex::encode(p.screen_hash),
        expires: time_text(p.expires),
        staff: Vec::new(),
        open_at: Vec::new(),
    }
}

/// An active alarm on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardAlarm {
    /// `high`, `medium` or `low` (IEC 60601-1-8): the colour.
    pub priority: String,
    /// Words.
    pub text: String,
}

/// One pump, as the home screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpCard {
    /// Port (bed position) name.
    pub pump: String,
    /// `connecting`, `port_open`, `online` or `offline`.
    pub link: String,
    /// Why offline, in words.
    pub offline_reason: Option<String>,
    /// `idle`, `awaiting_authorisation`, `infusing`, `bolus`, `paused`,
    /// `alarm`, while online.
    pub state: Option<String>,
    /// The drug in Tall Man lettering from the library, else the pump's id.
    pub drug: Option<String>,
    /// The rate as the pump runs it, e.g. "50 micrograms/h" or "2 mL/h".
    pub rate: Option<String>,
    /// Volume left in the container, e.g. "49.98 mL".
    pub volume_remaining: Option<String>,
    /// Whether the pump runs the gateway's library (null: not known yet).
    pub library_matches: Option<bool>,
    /// Active alarms, highest priority first.
    pub alarms: Vec<CardAlarm>,
    /// The last programme decided on this pump: `authorised`,
    /// `denied (hard_limit)`, `denied (block)`, `awaiting confirmation`...
    #[serde(default)]
    pub last_decision: Option<String>,
    /// Its first reason, with its code (`DOSE_RATE_LIMIT: ...`), for a
    /// denial.
    #[serde(default)]
    pub last_reason: Option<String>,
}

/// The card of one pump.
pub fn card(p: &PumpView) -> PumpCard {
    let online = p.link == LinkState::Online;
    let status = p.status.as_ref().filter(|_| online);
    PumpCard {
        pump: p.name.to_string(),
        link: crate::format::name(&p.link),
        offline_reason: p.offline_reason.clone(),
        state: status.map(|s| crate::format::name(&s.state)),
        drug: p
            .drug_name
            .clone()
            .or_else(|| status.and_then(|s| s.drug.clone())),
        rate: status
            .filter(|s| s.state != PumpState::Idle)
            .and_then(|s| s.dose_rate.as_deref().or(s.flow_rate.as_deref()))
            .map(|r| {
                // The pump's text, shown by the display rules when it reads.
                crate::units::parse_rate(r).map_or_else(|_| r.to_owned(), crate::format::rate)
            }),
        volume_remaining: status.and_then(|s| s.volume_remaining.as_deref()).map(|v| {
            crate::units::parse_volume(v).map_or_else(|_| v.to_owned(), crate::format::volume)
        }),
        library_matches: p.library_match,
        alarms: p
            .alarms
            .iter()
            .map(|a| CardAlarm {
                priority: crate::format::name(&a.priority),
                text: a.text.clone(),
            })
            .collect(),
        last_decision: p.last_verdict.as_ref().map(|v| v.decision.clone()),
        last_reason: p
            .last_verdict
            .as_ref()
            .map(|v| v.reason.clone())
            .filter(|r| !r.is_empty()),
    }
}

/// Every pump's card. While a pump's new container waits for the blind
/// re-entry of its label, its card shows no rate and no volume: nothing on
/// any screen gives the programmed concentration away.
pub fn cards(snapshot: &Snapshot) -> Vec<PumpCard> {
    snapshot
        .pumps
        .iter()
        .map(|p| {
            let mut c = card(p);
            let blind = snapshot.confirmations.iter().any(|open| {
                open.pump == c.pump
                    && open
                        .needs
                        .iter()
                        .any(|n| matches!(n, NeedCard::Concentration { .. }))
            });
            if blind {
                c.rate = None;
                c.volume_remaining = None;
            }
            c
        })
        .collect()
}

/// The status message for a snapshot.
pub fn status(snapshot: &Snapshot, now: OffsetDateTime) -> ToTerminal {
    ToTerminal::Status {
        at: time_text(now),
        library: snapshot.library_version.map(|v| format!("version {v}")),
        pumps: cards(snapshot),
    }
}

/// An error line.
pub fn error(code: &str, message: impl Into<String>, fatal: bool) -> ToTerminal {
    ToTerminal::Error {
        code: code.to_owned(),
        message: message.into(),
        fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_carries_the_last_decision_and_its_reason() {
        let mut view = PumpView::new("pump-1".into());
        view.last_verdict = Some(crate::gateway::view::VerdictSummary {
            at: time::macros::datetime!(2026-11-22 03:00 UTC),
            request: 4,
            drug: "fentaNYL".into(),
            decision: "denied (hard_limit)".into(),
            reason: "BOLUS_DOSE_LIMIT: Bolus dose 150 micrograms is over the HARD maximum of 100 micrograms by 50 micrograms, 1.5 times the limit.".into(),
        });
        let c = card(&view);
        assert_eq!(c.last_decision.as_deref(), Some("denied (hard_limit)"));
        assert!(
            c.last_reason
                .unwrap()
                .starts_with("BOLUS_DOSE_LIMIT: Bolus dose 150")
        );
        let authorised = PumpView::new("pump-2".into());
        assert_eq!(card(&authorised).last_reason, None);
    }

    #[test]
    fn messages_are_tagged_json_lines() {
        let hello: FromTerminal =
            serde_json::from_str(r#"{"type":"hello","protocol":1,"terminal":"bed-12"}"#).unwrap();
        assert_eq!(
            hello,
            FromTerminal::Hello {
                protocol: 1,
                terminal: "bed-12".into()
            }
        );
        assert!(serde_json::from_str::<FromTerminal>(r#"{"type":"hello","protocol":1}"#).is_err());
        assert!(serde_json::from_str::<FromTerminal>(r#"{"type":"launch"}"#).is_err());
        let e = serde_json::to_string(&error("VERSION", "speak 1", true)).unwrap();
        assert_eq!(
            e,
            r#"{"type":"error","code":"VERSION","message":"speak 1","fatal":true}"#
        );
    }

    #[test]
    fn practice_is_said_only_by_a_practice_gateway_and_its_board_round_trips() {
        let welcome = |practice| ToTerminal::Welcome {
            protocol: 1,
            gateway: "g".into(),
            care_area: "a".into(),
            practice,
        };
        let plain = serde_json::to_string(&welcome(false)).unwrap();
        assert!(!plain.contains("practice"), "{plain}");
        let marked = serde_json::to_string(&welcome(true)).unwrap();
        assert!(marked.ends_with(r#","practice":true}"#), "{marked}");
        let board = ToTerminal::Practice(PracticeBoard {
            case: 2,
            cases: 4,
            title: "a fentanyl bolus for pain".into(),
            summary: vec![PracticeCase {
                case: 1,
                title: "t".into(),
                outcome: "caught".into(),
                what: "w".into(),
                by: "b".into(),
                without: "x".into(),
            }],
        });
        let line = serde_json::to_string(&board).unwrap();
        assert!(
            line.starts_with(r#"{"type":"practice","case":2,"cases":4,"#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<ToTerminal>(&line).unwrap(), board);
    }
}
