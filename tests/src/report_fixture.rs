//! A known month of two gateways' logs for the CQI report's tests: every
//! programme, verdict, confirmation and library event written out here,
//! so that each figure of the report can be counted by hand (the counts
//! are in [`month`]'s comment and checked in `tests/tests/report.rs`).

use pumpgw::sim::fleet;
use pumpgw::store::Event;
use pumpgw::store::record::LoggedReason;
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// A gateway's log being written.
struct Log {
    gateway: String,
    care_area: &'static str,
    events: Vec<(OffsetDateTime, Option<String>, Event)>,
    request: u32,
}

/// How a programme ends.
enum Ends {
    /// Authorised.
    Given,
    /// Denied with this outcome.
    Denied(&'static str),
}

impl Log {
    fn new(gateway: String, care_area: &'static str) -> Log {
        Log {
            gateway,
            care_area,
            events: Vec::new(),
            request: 0,
        }
    }

    fn push(&mut self, at: OffsetDateTime, pump: &str, event: Event) {
        self.events.push((at, Some(pump.to_owned()), event));
    }

    fn gateway_event(&mut self, at: OffsetDateTime, event: Event) {
        self.events.push((at, None, event));
    }

    /// A programme of `drug` (`bolus` or not), its verdict (`None`: the
    /// check never ran) with one reason of `code` and `limit` when not a
    /// pass, the confirmations `stages` (stage, signer, role, reason), and
    /// its end; returns the time after it.
    #[allow(
        clippy::too_many_arguments,
        clippy::too_many_lines,
        reason = "a fixture line reads as one row; a programme's records in order"
    )]
    fn programme(
        &mut self,
        at: OffsetDateTime,
        pump: &str,
        drug: &str,
        bolus: bool,
        verdict: Option<(&str, &str, &str)>,
        stages: &[(&str, &str, &str, Option<&str>)],
        refused_label: bool,
        ends: &Ends,
    ) {
        self.request += 1;
        let request = self.request;
        let hash = format!("{:064x}", u64::from(request) + 7_000);
        let kind = if bolus { "bolus" } else { "continuous" };
        let mut t = at;
        let mut next = |step: i64| {
            t += Duration::seconds(step);
            t
        };
        self.push(
            next(0),
            pump,
            Event::ProgrammeRequested {
                request,
                programme_hash: hash.clone(),
                programme: json!({"drug": drug, "care_area": self.care_area, "delivery": {"kind": kind}}),
            },
        );
        if let Some((outcome, code, limit)) = verdict {
            let reasons = if outcome == "pass" {
                json!([])
            } else {
                json!([{"code": code, "outcome": outcome, "limit": limit, "message": "fixture"}])
            };
            self.push(
                next(0),
                pump,
                Event::Verdict {
                    request,
                    outcome: outcome.to_owned(),
                    reasons,
                    computed: Vec::new(),
                    order: None,
                },
            );
        }
        for (i, (stage, who, role, reason)) in stages.iter().enumerate() {
            let confirmation = u64::from(request) * 10 + i as u64;
            self.push(
                next(1),
                pump,
                Event::ConfirmationRequested {
                    request,
                    confirmation,
                    stage: (*stage).to_owned(),
                    screen_hash: hash.clone(),
                    expires: at + Duration::minutes(10),
                },
            );
            self.push(
                next(20),
                pump,
                Event::PinChecked {
                    staff_id: (*who).to_owned(),
                    role: Some((*role).to_owned()),
                    purpose: format!("{stage} confirmation"),
                    result: "accepted".to_owned(),
                    failures: 0,
                    locked_until: None,
                },
            );
            self.push(
                next(1),
                pump,
                Event::Confirmed {
                    request,
                    confirmation,
                    stage: (*stage).to_owned(),
                    by: vec![(*who).to_owned()],
                    reason: reason.map(str::to_owned),
                    terminal: "bed-screen".to_owned(),
                    entered: None,
                },
            );
        }
        if refused_label {
            self.push(
                next(30),
                pump,
                Event::ConfirmationRefused {
                    request,
                    confirmation: u64::from(request) * 10 + 9,
                    code: "CONCENTRATION_MISMATCH".to_owned(),
                    message: "fixture".to_owned(),
                    closed: true,
                    by: vec!["n.okafor".to_owned()],
                    terminal: Some("bed-screen".to_owned()),
                },
            );
        }
        let end = match ends {
            Ends::Given => Event::Authorised {
                request,
                programme_hash: hash,
                token: format!("{request:032x}"),
                expires: at + Duration::minutes(10),
            },
            Ends::Denied(outcome) => Event::Denied {
                request,
                programme_hash: hash,
                outcome: (*outcome).to_owned(),
                reasons: vec![LoggedReason {
                    code: "FIXTURE".to_owned(),
                    ihe: None,
                    message: "fixture".to_owned(),
                }],
            },
        };
        self.push(next(1), pump, end);
    }

    fn link_up(&mut self, at: OffsetDateTime, pump: &str) {
        self.push(
            at,
            pump,
            Event::LinkUp {
                manufacturer: "Acme".to_owned(),
                model: "SP-1".to_owned(),
                serial: format!("{}-{pump}", self.gateway),
                firmware: "1.0".to_owned(),
                protocol: "pumpgw-link/1".to_owned(),
                pump_library_version: Some(12),
                pump_library_hash: Some("ab".repeat(32)),
            },
        );
    }

    fn installed(&mut self, at: OffsetDateTime, pump: &str, matches: bool) {
        self.push(
            at,
            pump,
            Event::LibraryInstalledOnPump {
                version: if matches { 13 } else { 12 },
                hash: "ab".repeat(32),
                matches,
            },
        );
    }

    fn records(mut self) -> (String, Vec<Vec<u8>>) {
        self.events.sort_by_key(|e| e.0);
        let records = fleet::chain(&self.gateway, self.care_area, Some(13), self.events);
        (self.gateway, records)
    }
}

