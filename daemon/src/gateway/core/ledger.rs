//! The bed's dose ledger: every authorisation the gateway issued (token,
//! pump, drug, concentration and what it lets the pump give), what the
//! pump's delivery events say became of it, and the amounts given.
//!
//! It owns the one definition of what counts as delivered
//! ([`Ledger::delivery`]): the live core calls it for every DELIVERY, and
//! the start of the daemon replays the event log through the same calls
//! ([`Ledger::replay`]), so a restart counts exactly what the run before
//! it counted, running infusions included. It hands the cross-check the
//! bed's exposure to a drug ([`Ledger::exposure`]).

use std::collections::HashMap;

use time::OffsetDateTime;
use tracing::warn;

use crate::ders::exposure::Request;
use crate::ders::{Delivered, History, Pending, Programme, Running};
use crate::pump::PumpId;
use crate::pump::event::DeliveryEventKind;
use crate::units::{Amount, AmountUnit, Concentration, Exact, parse_amount, parse_volume};

/// How long amounts given are kept: the longest cumulative window a
/// library may set (`window_minutes` at most 10,080, 7 days), so no valid
/// library's window is ever undercounted.
pub const HISTORY_KEPT: time::Duration =
    time::Duration::minutes(crate::library::MAX_WINDOW_MINUTES as i64);

/// A token the gateway issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The pump it was issued to.
    pub pump: PumpId,
    /// The pump's request.
    pub request: u32,
    /// The drug id.
    pub drug: String,
    /// The concentration authorised: delivered amounts are the volume the
    /// pump reports times this.
    pub concentration: Concentration,
    /// What it lets the pump give, at the worse of the pump's and the
    /// gateway's figures (as the cross-check counted it).
    pub gives: Request,
    /// When it was made: the delivery cannot have begun before.
    pub issued_at: OffsetDateTime,
    /// The pump must start before this.
    pub expires: OffsetDateTime,
    /// When the pump said it started.
    pub started: Option<OffsetDateTime>,
    /// Made in this run (its times are on this run's clock), not replayed
    /// from the log.
    pub live: bool,
    /// The volume the pump last said it had given under it, in mL.
    pub infused_ml: Option<Exact>,
}

/// What a delivery event did to the ledger, for the core to log and show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// Nothing to count (a start, a pause; or an end already counted).
    Nothing,
    /// An amount given was added to the drug's history.
    Given {
        /// The drug id.
        drug: String,
        /// What was counted: the gateway's figure, or the pump's where it
        /// says more.
        amount: Amount,
        /// The pump's own amount, when it disagrees with the gateway's
        /// by more than the cross-check's tolerance.
        disagreement: Option<Disagreement>,
    },
    /// The token is not this gateway's, or not this pump's and request:
    /// what the pump says it gave was counted as far as it can be.
    Unknown {
        /// Why it is not known.
        why: &'static str,
        /// The amount counted from the pump's own figure, if any.
        counted: Option<(String, Amount)>,
    },
}

/// The pump's amount and the gateway's, when they disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The volume infused times the authorised concentration.
    pub gateway: Amount,
    /// What the pump said.
    pub pump: Amount,
    /// The unit to show both in (the container's).
    pub unit: AmountUnit,
}

/// How long a pump must have been online, after a token expired unstarted,
/// before the token stops counting: a start the pump could not report at
/// once (the link was down) arrives in that time once it is back, because a
/// controller sends the events it kept, in order, after the handshake.
pub const START_REPORT_GRACE: time::Duration = time::Duration::seconds(30);

/// An amount given, and whether it was counted in this run.
#[derive(Debug, Clone, Copy)]
struct Given {
    delivered: Delivered,
    live: bool,
}

/// Issued tokens and amounts given at this bed.
#[derive(Debug, Default)]
pub struct Ledger {
    issued: HashMap<[u8; 16], Issued>,
    given: HashMap<String, Vec<Given>>,
    /// Since when each pump's link has been up (absent: down).
    online: HashMap<PumpId, OffsetDateTime>,
    /// Whether entries being added come from the log (at start).
    replaying: bool,
}

