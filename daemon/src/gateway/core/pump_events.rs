//! The core's side of what pumps report about deliveries and alarms: each
//! event logged once (a resend after a lost acknowledgement is acknowledged
//! again; a record number used again with other content is a conflict,
//! logged and alarmed, never dropped), delivery events counted by the dose
//! ledger, and the alarms the gateway itself raises on a pump's card.
//! New alarms queued one behind another (a burst, or a backlog sent after
//! a link loss) are committed in one transaction: one fsync for many.

use std::collections::HashMap;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::{Core, MAX_RECORD, ledger};
use crate::pump::event::{AlarmReport, DeliveryEventKind, DeliveryReport};
use crate::pump::{Envelope, PumpEvent, PumpId};
use crate::store::Event;
use crate::store::record::millis;

/// New alarms committed together at most.
const ALARM_BATCH: usize = 64;

/// A new alarm (its record number above any logged for its pump), ready
/// to log without looking in the store.
struct FreshAlarm {
    pump: PumpId,
    serial: String,
    alarm: AlarmReport,
    committed: oneshot::Sender<bool>,
}

/// The condition of the gateway's alarm for a delivered amount that
/// disagrees with the volume infused.
pub const AMOUNT_MISMATCH: &str = "gateway_amount_mismatch";

/// The condition of the gateway's alarm for an event record number a pump
/// used twice with different content.
pub const RECORD_CONFLICT: &str = "gateway_record_conflict";

/// The condition of the gateway's alarm for an event the pump sent that
/// cannot be read (refused on the link, so the pump's later events wait).
pub const EVENT_REFUSED: &str = "gateway_event_refused";

/// Alarm ids the gateway raises itself carry this bit, apart from the
/// pump's own.
const GATEWAY_ALARM_IDS: u32 = 0x8000_0000;

impl Core {
    /// Handles `first`; when it is a new alarm, the new alarms queued right
    /// behind it go with it into one commit. Whatever else is next is
    /// handled after them, in order.
    pub(super) async fn handle_queued(
        &mut self,
        first: Envelope,
        events: &mut mpsc::Receiver<Envelope>,
    ) {
        let mut batch = Vec::new();
        let mut newest: HashMap<String, u64> = HashMap::new();
        let mut next = Some(first);
        let mut after = None;
        while let Some(envelope) = next.take() {
            match self.fresh_alarm(envelope, &newest) {
                Ok(fresh) => {
                    newest.insert(fresh.serial.clone(), fresh.alarm.record);
                    batch.push(fresh);
                    if batch.len() < ALARM_BATCH {
                        next = events.try_recv().ok();
                    }
                }
                Err(other) => after = Some(other),
            }
        }
        if !batch.is_empty() {
            self.log_alarms(batch).await;
        }
        if let Some(envelope) = after {
            self.handle(envelope).await;
        }
    }

