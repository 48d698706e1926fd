//! The gateway's answer to a programme request: fail safe first (no library,
//! a pump on another library, an unreadable programme), then the DERS
//! cross-check, then whether a person must confirm.
//!
//! Until the bedside terminal exists nobody can confirm, so anything that
//! needs a confirmation or an override is denied with
//! `CONFIRMATION_UNAVAILABLE`. Only a passing programme that needs no
//! confirmation is authorised.

use time::OffsetDateTime;

use crate::ders::{self, Delivery, History, Outcome, Programme, Verdict};
use crate::library::ActiveLibrary;
use crate::pump::{Decision, DenyReason, Identity};

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
    /// No random token could be made.
    pub const TOKEN_UNAVAILABLE: &str = "TOKEN_UNAVAILABLE";
    /// Another request from the same pump is still being checked.
    pub const BUSY: &str = "BUSY";
    /// The decision could not be committed to the event log.
    pub const STORE_UNAVAILABLE: &str = "STORE_UNAVAILABLE";
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
}

/// A decision and the verdict behind it (none when the check never ran).
#[derive(Debug)]
pub struct Answer {
    /// What the pump is told.
    pub decision: Decision,
    /// The cross-check's verdict.
    pub verdict: Option<Verdict>,
}

fn deny(outcome: &str, code: &str, message: String) -> Decision {
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
        decision,
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
        let pump_has = match r.pump.and_then(|p| p.library_version) {
            Some(v) => format!("library version {v}"),
            None => "no library".to_owned(),
        };
        return none(deny(
            "block",
            codes::LIBRARY_HASH_MISMATCH,
            format!(
                "The pump runs {pump_has}, not the gateway's library version {} ({}); wait for the library transfer to finish.",
                library.version(),
                library.short_hash()
            ),
        ));
    }
    let verdict = ders::check(&library.library, r.care_area, programme, r.history);
    let mut reasons: Vec<DenyReason> = verdict
        .reasons
        .iter()
        .map(|reason| DenyReason {
            code: code_name(reason.code),
            ihe: reason.ihe_code,
            message: reason.message.clone(),
        })
        .collect();
    let decision = match verdict.outcome {
        Outcome::Block | Outcome::HardLimit => Decision::Deny {
            outcome: outcome_name(verdict.outcome),
            reasons,
        },
        Outcome::SoftLimit => {
            reasons.push(DenyReason {
                code: codes::CONFIRMATION_UNAVAILABLE.to_owned(),
                ihe: None,
                message: "A soft limit can only be overridden with a reason at the bedside terminal, which this gateway does not have yet.".to_owned(),
            });
            Decision::Deny {
                outcome: outcome_name(verdict.outcome),
                reasons,
            }
        }
        Outcome::Pass => match confirmation_needed(library, r.care_area, programme) {
            Some(why) => deny("unavailable", codes::CONFIRMATION_UNAVAILABLE, why),
            None => match token() {
                Some(token) => Decision::Authorise {
                    token,
                    expires: now + validity,
                },
                None => deny(
                    "unavailable",
                    codes::TOKEN_UNAVAILABLE,
                    "The gateway could not make an authorisation token.".to_owned(),
                ),
            },
        },
    };
    Answer {
        decision,
        verdict: Some(verdict),
    }
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

/// Why a passing programme still needs a person, if it does.
fn confirmation_needed(library: &ActiveLibrary, care_area: &str, p: &Programme) -> Option<String> {
    let Delivery::Bolus { .. } = p.delivery else {
        return None;
    };
    let drug = library
        .library
        .care_areas
        .iter()
        .find(|a| a.id == care_area)
        .and_then(|a| a.drugs.iter().find(|d| d.id == p.drug));
    // The same rule the terminal will apply (staff::policy).
    let who = match drug.map(crate::staff::policy::bolus_rule) {
        Some(rule) => crate::staff::policy::who_confirms(&rule),
        None => "a doctor's confirmation".to_owned(),
    };
    Some(format!(
        "A bolus needs {who} at the bedside terminal, which this gateway does not have yet."
    ))
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
