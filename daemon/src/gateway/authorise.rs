//! The gateway's answer to a programme request: fail safe first (no library,
//! a pump on another library, an unreadable programme), then the DERS
//! cross-check, then what people must confirm before a token is made.
//!
//! Confirmation comes in stages, so that the blind re-entry of a newly
//! loaded container's concentration never shows the programmed value: first
//! the concentration (when the container is new on this pump), then the
//! bolus and any soft-limit override together.

use time::OffsetDateTime;

use crate::ders::{self, Delivery, History, Ordered, Outcome, Programme, Verdict};
use crate::library::ActiveLibrary;
use crate::pump::{Decision, DenyReason, Identity};
use crate::terminal::confirm::Need;
use crate::units::Concentration;

/// Gateway-level denial codes (beside the cross-check's codes).
pub mod codes {
    /// The programme could not be read.
    pub const MALFORMED_PROGRAMME: &str = "MALFORMED_PROGRAMME";
    /// The gateway has no library.
    pub const NO_LIBRARY: &str = "NO_LIBRARY";
    /// The pump runs another library file than the gateway.
    pub const LIBRARY_HASH_MISMATCH: &str = "LIBRARY_HASH_MISMATCH";
    /// A person must confirm and no terminal can ask them.
    pub const CONFIRMATION_UNAVAILABLE: &str = "CONFIRMATION_UNAVAILABLE";
    /// The blind re-entry of the container's label differs from the programme.
    pub const CONCENTRATION_MISMATCH: &str = "CONCENTRATION_MISMATCH";
    /// Nobody confirmed in time.
    pub const CONFIRMATION_EXPIRED: &str = "CONFIRMATION_EXPIRED";
    /// A person at the terminal declined the programme.
    pub const DECLINED: &str = "DECLINED";
    /// The confirmation was withdrawn (the terminal left, the pump went
    /// offline, or the gateway stopped).
    pub const CONFIRMATION_WITHDRAWN: &str = "CONFIRMATION_WITHDRAWN";
    /// No random token could be made.
    pub const TOKEN_UNAVAILABLE: &str = "TOKEN_UNAVAILABLE";
    /// Another request from the same pump is still being checked.
    pub const BUSY: &str = "BUSY";
    /// The decision could not be committed to the event log.
    pub const STORE_UNAVAILABLE: &str = "STORE_UNAVAILABLE";
    /// The gateway could not check the programme (it is stopping, or the
    /// core did not answer).
    pub const GATEWAY_UNAVAILABLE: &str = "GATEWAY_UNAVAILABLE";
}

/// What the decision is based on.
#[derive(Debug)]
pub struct Request<'a> {
    /// The active library, if any.
    pub library: Option<&'a ActiveLibrary>,
    /// The gateway's care area.
    pub care_area: &'a str,
    /// The pump as it introduced itself.
    pub pump: Option<&'a Identity>,
    /// The programme, or why it could not be read.
    pub programme: &'a Result<Programme, String>,
    /// Recent deliveries of the same drug.
    pub history: &'a History,
    /// The container a nurse last confirmed on this pump, if any.
    pub confirmed: Option<&'a ConfirmedLoad>,
    /// The pump's open order of the programme's kind, if any.
    pub order: Option<&'a Ordered>,
}

/// A container whose concentration a nurse confirmed on one pump (by blind
/// re-entry of its label). Later programmes from the same load need no new
/// confirmation of it; a new load (or no load count at all) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedLoad {
    /// The drug id.
    pub drug: String,
    /// The concentration confirmed.
    pub concentration: Concentration,
    /// The controller's load count.
    pub load: u32,
}

impl ConfirmedLoad {
    /// The load a programme is from, if it can be remembered (it has a
    /// load count).
    pub fn of(p: &Programme) -> Option<ConfirmedLoad> {
        Some(ConfirmedLoad {
            drug: p.drug.clone(),
            concentration: p.container.concentration,
            load: p.container.load?,
        })
    }

