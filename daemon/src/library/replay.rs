//! The what-if replay (`pumpgwd library replay CANDIDATE --events FILE...`):
//! every programme in one or many gateways' exported logs, checked again
//! against a candidate library, and which decisions would change (pass to
//! soft limit, soft to hard...), by drug, care area and limit, with the
//! programmes listed. What the pharmacist asks before releasing a
//! library: what would this have stopped, and what would it have let
//! through?
//!
//! Only the library's own rules are compared: a reason from the bed's
//! history (cumulative limits) or from a prescriber's order is left out of
//! both sides, since a replay has neither.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::model::Library;
use crate::ders::{self, Code, Outcome, Programme};

/// One programme whose decision would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// Gateway, pump (port) and the pump's request id.
    pub gateway: String,
    /// The pump's port.
    pub pump: String,
    /// The request.
    pub request: u64,
    /// When it was requested (the record's time).
    pub at: String,
    /// Its drug (library id) and care area.
    pub drug: String,
    /// The care area.
    pub care_area: String,
    /// The logged outcome (library rules only).
    pub was: Outcome,
    /// The candidate's.
    pub now: Outcome,
    /// Whether it was given (authorised).
    pub given: bool,
    /// The limit or rule behind the new outcome (`DOSE_RATE_LIMIT
    /// hard_max`), or behind the old one when it eased.
    pub limit: String,
    /// The candidate's first reason, in words (empty when it passes).
    pub reason: String,
}

/// What the replay found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// The candidate's version.
    pub candidate_version: u64,
    /// Programmes checked again.
    pub programmes: usize,
    /// Of which would change.
    pub changed: Vec<Changed>,
    /// Counts by transition (`pass -> soft_limit`).
    pub transitions: BTreeMap<String, usize>,
}

impl Replay {
    /// True when a programme that was given would now be blocked or stop
    /// at a hard limit.
    pub fn blocks_what_was_given(&self) -> bool {
        self.changed
            .iter()
            .any(|c| c.given && c.now >= Outcome::HardLimit)
    }

    /// For people: the counts, then the changes by drug, care area and
    /// limit, each programme listed.
    pub fn text(&self) -> String {
        let mut lines = vec![format!(
            "Replayed {} programme(s) against candidate library version {}: {} decision(s) would change.",
            self.programmes,
            self.candidate_version,
            self.changed.len()
        )];
        for (t, n) in &self.transitions {
            lines.push(format!("  {t}: {n}"));
        }
        let mut groups: BTreeMap<(&str, &str, &str), Vec<&Changed>> = BTreeMap::new();
        for c in &self.changed {
            groups
                .entry((c.drug.as_str(), c.care_area.as_str(), c.limit.as_str()))
                .or_default()
                .push(c);
        }
        for ((drug, area, limit), changes) in groups {
            lines.push(format!("{drug} in {area}, {limit}: {}", changes.len()));
            for c in changes {
                lines.push(format!(
                    "  {} {} request {} at {}: {} -> {}{}{}",
                    c.gateway,
                    c.pump,
                    c.request,
                    c.at,
                    name(c.was),
                    name(c.now),
                    if c.given { " (it was given)" } else { "" },
                    if c.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", c.reason)
                    }
                ));
            }
        }
        if self.blocks_what_was_given() {
            lines.push(
                "Something that was given would now be stopped: review before releasing."
                    .to_owned(),
            );
        }
        lines.join("\n") + "\n"
    }
}

fn name(o: Outcome) -> String {
    crate::format::name(&o)
}

/// Rules that need what a replay does not have.
fn replayable(code: Code) -> bool {
    !matches!(
        code,
        Code::CumulativeLimit | Code::OrderMismatch | Code::OrderMissing
    )
}

/// A logged programme, its verdict and whether it was given.
#[derive(Debug, Default)]
struct Logged {
    gateway: String,
    pump: String,
    care_area: String,
    at: String,
    request: u64,
    programme: Option<Value>,
    was: Option<Outcome>,
    given: bool,
}

/// Replays the records (as exported, oldest first, from any number of
/// gateways) against `candidate`.
pub fn replay(records: &[Value], candidate: &Library) -> Replay {
    let mut logged: Vec<Logged> = Vec::new();
    let mut by_request: HashMap<(String, String, u64), usize> = HashMap::new();
    for r in records {
        let text = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let Some(request) = r.get("request").and_then(Value::as_u64) else {
            continue;
        };
        let key = (text("gateway"), text("pump"), request);
        match text("type").as_str() {
            "programme_requested" => {
                by_request.insert(key, logged.len());
                logged.push(Logged {
                    gateway: text("gateway"),
                    pump: text("pump"),
                    care_area: text("care_area"),
                    at: text("at"),
                    request,
                    programme: r.get("programme").cloned(),
                    ..Logged::default()
                });
            }
            "verdict" => {
                if let Some(&i) = by_request.get(&key) {
                    logged[i].was = Some(library_outcome(r.get("reasons")));
                }
            }
            "authorised" => {
                if let Some(&i) = by_request.get(&key) {
                    logged[i].given = true;
                }
            }
            _ => {}
        }
    }
    let mut changed = Vec::new();
    let mut transitions = BTreeMap::new();
    let mut programmes = 0;
    for l in &logged {
        let (Some(raw), Some(was)) = (&l.programme, l.was) else {
            continue;
        };
        let Ok(mut p) = serde_json::from_value::<Programme>(raw.clone()) else {
            continue;
        };
        programmes += 1;
        // As if the candidate had been the library in use.
        p.library_version = candidate.version;
        let verdict = ders::check(candidate, &l.care_area, &p, &ders::History::default());
        let reasons: Vec<&ders::Reason> = verdict
            .reasons
            .iter()
            .filter(|r| replayable(r.code))
            .collect();
        let now = reasons
            .iter()
            .map(|r| r.outcome)
            .max()
            .unwrap_or(Outcome::Pass);
        if now == was {
            continue;
        }
        *transitions
            .entry(format!("{} -> {}", name(was), name(now)))
            .or_insert(0) += 1;
        let first = reasons.first();
        changed.push(Changed {
            gateway: l.gateway.clone(),
            pump: l.pump.clone(),
            request: l.request,
            at: l.at.clone(),
            drug: p.drug.clone(),
            care_area: l.care_area.clone(),
            was,
            now,
            given: l.given,
            limit: first.map_or_else(
                || "eased".to_owned(),
                |r| {
                    let code = crate::format::name(&r.code);
                    match &r.limit {
                        Some(limit) => format!("{code} {limit}"),
                        None => code,
                    }
                },
            ),
            reason: first.map(|r| r.message.clone()).unwrap_or_default(),
        });
    }
    Replay {
        candidate_version: candidate.version,
        programmes,
        changed,
        transitions,
    }
}