/// What a logged event tells the ledger (from the event log, at start).
#[derive(Debug, Clone)]
pub enum Entry {
    /// A programme was authorised.
    Authorised {
        /// The pump (port).
        pump: PumpId,
        /// Its request.
        request: u32,
        /// The token.
        token: [u8; 16],
        /// The programme, as logged with its request.
        programme: Box<Programme>,
        /// When it was logged.
        at: OffsetDateTime,
        /// When the pump must start by.
        expires: OffsetDateTime,
    },
    /// A delivery event.
    Delivery {
        /// The pump.
        pump: PumpId,
        /// When it was logged.
        at: OffsetDateTime,
        /// Its fields.
        report: DeliveryFields,
    },
}

impl Entry {
    /// Moves its times by `by` (a clock step logged after it).
    fn shift(&mut self, by: time::Duration) {
        match self {
            Entry::Authorised { at, expires, .. } => {
                *at += by;
                *expires += by;
            }
            Entry::Delivery { at, .. } => *at += by,
        }
    }
}

/// The parts of a DELIVERY the ledger reads.
#[derive(Debug, Clone)]
pub struct DeliveryFields {
    /// What happened.
    pub event: DeliveryEventKind,
    /// The request.
    pub request: u32,
    /// The token.
    pub token: [u8; 16],
    /// Volume given so far under the programme, as sent.
    pub volume_infused: String,
    /// Amount given so far, if the pump said.
    pub amount_infused: Option<String>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    /// Rebuilds the ledger from logged events, oldest first, through the
    /// same calls as the live core.
    pub fn replay(entries: impl IntoIterator<Item = Entry>) -> Self {
        let mut ledger = Ledger {
            replaying: true,
            ..Ledger::default()
        };
        for entry in entries {
            match entry {
                Entry::Authorised {
                    pump,
                    request,
                    token,
                    programme,
                    at,
                    expires,
                } => {
                    if !ledger.authorised(token, &pump, request, &programme, at, expires) {
                        warn!(pump = %pump, request, "a logged authorisation's programme cannot be counted");
                    }
                }
                Entry::Delivery { pump, at, report } => {
                    ledger.delivery(&pump, &report, None, at);
                }
            }
        }
        ledger.replaying = false;
        ledger
    }