    /// Whether `p` runs from this very container as confirmed.
    fn covers(&self, p: &Programme) -> bool {
        let c = p.container.concentration;
        p.container.load == Some(self.load)
            && p.drug == self.drug
            && c.amount() == self.concentration.amount()
            && c.volume() == self.concentration.volume()
    }
}

/// What happens next to a request.
#[derive(Debug)]
pub enum Next {
    /// The pump is told this now.
    Decided(Decision),
    /// People must confirm, stage by stage (each stage one screen), before
    /// a token is made.
    Confirm(Vec<Vec<Need>>),
}

/// What happens next and the verdict behind it (none when the check never
/// ran).
#[derive(Debug)]
pub struct Answer {
    /// The decision, or the confirmations it waits for.
    pub next: Next,
    /// The cross-check's verdict.
    pub verdict: Option<Verdict>,
}

/// A denial with one reason.
pub fn deny(outcome: &str, code: &str, message: String) -> Decision {
    Decision::Deny {
        outcome: outcome.to_owned(),
        reasons: vec![DenyReason {
            code: code.to_owned(),
            ihe: None,
            message,
        }],
    }
}

/// Decides; `token` makes a fresh single-use token.
pub fn decide(
    r: &Request<'_>,
    now: OffsetDateTime,
    validity: time::Duration,
    token: impl FnOnce() -> Option<[u8; 16]>,
) -> Answer {
    let none = |decision| Answer {
        next: Next::Decided(decision),
        verdict: None,
    };
    let programme = match r.programme {
        Ok(p) => p,
        Err(e) => {
            return none(deny(
                "block",
                codes::MALFORMED_PROGRAMME,
                format!("The programme could not be read: {e}"),
            ));
        }
    };
    let Some(library) = r.library else {
        return none(deny(
            "unavailable",
            codes::NO_LIBRARY,
            "This gateway has no drug library, so it authorises nothing.".to_owned(),
        ));
    };
    if let Some(refusal) = care_area_refusal(r, programme) {
        return none(refusal);
    }
    let pump_hash = r.pump.and_then(|p| p.library_hash);
    if pump_hash != Some(library.hash) {
        let pump_version = r.pump.and_then(|p| p.library_version);
        let message = match (pump_version, pump_hash) {
            // Same number, other bytes: only the hashes tell them apart.
            (Some(v), Some(hash)) if v == library.version() => format!(
                "The pump runs a library version {v} file that differs from the gateway's (SHA-256 {} on the pump, {} on the gateway); wait for the library transfer to finish.",
                hex::encode(&hash[..8]),
                library.short_hash()
            ),
            (Some(v), _) => format!(
                "The pump runs library version {v}, not the gateway's library version {} ({}); wait for the library transfer to finish.",
                library.version(),
                library.short_hash()
            ),
            (None, _) => format!(
                "The pump runs no library, not the gateway's library version {} ({}); wait for the library transfer to finish.",
                library.version(),
                library.short_hash()
            ),
        };
        return none(deny("block", codes::LIBRARY_HASH_MISMATCH, message));
    }
    let verdict = cross_check(&library.library, r.care_area, programme, r.history, r.order);
    let next = match verdict.outcome {
        Outcome::Block | Outcome::HardLimit => Next::Decided(Decision::Deny {
            outcome: outcome_name(verdict.outcome),
            reasons: reasons_of(&verdict),
        }),
        Outcome::SoftLimit | Outcome::Pass => {
            let stages = stages(library, r, programme, &verdict);
            if stages.is_empty() {
                Next::Decided(authorise(now, validity, token))
            } else {
                Next::Confirm(stages)
            }
        }
    };
    Answer {
        next,
        verdict: Some(verdict),
    }
}

/// The cross-check of a programme: the library's rules, then (where the
/// care area uses orders) the prescriber's order, in one verdict.
pub fn cross_check(
    library: &crate::library::Library,
    care_area: &str,
    programme: &Programme,
    history: &History,
    order: Option<&Ordered>,
) -> Verdict {
    let verdict = ders::check(library, care_area, programme, history);
    let Some(area) = library.care_area(care_area) else {
        return verdict;
    };
    let name = area
        .drug(&programme.drug)
        .map_or(programme.drug.as_str(), |d| d.display_name.as_str());
    let order = order.filter(|_| area.orders != crate::library::OrderPolicy::NotUsed);
    let against = ders::against_order(area.orders, programme, order, name);
    verdict.with(order, against)
}

