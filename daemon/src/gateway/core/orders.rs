//! Each pump's open orders from the EHR, by the pump's serial number: the
//! order a programme is compared with (`docs/ders.md` §15). The core takes
//! an order from the listener only once it is logged; a new order of the
//! same kind (infusion or bolus) replaces the one before; a bolus order is
//! used up by the bolus authorised under it; an order is open for at most
//! [`ORDER_KEPT`]. A restart reads the open orders back from the log.

use std::collections::HashMap;

use time::OffsetDateTime;
use tracing::{info, warn};

use super::Core;
use crate::ders::{Delivery, Ordered, Programme};
use crate::ehr::answer::Refusal;
use crate::ehr::intake::{self, OrderIn};
use crate::library::Library;
use crate::pump::PumpId;
use crate::store::Event;

/// How long an order stays open: the delivery history the gateway keeps
/// and reads back at a restart, so a running gateway and a restarted one
/// hold the same orders.
pub const ORDER_KEPT: time::Duration = super::HISTORY_KEPT;

/// An order and when it was taken.
#[derive(Debug, Clone)]
struct Taken {
    ordered: Ordered,
    at: OffsetDateTime,
}

/// One pump's open orders.
#[derive(Debug, Default)]
struct Open {
    infusion: Option<Taken>,
    bolus: Option<Taken>,
}

/// Every pump's open orders.
#[derive(Debug, Default)]
pub struct Orders {
    by_serial: HashMap<String, Open>,
}

impl Orders {
    /// Opens `ordered` for the pump `serial`, replacing its order of the
    /// same kind.
    pub fn take(&mut self, serial: &str, ordered: Ordered, at: OffsetDateTime) {
        let open = self.by_serial.entry(serial.to_owned()).or_default();
        let slot = if ordered.bolus {
            &mut open.bolus
        } else {
            &mut open.infusion
        };
        *slot = Some(Taken { ordered, at });
    }

    /// The pump's open order for a bolus or an infusion, at `now`.
    pub fn open(&self, serial: &str, bolus: bool, now: OffsetDateTime) -> Option<&Ordered> {
        let open = self.by_serial.get(serial)?;
        let taken = if bolus { &open.bolus } else { &open.infusion };
        taken
            .as_ref()
            .filter(|t| now - t.at <= ORDER_KEPT)
            .map(|t| &t.ordered)
    }

    /// A bolus was authorised under order `number`: that bolus order is
    /// used up (an infusion order stays open).
    pub fn used(&mut self, number: &str) {
        for open in self.by_serial.values_mut() {
            if open
                .bolus
                .as_ref()
                .is_some_and(|t| t.ordered.number == number)
            {
                open.bolus = None;
            }
        }
    }

    /// True when no order is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many orders are open (at any age).
    pub fn len(&self) -> usize {
        self.by_serial
            .values()
            .map(|o| usize::from(o.infusion.is_some()) + usize::from(o.bolus.is_some()))
            .sum()
    }

    /// Rebuilds the open orders from logged records, oldest first, with
    /// the library active now (an order whose drug or limits it no longer
    /// takes is not reopened).
    pub fn replay(
        records: &[(Option<String>, OffsetDateTime, serde_json::Value)],
        library: Option<&Library>,
        care_area: &str,
    ) -> Orders {
        let mut orders = Orders::default();
        let mut checked_under: HashMap<(String, u64), String> = HashMap::new();
        for (pump, at, record) in records {
            let text = |key: &str| record.get(key).and_then(|v| v.as_str());
            let request = record.get("request").and_then(serde_json::Value::as_u64);
            match text("type") {
                Some("order_received") => {
                    let (Some(serial), Some(kept), Some(library)) =
                        (text("pump_serial"), text("message"), library)
                    else {
                        continue;
                    };
                    let read = crate::ehr::er7::Message::parse(kept.as_bytes())
                        .ok()
                        .and_then(|m| crate::ehr::order::Order::read(&m).ok());
                    match read.map(|o| intake::matched(&o, library, care_area, *at)) {
                        Some(Ok(ordered)) => orders.take(serial, ordered, *at),
                        Some(Err(r)) => {
                            warn!(serial, reason = %r.message, "a logged order is not reopened: the library now refuses it");
                        }
                        None => warn!(serial, "a logged order cannot be read back"),
                    }
                }
                Some("verdict") => {
                    if let (Some(pump), Some(request), Some(order)) = (pump, request, text("order"))
                    {
                        checked_under.insert((pump.clone(), request), order.to_owned());
                    }
                }
                Some("authorised") => {
                    if let (Some(pump), Some(request)) = (pump, request)
                        && let Some(number) = checked_under.remove(&(pump.clone(), request))
                    {
                        orders.used(&number);
                    }
                }
                _ => {}
            }
        }
        orders
    }
}