/// The outcome a logged verdict's reasons come to, library rules only.
fn library_outcome(reasons: Option<&Value>) -> Outcome {
    reasons
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            r.get("code")
                .and_then(|c| serde_json::from_value::<Code>(c.clone()).ok())
                .is_none_or(replayable)
        })
        .filter_map(|r| {
            r.get("outcome")
                .and_then(|o| serde_json::from_value::<Outcome>(o.clone()).ok())
        })
        .max()
        .unwrap_or(Outcome::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example(edit: impl Fn(&mut Value)) -> Library {
        let mut v: Value =
            serde_json::from_str(include_str!("../../../config/drug-library.example.json"))
                .expect("JSON");
        edit(&mut v);
        super::super::parse(&serde_json::to_vec(&v).expect("serialises"))
            .expect("valid")
            .0
    }

    /// A fentanyl infusion at `rate` on bed-1's pump-a, request `n`, with
    /// its logged verdict and (when `given`) its authorisation.
    fn logged(n: u64, rate: &str, outcome: &str, given: bool) -> Vec<Value> {
        // 2,500 micrograms in 50 mL: 50 micrograms a mL.
        let micrograms: u32 = rate
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a whole number of micrograms/h");
        let flow = format!("{} mL/h", f64::from(micrograms) / 50.0);
        let mut out = vec![
            json!({"type": "programme_requested", "gateway": "bed-1", "pump": "pump-a", "care_area": "adult-icu",
                   "at": "2026-12-01T10:00:00.000Z", "request": n, "programme": {
                "drug": "fentanyl", "library_version": 12, "requested_at": "2026-12-01T10:00:00Z",
                "container": {"concentration": "2500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "50 mL"},
                "delivery": {"kind": "continuous", "rate": rate, "pump_flow_rate": flow}}}),
            json!({"type": "verdict", "gateway": "bed-1", "pump": "pump-a", "request": n, "outcome": outcome,
                   "reasons": if outcome == "pass" { json!([]) } else { json!([{"outcome": outcome, "code": "DOSE_RATE_LIMIT"}]) }}),
        ];
        if given {
            out.push(
                json!({"type": "authorised", "gateway": "bed-1", "pump": "pump-a", "request": n}),
            );
        }
        out
    }

    #[test]
    fn a_lower_hard_limit_would_stop_what_was_given_and_says_where() {
        let mut records = logged(1, "50 micrograms/h", "pass", true);
        records.extend(logged(2, "300 micrograms/h", "soft_limit", true));
        // The candidate lowers fentanyl's hard maximum from 400 to 250.
        let candidate = example(|v| {
            v["version"] = json!(13);
            v["care_areas"][0]["drugs"][0]["continuous"]["hard_max"] = json!("250");
        });
        let r = replay(&records, &candidate);
        assert_eq!(r.programmes, 2);
        assert_eq!(r.changed.len(), 1, "{r:#?}");
        let c = &r.changed[0];
        assert_eq!(
            (c.request, c.was, c.now, c.given),
            (2, Outcome::SoftLimit, Outcome::HardLimit, true)
        );
        assert_eq!(c.limit, "DOSE_RATE_LIMIT hard_max");
        assert!(r.blocks_what_was_given());
        assert_eq!(r.transitions["soft_limit -> hard_limit"], 1);
        let text = r.text();
        assert!(
            text.contains("fentanyl in adult-icu, DOSE_RATE_LIMIT hard_max: 1"),
            "{text}"
        );
        assert!(text.contains("bed-1 pump-a request 2"), "{text}");
    }

    #[test]
    fn the_same_library_changes_nothing_and_history_or_orders_are_left_out() {
        let mut records = logged(1, "50 micrograms/h", "pass", true);
        // Logged as a cumulative stop: a replay has no history, so it is
        // not counted as a change.
        records.extend(logged(2, "50 micrograms/h", "pass", false));
        records[4]["reasons"] = json!([{"outcome": "hard_limit", "code": "CUMULATIVE_LIMIT"}]);
        let r = replay(&records, &example(|_| {}));
        assert_eq!(r.programmes, 2);
        assert!(r.changed.is_empty(), "{r:#?}");
        assert!(!r.blocks_what_was_given());
    }
}