/// A fresh authorisation, or a denial when no token can be made.
pub fn authorise(
    now: OffsetDateTime,
    validity: time::Duration,
    token: impl FnOnce() -> Option<[u8; 16]>,
) -> Decision {
    match token() {
        Some(token) => Decision::Authorise {
            token,
            expires: now + validity,
        },
        None => deny(
            "unavailable",
            codes::TOKEN_UNAVAILABLE,
            "The gateway could not make an authorisation token.".to_owned(),
        ),
    }
}

/// The verdict's reasons as the pump is told them.
pub fn reasons_of(verdict: &Verdict) -> Vec<DenyReason> {
    verdict
        .reasons
        .iter()
        .map(|reason| DenyReason {
            code: code_name(reason.code),
            ihe: reason.ihe_code,
            message: reason.message.clone(),
        })
        .collect()
}

/// The confirmations a passing or soft-limited programme needs, in stages:
/// the container's concentration first (alone, so its screen can hide the
/// programmed value), then the bolus and the override together.
fn stages(
    library: &ActiveLibrary,
    r: &Request<'_>,
    p: &Programme,
    verdict: &Verdict,
) -> Vec<Vec<Need>> {
    let mut stages = Vec::new();
    if !r.confirmed.is_some_and(|c| c.covers(p)) {
        stages.push(vec![Need::Concentration {
            programmed: p.container.concentration,
        }]);
    }
    let drug = library
        .library
        .care_area(r.care_area)
        .and_then(|a| a.drug(&p.drug));
    let mut second = Vec::new();
    if let Delivery::Bolus { .. } = p.delivery {
        second.push(match drug {
            Some(drug) => Need::Bolus {
                drug: drug.display_name.clone(),
                high_alert: drug.high_alert,
                rule: crate::staff::policy::bolus_rule(drug),
            },
            // The cross-check blocks a drug the library lacks; were one to
            // get here, it would need the strictest rule.
            None => Need::Bolus {
                drug: p.drug.clone(),
                high_alert: true,
                rule: crate::staff::policy::BolusRule {
                    roles: vec![crate::library::Role::Doctor],
                    people: 1,
                },
            },
        });
    }
    if verdict.outcome == Outcome::SoftLimit {
        let policy = &library.library.policy;
        second.push(Need::Override {
            roles: policy.soft_override_roles.clone(),
            reasons: policy.override_reasons.clone(),
        });
    }
    if !second.is_empty() {
        stages.push(second);
    }
    stages
}

/// A denial when the pump is not set to this bed's care area (its limits
/// are the ones checked); it says so at the handshake or in the programme.
fn care_area_refusal(r: &Request<'_>, programme: &Programme) -> Option<Decision> {
    let pump_area = r
        .pump
        .and_then(|p| p.care_area.as_deref())
        .or(programme.care_area.as_deref());
    if pump_area != Some(r.care_area) {
        let says = pump_area.map_or_else(
            || "does not say which care area it is set to".to_owned(),
            |a| format!("is set to care area {a:?}"),
        );
        return Some(Decision::Deny {
            outcome: "block".to_owned(),
            reasons: vec![DenyReason {
                code: "CARE_AREA_MISMATCH".to_owned(),
                ihe: Some(9021),
                message: format!(
                    "The pump {says}; this bed is {:?}. Set the pump's care area and programme again.",
                    r.care_area
                ),
            }],
        });
    }
    None
}

/// The stable name of a cross-check code (`DOSE_RATE_LIMIT`).
pub fn code_name(code: ders::Code) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("codes serialise as strings")
}

/// The stable name of an outcome (`soft_limit`).
pub fn outcome_name(outcome: Outcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("outcomes serialise as strings")
}