/// The period the month covers: 1 November 2026 to 1 December 2026.
pub const FROM: &str = "2026-11-01";
/// Its end (excluded).
pub const TO: &str = "2026-12-01";

/// Two gateways' logs for November 2026 (and one programme on 31
/// October, three records, outside it):
///
/// `icu-1` (adult-icu), pumps p1 and p2:
/// - 20 fentanyl infusions that pass, given (1 to 20 November);
/// - 5 fentanyl boluses that pass, confirmed by a doctor, given;
/// - 4 noradrenaline infusions over `DOSE_RATE_LIMIT soft_max`, overridden
///   by a nurse, "clinical judgement", given;
/// - 2 more, overridden by a doctor, "patient response", given;
/// - 3 fentanyl infusions over `DOSE_RATE_LIMIT hard_max`, denied;
/// - 2 fentanyl infusions at a concentration not in the library, blocked;
/// - 1 fentanyl infusion that passes, whose label typed at the terminal
///   differs: denied;
/// - 2 programmes the check never ran on (no verdict), denied;
/// - p2 off the active library on 10 November from 10:00 to 12:30.
///
/// `picu-1` (paed-icu), pump p1:
/// - 10 morphine infusions that pass, given;
/// - 3 morphine infusions over `DOSE_RATE_LIMIT soft_max`, overridden by a
///   nurse, "clinical judgement", given;
/// - 1 morphine bolus confirmed by a nurse, given;
/// - a library activated on 15 November at 08:00 while p1 was online;
///   p1 reports it installed 30 s later.
///
/// Hence: 47 infusions and 6 boluses (53); 45 of the 47 infusions checked
/// (95.7%, ISMP met; the 6 boluses all checked);
/// alerts 9 soft, 3 hard, 2 blocks (14; 26.4 per 100); 9 overrides; 3
/// hard-limit stops; 3 concentrations caught (2 not in the library, 1
/// label); 6 boluses confirmed, 5 by a doctor; 2 pumps off the library
/// (9,000 s and 30 s).
pub fn month() -> Vec<(String, Vec<Vec<u8>>)> {
    month_of("icu-1", "picu-1")
}