impl Core {
    /// The open order a programme from `pump` is compared with.
    pub(super) fn order_for(&self, pump: &PumpId, p: &Programme) -> Option<&Ordered> {
        let serial = self.pumps.get(pump)?.identity.as_ref()?.serial.as_str();
        let bolus = matches!(p.delivery, Delivery::Bolus { .. });
        self.orders.open(serial, bolus, self.clock.now())
    }

    /// A bolus authorised under an order uses the order up.
    pub(super) fn order_used(&mut self, p: &Programme, verdict: Option<&crate::ders::Verdict>) {
        if matches!(p.delivery, Delivery::Bolus { .. })
            && let Some(number) = verdict.and_then(|v| v.order.as_deref())
        {
            self.orders.used(number);
        }
    }

    /// Takes an order for one of this bed's pumps: found by serial number,
    /// matched to the library, logged, then open; the listener is told.
    pub(super) async fn take_order(&mut self, o: OrderIn) {
        let refusal = self.order_refusal(&o).await;
        let verdict = if refusal.is_some() {
            "refused"
        } else {
            "accepted"
        };
        info!(order = %o.order.placer, pump = %o.order.pump, drug = %o.order.drug.text, verdict, "EHR order");
        let _ = o.reply.send(refusal);
    }

    async fn order_refusal(&mut self, o: &OrderIn) -> Option<Refusal> {
        let refused = |location: Option<(&str, usize)>, piv: Option<u16>, message: String| {
            Some(Refusal {
                location: location.map(|(s, f)| (s.to_owned(), f)),
                hl7: 207,
                piv: piv.map(|c| (c, intake::piv_words(c).to_owned())),
                message,
            })
        };
        let order = &o.order;
        if self.stopping {
            return refused(
                None,
                None,
                "the gateway is stopping; send the order again".into(),
            );
        }
        let Some(port) = self.pumps.iter().find_map(|(id, v)| {
            v.identity
                .as_ref()
                .is_some_and(|i| i.serial == order.pump)
                .then(|| id.clone())
        }) else {
            return refused(
                Some(("OBX", 18)),
                Some(9001),
                format!(
                    "no pump {} at gateway {}: it is not the serial number of any of this bed's pumps",
                    order.pump, self.gateway.gateway_id
                ),
            );
        };
        let Some(library) = self.library.borrow().clone() else {
            return refused(
                None,
                None,
                format!(
                    "gateway {} has no active drug library",
                    self.gateway.gateway_id
                ),
            );
        };
        let now = self.clock.now();
        let ordered = match intake::matched(order, &library.library, &self.gateway.care_area, now) {
            Ok(ordered) => ordered,
            Err(r) => return Some(r),
        };
        let event = received(o, &ordered);
        if let Err(e) = self
            .writer
            .append(vec![(self.context(Some(&port)), event)])
            .await
        {
            warn!(order = %order.placer, error = %e, "EHR order not logged: refused");
            return refused(
                None,
                None,
                format!("the order could not be logged ({e}); send it again"),
            );
        }
        self.orders.take(&order.pump, ordered, now);
        None
    }
}