    /// The envelope as a new alarm, or back as it came (anything else, or
    /// an alarm that needs the store's word: a number not above the last).
    #[allow(
        clippy::result_large_err,
        reason = "the envelope goes back to be handled at once"
    )]
    fn fresh_alarm(
        &self,
        envelope: Envelope,
        newest: &HashMap<String, u64>,
    ) -> Result<FreshAlarm, Envelope> {
        let Envelope {
            pump,
            event: PumpEvent::Alarm(alarm, committed),
        } = envelope
        else {
            return Err(envelope);
        };
        let serial = self.serial(&pump);
        let last = self
            .last_record
            .get(&record_key(&serial))
            .copied()
            .max(newest.get(&serial).copied())
            .unwrap_or(0);
        if !self.pumps.contains_key(&pump) || alarm.record > MAX_RECORD || alarm.record <= last {
            return Err(Envelope {
                pump,
                event: PumpEvent::Alarm(alarm, committed),
            });
        }
        Ok(FreshAlarm {
            pump,
            serial,
            alarm,
            committed,
        })
    }

    /// Commits new alarms together; each is acknowledged (and shown on its
    /// pump's card) once on disk, or none is.
    async fn log_alarms(&mut self, batch: Vec<FreshAlarm>) {
        let records = batch
            .iter()
            .map(|f| {
                (
                    self.context(Some(&f.pump)),
                    alarm_record(&f.serial, &f.alarm),
                )
            })
            .collect();
        let ok = match self.writer.append(records).await {
            Ok(_) => true,
            Err(e) => {
                error!(alarms = batch.len(), error = %e, "EVENTS NOT LOGGED");
                false
            }
        };
        for f in batch {
            if ok {
                self.note_record(&f.serial, f.alarm.record);
                self.alarm(&f.pump, f.alarm);
            }
            let _ = f.committed.send(ok);
        }
    }

    /// The pump sent an event that cannot be read: a high-priority alarm on
    /// its card (once while it lasts), since its later deliveries and alarms
    /// wait behind it.
    pub(super) fn event_refused(&mut self, pump: &PumpId, detail: &str) {
        error!(pump = %pump, detail, "an event from the pump was refused: its later events wait");
        let raised = self.pumps.get(pump).is_some_and(|v| {
            v.alarms
                .iter()
                .any(|a| a.active && a.condition == EVENT_REFUSED)
        });
        if !raised {
            self.gateway_alarm(
                pump,
                EVENT_REFUSED,
                format!(
                    "The pump sent an event the gateway cannot read ({detail}). It was refused, and the pump's later deliveries and alarms wait behind it. Check the pump."
                ),
            );
        }
    }

    pub(super) fn alarm(&mut self, pump: &PumpId, a: AlarmReport) {
        let Some(view) = self.pumps.get_mut(pump) else {
            return;
        };
        if a.active {
            warn!(pump = %pump, alarm = a.id, priority = ?a.priority, condition = %a.condition, "alarm raised");
            view.alarms.retain(|x| x.id != a.id);
            view.alarms.push(a);
            view.alarms.sort_by_key(|x| std::cmp::Reverse(x.priority));
        } else {
            info!(pump = %pump, alarm = a.id, condition = %a.condition, "alarm cleared");
            view.alarms.retain(|x| x.id != a.id);
        }
    }

    /// The pump's serial number (its port name until it has said).
    pub(super) fn serial(&self, pump: &PumpId) -> String {
        self.pumps
            .get(pump)
            .and_then(|v| v.identity.as_ref())
            .map_or_else(|| pump.to_string(), |i| i.serial.clone())
    }

    /// What to log for a pump's event: `None` when this very event is in
    /// the log already (a resend after a lost acknowledgement); the event
    /// alone when its record number is new; and when the number was logged
    /// before with other content (a controller whose counter went back), a
    /// `record_conflict` record first, then the event itself, and an alarm
    /// on the pump's card: never dropped, never silent.
    pub(super) fn unless_resent(
        &mut self,
        pump: &PumpId,
        serial: &str,
        record: u64,
        event: Event,
    ) -> Option<Vec<Event>> {
        let below = self
            .last_record
            .get(&record_key(serial))
            .is_some_and(|&last| record <= last);
        if !below {
            return Some(vec![event]);
        }
        let wanted = serde_json::to_value(&event).unwrap_or_default();
        let logged = self
            .source
            .reader
            .lock()
            .ok()
            .and_then(|r| crate::store::log::pump_event_records(&r, serial, record).ok());
        let Some(logged) = logged else {
            // The log cannot be read: logging it again is the safe side.
            warn!(pump = %pump, serial, record, "cannot tell whether this event is logged; logging it");
            return Some(vec![event]);
        };
        // A resend comes from this port, or from a port the pump has left
        // (its cable moved): a record from another port still online
        // under the same serial is another pump's, however alike.
        let twin = |port: Option<&str>| {
            port.is_some_and(|port| {
                port != &**pump
                    && self.pumps.iter().any(|(id, v)| {
                        &**id == port
                            && v.link == crate::gateway::view::LinkState::Online
                            && v.identity.as_ref().is_some_and(|i| i.serial == serial)
                    })
            })
        };
        let same = |r: &serde_json::Value| {
            !twin(r.get("pump").and_then(serde_json::Value::as_str))
                && wanted
                    .as_object()
                    .is_some_and(|w| w.iter().all(|(k, v)| r.get(k) == Some(v)))
        };
        if logged.iter().any(same) {
            info!(pump = %pump, record, "event already logged; acknowledged again, not logged twice");
            return None;
        }
        if logged.is_empty() {
            // Below the last number but never logged: dropping it could
            // lose a delivery, so it is logged and acknowledged like any
            // new event (docs/protocol.md section 6.11).
            warn!(pump = %pump, serial, record, "event number below the last one but not in the log (the pump's counter went back, or it skipped this one before); logged");
            return Some(vec![event]);
        }
        let text = format!(
            "Pump {serial} sent event number {record} again with different content: its event counter went back. The new event is logged and counted; check the pump."
        );
        warn!(pump = %pump, serial, record, "event number reused with other content");
        self.gateway_alarm(pump, RECORD_CONFLICT, text.clone());
        Some(vec![
            Event::RecordConflict {
                pump_serial: serial.to_owned(),
                pump_record: record,
                logged: logged.len(),
                message: text,
            },
            event,
        ])
    }

    pub(super) fn note_record(&mut self, serial: &str, record: u64) {
        let last = self.last_record.entry(record_key(serial)).or_insert(0);
        *last = (*last).max(record);
    }

    /// A delivery event already logged: the ledger counts it; what it
    /// finds wrong is logged and shown.
    pub(super) async fn delivery(&mut self, pump: &PumpId, d: DeliveryReport, now: OffsetDateTime) {
        if let Some(issued) = self.ledger.issued(&d.token)
            && issued.pump == *pump
            && issued.request == d.request
            && d.event == DeliveryEventKind::Started
        {
            if issued.started.is_some() {
                error!(pump = %pump, request = d.request, "second start under a single-use token");
            } else if now > issued.expires {
                error!(pump = %pump, request = d.request, "start after the authorisation expired");
            }
        }
        let status_drug = self
            .pumps
            .get(pump)
            .and_then(|v| v.status.as_ref())
            .and_then(|s| s.drug.clone());
        let fields = ledger::DeliveryFields {
            event: d.event,
            request: d.request,
            token: d.token,
            volume_infused: d.volume_infused.clone(),
            amount_infused: d.amount_infused.clone(),
        };
        match self
            .ledger
            .delivery(pump, &fields, status_drug.as_deref(), now)
        {
            ledger::Counted::Nothing => {}
            ledger::Counted::Given {
                drug,
                amount,
                disagreement,
            } => {
                info!(pump = %pump, drug = %drug, request = d.request, amount = ?amount, "delivered amount counted");
                if let Some(dis) = disagreement {
                    self.amount_disagreement(pump, &d, &drug, &dis).await;
                }
            }
            ledger::Counted::Unknown { why, counted } => {
                error!(pump = %pump, request = d.request, event = ?d.event, counted = ?counted, "delivery under a token this gateway cannot place: {why}");
            }
        }
        info!(pump = %pump, request = d.request, event = ?d.event, volume = %d.volume_infused, "delivery");
        if let Some(view) = self.pumps.get_mut(pump) {
            view.last_delivery = Some(d);
        }
    }

    /// The pump's amount disagrees with its volume times the authorised
    /// concentration: an event in the log and a high-priority alarm on the
    /// pump's card until the pump's link starts again.
    async fn amount_disagreement(
        &mut self,
        pump: &PumpId,
        d: &DeliveryReport,
        drug: &str,
        dis: &ledger::Disagreement,
    ) {
        let shown = |a: crate::units::Amount| crate::format::amount(a, dis.unit);
        let name = self.display_name(drug);
        let text = format!(
            "The pump says {} of {name} was given, but {} at the authorised concentration is {}; the larger is counted. Check the pump and the container.",
            shown(dis.pump),
            d.volume_infused,
            shown(dis.gateway)
        );
        warn!(pump = %pump, request = d.request, drug = %drug, pump_amount = %shown(dis.pump), gateway_amount = %shown(dis.gateway), "delivered amount disagrees");
        let event = Event::AmountMismatch {
            request: d.request,
            token: hex::encode(d.token),
            volume_infused: d.volume_infused.clone(),
            amount_infused: d.amount_infused.clone().unwrap_or_default(),
            computed: shown(dis.gateway),
            message: text.clone(),
        };
        self.log(Some(pump), vec![event]).await;
        self.gateway_alarm(pump, AMOUNT_MISMATCH, text);
    }

    /// An alarm the gateway raises on a pump's card (it has no record
    /// number: it is the gateway's, not the pump's).
    pub(super) fn gateway_alarm(&mut self, pump: &PumpId, condition: &str, text: String) {
        if let Some(view) = self.pumps.get_mut(pump) {
            self.gateway_alarms = self.gateway_alarms.wrapping_add(1);
            view.alarms.push(AlarmReport {
                record: 0,
                id: GATEWAY_ALARM_IDS | (self.gateway_alarms & !GATEWAY_ALARM_IDS),
                priority: crate::pump::event::AlarmPriority::High,
                condition: condition.to_owned(),
                text,
                active: true,
                at: self.clock.now(),
            });
            view.alarms.sort_by_key(|x| std::cmp::Reverse(x.priority));
        }
    }
}

/// A pump's alarm as the log records it.
pub(super) fn alarm_record(serial: &str, a: &AlarmReport) -> Event {
    Event::Alarm {
        alarm: a.id,
        priority: super::kind_name(&a.priority),
        condition: a.condition.clone(),
        text: a.text.clone(),
        active: a.active,
        pump_serial: serial.to_owned(),
        pump_record: a.record,
        pump_at: millis(a.at),
    }
}

/// De-duplication key: the serial the pump reports, whatever port it is on
/// (`docs/protocol.md` section 6.11): a pump moved to another port that
/// resends an event it could not get acknowledged is logged once. Two
/// pumps claiming one serial cannot hide each other's events by it: only
/// an event with the very same content is taken for a resend.
fn record_key(serial: &str) -> String {
    serial.to_owned()
}