    /// Records a token issued for `programme`; false when what it gives
    /// cannot be worked out (the cross-check blocks such programmes, so
    /// this does not happen for a token the core made).
    pub fn authorised(
        &mut self,
        token: [u8; 16],
        pump: &PumpId,
        request: u32,
        programme: &Programme,
        at: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> bool {
        let Ok(Some(gives)) = crate::ders::exposure_request(programme) else {
            return false;
        };
        self.issued.insert(
            token,
            Issued {
                pump: pump.clone(),
                request,
                drug: programme.drug.clone(),
                concentration: programme.container.concentration,
                gives,
                issued_at: at,
                expires,
                started: None,
                live: !self.replaying,
                infused_ml: None,
            },
        );
        true
    }

    /// How many tokens are open (issued, not ended).
    pub fn open_tokens(&self) -> usize {
        self.issued.len()
    }

    /// How many drugs have amounts given in the history kept.
    pub fn drugs(&self) -> usize {
        self.given.len()
    }

    /// The token's record, if this gateway issued it.
    pub fn issued(&self, token: &[u8; 16]) -> Option<&Issued> {
        self.issued.get(token)
    }

    /// What a delivery event counts. An end (`completed`, `stopped`,
    /// `bolus_delivered`) adds the volume infused times the authorised
    /// concentration to the drug's history, dated `now`; the pump's own
    /// amount is compared, and the larger is counted. `status_drug` is the
    /// drug the pump's status names, for a token the gateway does not know.
    pub fn delivery(
        &mut self,
        pump: &PumpId,
        d: &DeliveryFields,
        status_drug: Option<&str>,
        now: OffsetDateTime,
    ) -> Counted {
        let ends = matches!(
            d.event,
            DeliveryEventKind::Completed
                | DeliveryEventKind::Stopped
                | DeliveryEventKind::BolusDelivered
        );
        let pump_amount = d
            .amount_infused
            .as_deref()
            .and_then(|a| parse_amount(a).ok())
            .map(|(a, _)| a);
        let known = self
            .issued
            .get(&d.token)
            .filter(|i| i.pump == *pump && i.request == d.request);
        if known.is_none() {
            let why = if self.issued.contains_key(&d.token) {
                "the token was issued for another pump or request"
            } else {
                "the token is not one this gateway issued (or it was issued before the history kept)"
            };
            // Whatever it was, what the pump says it gave still counts,
            // against the drug its status names.
            let counted = match (ends, status_drug, pump_amount) {
                (true, Some(drug), Some(amount)) => {
                    self.add(
                        drug,
                        Delivered {
                            at: now,
                            amount,
                            rate: None,
                            since: None,
                        },
                    );
                    Some((drug.to_owned(), amount))
                }
                _ => None,
            };
            return Counted::Unknown { why, counted };
        }
        let volume = parse_volume(&d.volume_infused)
            .ok()
            .and_then(|v| v.ml().ok());
        let issued = self
            .issued
            .get_mut(&d.token)
            .expect("the token was found just above");
        if let Some(ml) = volume {
            issued.infused_ml = Some(ml);
        }
        if d.event == DeliveryEventKind::Started && issued.started.is_none() {
            issued.started = Some(now);
        }
        if !ends {
            return Counted::Nothing;
        }
        let issued = self
            .issued
            .remove(&d.token)
            .expect("the token was found just above");
        // The link refuses a DELIVERY whose volume does not read; one that
        // still did not (an old log) counts all the token allowed.
        let kind = issued.concentration.amount().kind();
        let computed = volume.and_then(|ml| {
            issued
                .concentration
                .base_per_ml()
                .and_then(|c| ml.mul(c))
                .ok()
        });
        let gateway = Amount::from_base(kind, computed.unwrap_or_else(|| allowed(&issued)));
        let disagreement =
            pump_amount
                .filter(|p| disagrees(*p, gateway))
                .map(|pump| Disagreement {
                    gateway,
                    pump,
                    unit: issued.concentration.unit(),
                });
        let amount = match pump_amount {
            Some(p) if p.kind() == gateway.kind() && p.base() > gateway.base() => p,
            _ => gateway,
        };
        // An infusion ran at up to its authorised rate since its token was
        // made: it is counted as given at that rate, as late as it can have
        // run, not as one amount at its end (which would hold a whole
        // syringe in the window after a syringe change).
        let (rate, since) = match issued.gives {
            Request::Infusion { per_hour, .. } => (
                Some(Amount::from_base(kind, per_hour)),
                Some(issued.issued_at),
            ),
            Request::Bolus(_) => (None, None),
        };
        self.add(
            &issued.drug,
            Delivered {
                at: now,
                amount,
                rate,
                since,
            },
        );
        Counted::Given {
            drug: issued.drug,
            amount,
            disagreement,
        }
    }

    fn add(&mut self, drug: &str, delivered: Delivered) {
        let now = delivered.at;
        let given = self.given.entry(drug.to_owned()).or_default();
        given.push(Given {
            delivered,
            live: !self.replaying,
        });
        given.retain(|g| now - g.delivered.at <= HISTORY_KEPT);
    }

    /// A pump's link came up (the core calls this at its handshake).
    pub fn link_up(&mut self, pump: &PumpId, now: OffsetDateTime) {
        self.online.insert(pump.clone(), now);
    }

    /// A pump's link went down.
    pub fn link_down(&mut self, pump: &PumpId) {
        self.online.remove(pump);
    }

    /// Whether a token never reported started can still have started: until
    /// it expires, and after that until its pump has been online for
    /// [`START_REPORT_GRACE`] since both the expiry and its last handshake
    /// (a start it kept while its link was down has arrived by then).
    fn may_have_started(&self, i: &Issued, now: OffsetDateTime) -> bool {
        if now <= i.expires {
            return true;
        }
        match self.online.get(&i.pump) {
            Some(&up) => now < up.max(i.expires) + START_REPORT_GRACE,
            None => true,
        }
    }

    /// Forgets tokens never started that expired long ago (a start under
    /// them is an error the core reports; kept a while so it still counts).
    pub fn prune(&mut self, now: OffsetDateTime) {
        self.issued
            .retain(|_, i| i.started.is_some() || now - i.expires <= HISTORY_KEPT);
        for given in self.given.values_mut() {
            given.retain(|g| now - g.delivered.at <= HISTORY_KEPT);
        }
    }

    /// Moves every time held by `by` (the wall clock stepped and the
    /// gateway's clock followed it): ages and expiries keep their length.
    ///
    /// Only what this run counted moves: what was replayed from the log is
    /// dated by the wall clock of its own run (its steps applied), which a
    /// step in this run does not change.
    pub fn shift(&mut self, by: time::Duration) {
        for i in self.issued.values_mut().filter(|i| i.live) {
            i.issued_at += by;
            i.expires += by;
            i.started = i.started.map(|s| s + by);
        }
        for given in self.given.values_mut() {
            for g in given.iter_mut().filter(|g| g.live) {
                g.delivered.at += by;
                g.delivered.since = g.delivered.since.map(|s| s + by);
            }
        }
        for up in self.online.values_mut() {
            *up += by;
        }
    }

    /// The bed's exposure to `drug` at `now`: amounts given, infusions
    /// running or authorised and still startable (from when their token was
    /// made, at the rate they were authorised at, bounded by what they can
    /// still give), and boluses authorised and not yet reported.
    ///
    /// `replacing` is the pump asking for a new infusion: a pump runs one
    /// infusion at a time and a new one replaces it, so that pump's running
    /// infusion counts up to now only (its past stays in every window).
    pub fn exposure(&self, drug: &str, now: OffsetDateTime, replacing: Option<&PumpId>) -> History {
        let mut history = History {
            deliveries: self
                .given
                .get(drug)
                .map(|g| g.iter().map(|g| g.delivered).collect())
                .unwrap_or_default(),
            running: Vec::new(),
            pending: Vec::new(),
        };
        for i in self.issued.values().filter(|i| i.drug == drug) {
            if i.started.is_none() && !self.may_have_started(i, now) {
                continue;
            }
            let kind = i.concentration.amount().kind();
            match i.gives {
                Request::Bolus(amount) => history.pending.push(Pending {
                    amount: Amount::from_base(kind, amount),
                    source: Some(i.pump.to_string()),
                }),
                Request::Infusion { per_hour, left } => {
                    // What it already gave (as the pump last said) no longer
                    // bounds what is left; unknown, the whole bound stays.
                    let given = i
                        .infused_ml
                        .and_then(|ml| i.concentration.base_per_ml().and_then(|c| ml.mul(c)).ok())
                        .unwrap_or(Exact::ZERO);
                    let left = if replacing == Some(&i.pump) {
                        Some(Exact::ZERO)
                    } else {
                        left.map(|l| l.sub(given).unwrap_or(l).max(Exact::ZERO))
                    };
                    history.running.push(Running {
                        // It cannot have begun before its token was made;
                        // a start reported late does not shorten it.
                        since: i.issued_at,
                        per_hour: Amount::from_base(kind, per_hour),
                        left: left.map(|l| Amount::from_base(kind, l)),
                        source: Some(i.pump.to_string()),
                    });
                }
            }
        }
        history
    }
}

/// The most a token allows, in base units: a bolus's amount, or what an
/// infusion can give in all (its bound; with none, nothing can be said and
/// zero is not claimed: its rate for the longest window).
fn allowed(i: &Issued) -> Exact {
    match i.gives {
        Request::Bolus(a) => a,
        Request::Infusion { left: Some(l), .. } => l,
        Request::Infusion {
            per_hour,
            left: None,
        } => per_hour
            .mul_int(i128::from(crate::library::MAX_WINDOW_MINUTES) / 60)
            // Out of exact range: more than any library limit anyway.
            .unwrap_or(Exact::int(i128::MAX / 4)),
    }
}

/// Whether the pump's amount differs from the gateway's by more than the
/// cross-check's tolerance (or counts another kind of amount).
pub fn disagrees(pump: Amount, gateway: Amount) -> bool {
    if pump.kind() != gateway.kind() {
        return true;
    }
    let Ok(diff) = pump.base().sub(gateway.base()).and_then(Exact::abs) else {
        return true;
    };
    match (
        diff.mul_int(100),
        gateway.base().mul_int(crate::ders::TOLERANCE_PERCENT),
    ) {
        (Ok(d), Ok(t)) => d > t,
        _ => true,
    }
}

/// The ledger's entries in logged records (`store::log::dose_records_since`):
/// each authorisation with the programme its request carried, and each
/// delivery event. A record that does not read is skipped with a warning.
pub fn entries(records: Vec<(Option<String>, OffsetDateTime, serde_json::Value)>) -> Vec<Entry> {
    let mut programmes: HashMap<(String, String), serde_json::Value> = HashMap::new();
    let mut out: Vec<Entry> = Vec::new();
    // The first entry of the run being read: a clock step logged in a run
    // moves what that run logged before it, as the live ledger moved it.
    let mut run_start = 0;
    for (pump, at, record) in records {
        match record.get("type").and_then(|t| t.as_str()) {
            Some("gateway_started") => run_start = out.len(),
            Some("clock_stepped") => {
                let step = record
                    .get("step_ms")
                    .and_then(serde_json::Value::as_i64)
                    .map_or(time::Duration::ZERO, time::Duration::milliseconds);
                for e in &mut out[run_start..] {
                    e.shift(step);
                }
            }
            _ => {}
        }
        let Some(pump) = pump else { continue };
        let text = |key: &str| record.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let request = record
            .get("request")
            .and_then(serde_json::Value::as_u64)
            .and_then(|r| u32::try_from(r).ok());
        let token = text("token").and_then(|t| {
            let mut out = [0u8; 16];
            hex::decode_to_slice(t, &mut out).ok().map(|()| out)
        });
        match record.get("type").and_then(|t| t.as_str()) {
            Some("programme_requested") => {
                if let (Some(hash), Some(p)) = (text("programme_hash"), record.get("programme")) {
                    programmes.insert((pump, hash), p.clone());
                }
            }
            Some("authorised") => {
                let programme = text("programme_hash")
                    .and_then(|h| programmes.get(&(pump.clone(), h)))
                    .and_then(|p| serde_json::from_value::<Programme>(p.clone()).ok());
                let expires = text("expires").and_then(|e| {
                    OffsetDateTime::parse(&e, &time::format_description::well_known::Rfc3339).ok()
                });
                match (request, token, programme, expires) {
                    (Some(request), Some(token), Some(programme), Some(expires)) => {
                        out.push(Entry::Authorised {
                            pump: PumpId::from(pump),
                            request,
                            token,
                            programme: Box::new(programme),
                            at,
                            expires,
                        });
                    }
                    _ => {
                        warn!(pump, at = %at, "a logged authorisation does not read; cumulative limits will miss it");
                    }
                }
            }
            Some("delivery") => {
                let event = record
                    .get("event")
                    .cloned()
                    .and_then(|e| serde_json::from_value::<DeliveryEventKind>(e).ok());
                match (event, request, token, text("volume_infused")) {
                    (Some(event), Some(request), Some(token), Some(volume_infused)) => {
                        out.push(Entry::Delivery {
                            pump: PumpId::from(pump),
                            at,
                            report: DeliveryFields {
                                event,
                                request,
                                token,
                                volume_infused,
                                amount_infused: text("amount_infused"),
                            },
                        });
                    }
                    _ => {
                        warn!(pump, at = %at, "a logged delivery does not read; cumulative limits may miss it");
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: OffsetDateTime = time::macros::datetime!(2026-11-21 03:00 UTC);

    fn programme(delivery: &str) -> Programme {
        serde_json::from_str(&format!(
            r#"{{"drug": "fentanyl", "library_version": 12, "requested_at": "2026-11-21T03:00:00Z",
                "patient_weight": "70 kg",
                "container": {{"concentration": "2500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "40 mL"}},
                "delivery": {delivery}}}"#
        ))
        .expect("a programme")
    }

    fn infusion() -> Programme {
        programme(
            r#"{"kind": "continuous", "rate": "100 micrograms/h", "pump_flow_rate": "2 mL/h"}"#,
        )
    }

    fn fields(event: DeliveryEventKind, volume: &str, amount: Option<&str>) -> DeliveryFields {
        DeliveryFields {
            event,
            request: 1,
            token: [7; 16],
            volume_infused: volume.to_owned(),
            amount_infused: amount.map(str::to_owned),
        }
    }

    fn micrograms(a: &Amount) -> Exact {
        a.base().div_int(1_000).expect("exact")
    }

    #[test]
    fn what_counts_as_delivered_is_the_volume_times_the_authorised_concentration() {
        let pump = PumpId::from("p1");
        let mut l = Ledger::new();
        assert!(l.authorised(
            [7; 16],
            &pump,
            1,
            &infusion(),
            NOW,
            NOW + time::Duration::minutes(2)
        ));
        // Authorised, not started: counted as running from now.
        let h = l.exposure("fentanyl", NOW, None);
        assert_eq!(h.running.len(), 1);
        assert_eq!(
            l.delivery(
                &pump,
                &fields(DeliveryEventKind::Started, "0 mL", None),
                None,
                NOW
            ),
            Counted::Nothing
        );
        // No amount from the pump: 3 mL at 50 micrograms/mL is 150.
        let counted = l.delivery(
            &pump,
            &fields(DeliveryEventKind::Stopped, "3 mL", None),
            None,
            NOW,
        );
        let Counted::Given {
            amount,
            disagreement,
            ..
        } = counted
        else {
            panic!("{counted:?}")
        };
        assert_eq!(micrograms(&amount), Exact::int(150));
        assert!(disagreement.is_none());
        let h = l.exposure("fentanyl", NOW, None);
        assert!(h.running.is_empty());
        assert_eq!(h.deliveries.len(), 1);
    }

    #[test]
    fn a_pump_amount_that_disagrees_is_reported_and_the_larger_counts() {
        let pump = PumpId::from("p1");
        for (said, counted, disagrees) in [
            ("151.5 micrograms", 151.5, false),
            ("151.51 micrograms", 151.51, true),
            ("75 micrograms", 150.0, true),
        ] {
            let mut l = Ledger::new();
            l.authorised(
                [7; 16],
                &pump,
                1,
                &infusion(),
                NOW,
                NOW + time::Duration::minutes(2),
            );
            let c = l.delivery(
                &pump,
                &fields(DeliveryEventKind::Completed, "3 mL", Some(said)),
                None,
                NOW,
            );
            let Counted::Given {
                amount,
                disagreement,
                ..
            } = c
            else {
                panic!("{c:?}")
            };
            let shown = crate::format::number(micrograms(&amount));
            assert_eq!(
                shown,
                crate::format::number(crate::units::parse_number(&counted.to_string()).unwrap()),
                "{said}"
            );
            assert_eq!(disagreement.is_some(), disagrees, "{said}");
        }
    }

    #[test]
    fn another_pumps_token_is_not_this_pumps_delivery() {
        let mut l = Ledger::new();
        l.authorised(
            [7; 16],
            &PumpId::from("p1"),
            1,
            &infusion(),
            NOW,
            NOW + time::Duration::minutes(2),
        );
        let c = l.delivery(
            &PumpId::from("p2"),
            &fields(DeliveryEventKind::Completed, "3 mL", Some("150 micrograms")),
            Some("fentanyl"),
            NOW,
        );
        assert!(
            matches!(
                c,
                Counted::Unknown {
                    counted: Some(_),
                    ..
                }
            ),
            "{c:?}"
        );
        // p1's token is still open and counted.
        assert_eq!(l.exposure("fentanyl", NOW, None).running.len(), 1);
    }

    #[test]
    fn a_clock_step_moves_every_time_and_changes_no_duration() {
        let pump = PumpId::from("p1");
        let mut l = Ledger::new();
        l.authorised(
            [7; 16],
            &pump,
            1,
            &infusion(),
            NOW,
            NOW + time::Duration::minutes(2),
        );
        l.delivery(
            &pump,
            &fields(DeliveryEventKind::Started, "0 mL", None),
            None,
            NOW,
        );
        let before = l.exposure("fentanyl", NOW + time::Duration::minutes(10), None);
        let step = time::Duration::hours(2);
        l.shift(step);
        let after = l.exposure("fentanyl", NOW + time::Duration::minutes(10) + step, None);
        assert_eq!(after.running[0].since - before.running[0].since, step);
        assert_eq!(after.running[0].per_hour, before.running[0].per_hour);
    }

    #[test]
    fn replaying_the_log_counts_what_the_live_ledger_counted() {
        let pump = PumpId::from("p1");
        let entries = vec![
            Entry::Authorised {
                pump: pump.clone(),
                request: 1,
                token: [7; 16],
                programme: Box::new(infusion()),
                at: NOW,
                expires: NOW + time::Duration::minutes(2),
            },
            Entry::Delivery {
                pump: pump.clone(),
                at: NOW,
                report: fields(DeliveryEventKind::Started, "0 mL", None),
            },
        ];
        let l = Ledger::replay(entries);
        assert_eq!(l.open_tokens(), 1);
        let h = l.exposure("fentanyl", NOW + time::Duration::minutes(30), None);
        assert_eq!(h.running[0].since, NOW);
    }

    #[test]
    fn an_ended_infusion_is_given_at_its_rate_not_as_one_lump() {
        let pump = PumpId::from("p1");
        let mut l = Ledger::new();
        l.authorised(
            [7; 16],
            &pump,
            1,
            &infusion(),
            NOW,
            NOW + time::Duration::minutes(2),
        );
        l.delivery(
            &pump,
            &fields(DeliveryEventKind::Started, "0 mL", None),
            None,
            NOW,
        );
        let end = NOW + time::Duration::hours(25);
        l.delivery(
            &pump,
            &fields(DeliveryEventKind::Completed, "50 mL", None),
            None,
            end,
        );
        let h = l.exposure("fentanyl", end, None);
        let d = h.deliveries[0];
        assert_eq!(micrograms(&d.amount), Exact::int(2_500));
        assert_eq!(d.rate.map(|r| micrograms(&r)), Some(Exact::int(100)));
        assert_eq!(d.since, Some(NOW));
    }

    #[test]
    fn a_pumps_new_infusion_replaces_its_running_one_but_not_its_past() {
        let pump = PumpId::from("p1");
        let mut l = Ledger::new();
        l.authorised(
            [7; 16],
            &pump,
            1,
            &infusion(),
            NOW,
            NOW + time::Duration::minutes(2),
        );
        let later = NOW + time::Duration::minutes(30);
        let own = l.exposure("fentanyl", later, Some(&pump));
        assert_eq!(
            own.running[0].left.map(|l| micrograms(&l)),
            Some(Exact::ZERO)
        );
        assert_eq!(own.running[0].since, NOW);
        let other = l.exposure("fentanyl", later, Some(&PumpId::from("p2")));
        assert_ne!(
            other.running[0].left.map(|l| micrograms(&l)),
            Some(Exact::ZERO)
        );
    }

    #[test]
    fn a_token_never_reported_started_counts_until_its_pump_could_have_said() {
        let pump = PumpId::from("p1");
        let mut l = Ledger::new();
        let expires = NOW + time::Duration::minutes(2);
        l.authorised([7; 16], &pump, 1, &infusion(), NOW, expires);
        let after = expires + time::Duration::minutes(5);
        // The link is down: the pump may have started and not said so.
        assert_eq!(l.exposure("fentanyl", after, None).running.len(), 1);
        // Back online: for the grace, then no more.
        l.link_up(&pump, after);
        assert_eq!(
            l.exposure("fentanyl", after + time::Duration::seconds(29), None)
                .running
                .len(),
            1
        );
        assert!(
            l.exposure("fentanyl", after + START_REPORT_GRACE, None)
                .running
                .is_empty()
        );
    }

    #[test]
    fn a_clock_step_moves_only_what_this_run_counted() {
        let pump = PumpId::from("p1");
        let replayed = Ledger::replay(vec![Entry::Authorised {
            pump: pump.clone(),
            request: 1,
            token: [1; 16],
            programme: Box::new(infusion()),
            at: NOW,
            expires: NOW + time::Duration::minutes(2),
        }]);
        let mut l = replayed;
        l.authorised(
            [2; 16],
            &pump,
            2,
            &infusion(),
            NOW,
            NOW + time::Duration::minutes(2),
        );
        l.shift(time::Duration::hours(1));
        let mut since: Vec<_> = l
            .exposure("fentanyl", NOW, None)
            .running
            .iter()
            .map(|r| r.since)
            .collect();
        since.sort();
        assert_eq!(since, vec![NOW, NOW + time::Duration::hours(1)]);
    }

    #[test]
    fn a_logged_clock_step_moves_what_its_run_logged_before_it() {
        let rec = |pump: Option<&str>, minute: i64, v: serde_json::Value| {
            (
                pump.map(str::to_owned),
                NOW + time::Duration::minutes(minute),
                v,
            )
        };
        let programme = serde_json::json!({
            "drug": "fentanyl", "library_version": 12, "requested_at": "2026-11-21T03:00:00Z",
            "patient_weight": "70 kg",
            "container": {"concentration": "2500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "40 mL"},
            "delivery": {"kind": "continuous", "rate": "100 micrograms/h", "pump_flow_rate": "2 mL/h"}
        });
        let token = hex::encode([7u8; 16]);
        let records = vec![
            rec(None, 0, serde_json::json!({"type": "gateway_started"})),
            rec(
                Some("p1"),
                1,
                serde_json::json!({"type": "programme_requested", "request": 1, "programme_hash": "ab", "programme": programme}),
            ),
            rec(
                Some("p1"),
                1,
                serde_json::json!({"type": "authorised", "request": 1, "programme_hash": "ab", "token": token, "expires": "2026-11-21T03:03:00.000Z"}),
            ),
            rec(
                None,
                2,
                serde_json::json!({"type": "clock_stepped", "step_ms": 3_600_000}),
            ),
            rec(None, 70, serde_json::json!({"type": "gateway_started"})),
            rec(
                None,
                71,
                serde_json::json!({"type": "clock_stepped", "step_ms": 60_000}),
            ),
        ];
        let e = entries(records);
        assert_eq!(e.len(), 1);
        let Entry::Authorised { at, expires, .. } = &e[0] else {
            panic!("{e:?}")
        };
        // Moved by its own run's step only.
        assert_eq!(*at, NOW + time::Duration::minutes(61));
        assert_eq!(*expires, time::macros::datetime!(2026-11-21 04:03 UTC));
    }
}