/// The log's record of an order taken.
fn received(o: &OrderIn, ordered: &Ordered) -> Event {
    use crate::ders::Give;
    use crate::format;
    let order = &o.order;
    Event::OrderReceived {
        control_id: order.control_id.clone(),
        sender: order.sender.clone(),
        placer: order.placer.clone(),
        pump_serial: order.pump.clone(),
        drug_code: order.drug.code.clone(),
        drug: order.drug.text.clone(),
        drug_id: ordered.drug.clone(),
        bolus: ordered.bolus,
        rate: match order.give {
            Some(Give::Rate(r)) => Some(format::rate(r)),
            _ => None,
        },
        dose: match order.give {
            Some(Give::Dose(d)) => Some(format::dose(d)),
            _ => None,
        },
        concentration: order.concentration.map(format::concentration),
        vtbi: order.vtbi.map(format::volume),
        weight: order.weight.map(format::weight),
        message_hash: o.hash.clone(),
        message: o.kept.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = include_str!("../../../../config/drug-library.example.json");

    fn library() -> Library {
        crate::library::parse(EXAMPLE.as_bytes())
            .expect("the example library")
            .0
    }

    /// The fentanyl order fixture, as a bolus from the infusion when
    /// `bolus`.
    fn fixture(bolus: bool) -> String {
        let text = include_str!("../../../../config/examples/ehr/fentanyl-order.hl7");
        let text = if bolus {
            text.replace("ORC|RE|F-2001|", "ORC|CH|F-2002|")
                .replace("|50|ug/h^ug/h^UCUM|", "|25|ug^ug^UCUM|")
        } else {
            text.to_owned()
        };
        let m = crate::ehr::er7::Message::parse(text.as_bytes()).expect("HL7");
        crate::ehr::order::minimised(&m)
    }

    fn at(minutes: i64) -> OffsetDateTime {
        time::macros::datetime!(2026-12-04 10:00 UTC) + time::Duration::minutes(minutes)
    }

    #[test]
    fn a_restart_reopens_the_logged_orders_and_not_a_bolus_order_already_used() {
        let received = |message: String| json!({"type": "order_received", "pump_serial": "A0001", "message": message});
        let port = Some("pump-a".to_owned());
        let records = vec![
            (port.clone(), at(0), received(fixture(false))),
            (port.clone(), at(1), received(fixture(true))),
            (
                port.clone(),
                at(2),
                json!({"type": "verdict", "request": 4, "order": "F-2002"}),
            ),
            (
                port.clone(),
                at(2),
                json!({"type": "authorised", "request": 4}),
            ),
        ];
        let orders = Orders::replay(&records, Some(&library()), "adult-icu");
        let infusion = orders
            .open("A0001", false, at(3))
            .expect("the infusion order");
        assert_eq!(infusion.number, "F-2001");
        assert_eq!(infusion.drug, "fentanyl");
        assert_eq!(orders.open("A0001", true, at(3)), None, "used by request 4");
        // Before the bolus was authorised, it was open.
        let orders = Orders::replay(&records[..3], Some(&library()), "adult-icu");
        assert_eq!(
            orders.open("A0001", true, at(3)).map(|o| o.number.as_str()),
            Some("F-2002")
        );
        // A care area that does not use orders reopens none.
        assert_eq!(
            Orders::replay(&records, Some(&library()), "theatres").len(),
            0
        );
    }

    #[test]
    fn an_order_replaces_its_kind_and_lapses_after_the_history_kept() {
        let l = library();
        let read = |bolus| {
            let m = crate::ehr::er7::Message::parse(fixture(bolus).as_bytes()).expect("HL7");
            let o = crate::ehr::order::Order::read(&m).expect("an order");
            intake::matched(&o, &l, "adult-icu", at(0)).expect("taken")
        };
        let mut orders = Orders::default();
        orders.take("A0001", read(false), at(0));
        orders.take("A0001", read(true), at(0));
        let mut again = read(false);
        again.number = "F-2003".into();
        orders.take("A0001", again, at(5));
        assert_eq!(orders.len(), 2);
        assert_eq!(
            orders
                .open("A0001", false, at(6))
                .map(|o| o.number.as_str()),
            Some("F-2003")
        );
        assert_eq!(orders.open("B0002", false, at(6)), None);
        // Using a bolus order leaves the infusion order open.
        orders.used("F-2002");
        assert!(orders.open("A0001", true, at(6)).is_none());
        assert!(orders.open("A0001", false, at(6)).is_some());
        let lapsed = at(5) + ORDER_KEPT + time::Duration::seconds(1);
        assert!(orders.open("A0001", false, lapsed).is_none());
    }
}