/// [`month`] for two other gateways (for volume: many copies of the
/// month, each its own pair of gateways).
#[allow(
    clippy::too_many_lines,
    reason = "the month as one list of rows, as its comment counts them"
)]
pub fn month_of(icu_gateway: &str, picu_gateway: &str) -> Vec<(String, Vec<Vec<u8>>)> {
    let day = |d: u8, h: u8| {
        datetime!(2026-11-01 00:00 UTC)
            + Duration::days(i64::from(d) - 1)
            + Duration::hours(i64::from(h))
    };
    let pass = Some(("pass", "", ""));
    let soft = Some(("soft_limit", "DOSE_RATE_LIMIT", "soft_max"));
    let hard = Some(("hard_limit", "DOSE_RATE_LIMIT", "hard_max"));
    let block = Some(("block", "CONCENTRATION_NOT_IN_LIBRARY", ""));
    let mut icu = Log::new(icu_gateway.to_owned(), "adult-icu");
    icu.link_up(day(1, 0), "p1");
    icu.link_up(day(1, 0), "p2");
    for d in 1..=20 {
        icu.programme(
            day(d, 9),
            "p1",
            "fentanyl",
            false,
            pass,
            &[],
            false,
            &Ends::Given,
        );
    }
    let doctor_bolus = [("bolus", "d.patel", "doctor", None)];
    for d in 1..=5 {
        icu.programme(
            day(d, 14),
            "p2",
            "fentanyl",
            true,
            pass,
            &doctor_bolus,
            false,
            &Ends::Given,
        );
    }
    let nurse = [("override", "n.okafor", "nurse", Some("clinical judgement"))];
    let doctor = [("override", "d.patel", "doctor", Some("patient response"))];
    for d in 6..=9 {
        icu.programme(
            day(d, 15),
            "p2",
            "noradrenaline",
            false,
            soft,
            &nurse,
            false,
            &Ends::Given,
        );
    }
    for d in 21..=22 {
        icu.programme(
            day(d, 15),
            "p2",
            "noradrenaline",
            false,
            soft,
            &doctor,
            false,
            &Ends::Given,
        );
    }
    for d in 23..=25 {
        icu.programme(
            day(d, 16),
            "p1",
            "fentanyl",
            false,
            hard,
            &[],
            false,
            &Ends::Denied("hard_limit"),
        );
    }
    for d in 26..=27 {
        icu.programme(
            day(d, 16),
            "p1",
            "fentanyl",
            false,
            block,
            &[],
            false,
            &Ends::Denied("block"),
        );
    }
    icu.programme(
        day(28, 16),
        "p1",
        "fentanyl",
        false,
        pass,
        &[],
        true,
        &Ends::Denied("block"),
    );
    for d in 29..=30 {
        icu.programme(
            day(d, 16),
            "p1",
            "fentanyl",
            false,
            None,
            &[],
            false,
            &Ends::Denied("unavailable"),
        );
    }
    icu.installed(day(10, 10), "p2", false);
    icu.installed(day(10, 10) + Duration::minutes(150), "p2", true);

    let mut picu = Log::new(picu_gateway.to_owned(), "paed-icu");
    picu.link_up(day(1, 0) - Duration::days(2), "p1");
    // Outside the period: 31 October.
    picu.programme(
        day(0, 12),
        "p1",
        "morphine",
        false,
        pass,
        &[],
        false,
        &Ends::Given,
    );
    for d in 1..=10 {
        picu.programme(
            day(d, 11),
            "p1",
            "morphine",
            false,
            pass,
            &[],
            false,
            &Ends::Given,
        );
    }
    for d in 11..=13 {
        picu.programme(
            day(d, 11),
            "p1",
            "morphine",
            false,
            soft,
            &nurse,
            false,
            &Ends::Given,
        );
    }
    let nurse_bolus = [("bolus", "n.okafor", "nurse", None)];
    picu.programme(
        day(14, 11),
        "p1",
        "morphine",
        true,
        pass,
        &nurse_bolus,
        false,
        &Ends::Given,
    );
    picu.gateway_event(
        day(15, 8),
        Event::LibraryActivated {
            version: 13,
            previous: Some(12),
            by: "pharmacy".to_owned(),
            reason: "monthly release".to_owned(),
        },
    );
    picu.installed(day(15, 8) + Duration::seconds(30), "p1", true);
    vec![icu.records(), picu.records()]
}
