//! The log as a FHIR R4 Bundle (`pumpgwd events export --format fhir`): a
//! `Device` per pump (typed with its IEEE 11073 code, its drug library
//! version) and one for the gateway, a `MedicationAdministration` per
//! infusion and bolus given under a token (status from its last delivery
//! event, dose or rate in UCUM, the pump, the order when there was one,
//! the cross-check's verdict as an extension), and a `Provenance` per
//! administration naming who confirmed it at the bedside and the gateway
//! that checked it. `docs/interop.md` has the mapping.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::document::ucum_amount;
use crate::ders::{Delivery, Programme};
use crate::format;
use crate::units::{Exact, RateUnit, TimeUnit};

/// Where pumpgw's own FHIR extensions and code systems are named.
pub const BASE: &str = "https://pumpgw.invalid/fhir";

/// One administration: a token and what happened under it.
#[derive(Debug)]
struct Given {
    token: String,
    pump: String,
    request: u64,
    programme: Programme,
    authorised_at: String,
    serial: Option<String>,
    /// Delivery events: event, time, volume infused.
    events: Vec<(String, String, String)>,
}

/// A bedside confirmation: its stage, who signed, when.
type Confirmation = (String, Vec<String>, String);

/// Accumulates the log's records, oldest first.
#[derive(Debug, Default)]
pub struct Export {
    programmes: HashMap<(String, String), Value>,
    /// Verdict outcome and order, by (port, request).
    verdicts: HashMap<(String, u64), (String, Option<String>)>,
    /// Confirmations by (port, request).
    confirmations: HashMap<(String, u64), Vec<Confirmation>>,
    /// The patient (PID-3's first component) of each order.
    patients: HashMap<String, String>,
    given: Vec<Given>,
    by_token: HashMap<String, usize>,
    /// Pumps by serial: library version and care area last seen.
    pumps: BTreeMap<String, (Option<u64>, String)>,
    gateway: Option<String>,
}

impl Export {
    /// Takes one record (as exported: the JSON of `docs/event-log.md`).
    pub fn add(&mut self, record: &Value) {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let pump = text("pump").map(str::to_owned);
        let request = record.get("request").and_then(Value::as_u64);
        if self.gateway.is_none() {
            self.gateway = text("gateway").map(str::to_owned);
        }
        match (text("type"), pump) {
            (Some("order_received"), _) => {
                if let (Some(number), Some(kept)) = (text("placer"), text("message"))
                    && let Ok(m) = super::er7::Message::parse(kept.as_bytes())
                    && let Some(pid) = m.segment("PID")
                {
                    let id = pid.field(3).component(1).to_owned();
                    if !id.is_empty() {
                        self.patients.insert(number.to_owned(), id);
                    }
                }
            }
            (Some("programme_requested"), Some(pump)) => {
                if let (Some(hash), Some(p)) = (text("programme_hash"), record.get("programme")) {
                    self.programmes.insert((pump, hash.to_owned()), p.clone());
                }
            }
            (Some("verdict"), Some(pump)) => {
                if let (Some(request), Some(outcome)) = (request, text("outcome")) {
                    self.verdicts.insert(
                        (pump, request),
                        (outcome.to_owned(), text("order").map(str::to_owned)),
                    );
                }
            }
            (Some("confirmed"), Some(pump)) => {
                if let Some(request) = request {
                    let by = record
                        .get("by")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    self.confirmations
                        .entry((pump, request))
                        .or_default()
                        .push((
                            text("stage").unwrap_or_default().to_owned(),
                            by,
                            text("at").unwrap_or_default().to_owned(),
                        ));
                }
            }
            (Some("authorised"), Some(pump)) => self.authorised(record, pump, request),
            (Some("delivery"), Some(_)) => self.delivery(record),
            _ => {}
        }
    }

    fn authorised(&mut self, record: &Value, pump: String, request: Option<u64>) {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let programme = text("programme_hash")
            .and_then(|h| self.programmes.get(&(pump.clone(), h.to_owned())))
            .and_then(|p| serde_json::from_value::<Programme>(p.clone()).ok());
        if let (Some(token), Some(programme), Some(request)) = (text("token"), programme, request) {
            self.by_token.insert(token.to_owned(), self.given.len());
            self.given.push(Given {
                token: token.to_owned(),
                pump,
                request,
                programme,
                authorised_at: text("at").unwrap_or_default().to_owned(),
                serial: None,
                events: Vec::new(),
            });
        }
    }

    fn delivery(&mut self, record: &Value) {
        let text = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or_default();
        let serial = text("pump_serial").to_owned();
        if !serial.is_empty() {
            self.pumps.insert(
                serial.clone(),
                (
                    record.get("library_version").and_then(Value::as_u64),
                    text("care_area").to_owned(),
                ),
            );
        }
        if let Some(&i) = self.by_token.get(text("token")) {
            let g = &mut self.given[i];
            g.serial = Some(serial);
            g.events.push((
                text("event").to_owned(),
                text("at").to_owned(),
                text("volume_infused").to_owned(),
            ));
        }
    }

    /// The Bundle: every pump, the gateway, and each administration that
    /// started, with its provenance. `drug_name` gives a library id's
    /// display name; `library_id` names the library's code system.
    pub fn bundle(
        &self,
        library_id: &str,
        drug_name: &dyn Fn(&str) -> Option<String>,
        now: &str,
    ) -> Value {
        let gateway = self.gateway.clone().unwrap_or_else(|| "gateway".to_owned());
        let base = format!("{BASE}/{}", id_part(&gateway));
        let mut entries = Vec::new();
        let mut entry = |kind: &str, id: &str, resource: Value| {
            entries.push(json!({"fullUrl": format!("{base}/{kind}/{id}"), "resource": resource}));
        };
        let gateway_id = format!("gateway-{}", id_part(&gateway));
        entry(
            "Device",
            &gateway_id,
            json!({
                "resourceType": "Device",
                "id": gateway_id,
                "identifier": [{"system": format!("{BASE}/gateway"), "value": gateway}],
                "deviceName": [{"name": format!("pumpgw gateway {gateway}"), "type": "user-friendly-name"}],
                "type": {"text": "Dose error reduction gateway (pumpgw)"},
            }),
        );
        for (serial, (version, care_area)) in &self.pumps {
            let id = pump_id(serial);
            let mut device = json!({
                "resourceType": "Device",
                "id": id,
                "identifier": [{"system": format!("{BASE}/pump-serial"), "value": serial}],
                "serialNumber": serial,
                "type": {"coding": [{
                    "system": "urn:iso:std:iso:11073:10101",
                    "code": "69985",
                    "display": "MDC_DEV_PUMP_INFUS_MDS"
                }], "text": "Infusion pump"},
                "parent": {"reference": format!("Device/{gateway_id}")},
            });
            if let Some(v) = version {
                device["version"] = json!([{
                    "type": {"coding": [{
                        "system": "urn:iso:std:iso:11073:10101",
                        "code": "184517",
                        "display": "MDC_PUMP_DRUG_LIBRARY_VERSION"
                    }], "text": format!("Drug library ({care_area})")},
                    "value": v.to_string()
                }]);
            }
            entry("Device", &id, device);
        }
        for g in self.given.iter().filter(|g| !g.events.is_empty()) {
            let (ma, provenance) = self.administration(g, &gateway, library_id, drug_name);
            let id = format!("ma-{}", id_part(&g.token));
            entry("MedicationAdministration", &id, ma);
            if let Some(p) = provenance {
                entry("Provenance", &format!("prov-{}", id_part(&g.token)), p);
            }
        }
        json!({
            "resourceType": "Bundle",
            "id": format!("pumpgw-{}", id_part(&gateway)),
            "type": "collection",
            "timestamp": now,
            "entry": entries,
        })
    }

    fn administration(
        &self,
        g: &Given,
        gateway: &str,
        library_id: &str,
        drug_name: &dyn Fn(&str) -> Option<String>,
    ) -> (Value, Option<Value>) {
        let id = format!("ma-{}", id_part(&g.token));
        let name = drug_name(&g.programme.drug).unwrap_or_else(|| g.programme.drug.clone());
        let (verdict, order) = self
            .verdicts
            .get(&(g.pump.clone(), g.request))
            .cloned()
            .unwrap_or_else(|| ("unknown".to_owned(), None));
        let last = g.events.last().map_or("", |e| e.0.as_str());
        let status = match last {
            "started" | "resumed" => "in-progress",
            "paused" => "on-hold",
            "stopped" => "stopped",
            "completed" | "bolus_delivered" => "completed",
            _ => "unknown",
        };
        let start = g
            .events
            .first()
            .map_or(g.authorised_at.as_str(), |e| e.1.as_str());
        let mut period = json!({"start": start});
        if matches!(status, "stopped" | "completed") {
            period["end"] = json!(g.events.last().map_or(start, |e| e.1.as_str()));
        }
        let subject = match order.as_ref().and_then(|o| self.patients.get(o)) {
            Some(patient) => json!({"identifier": {"value": patient}}),
            None => json!({"display": format!("The patient at gateway {gateway}")}),
        };
        let mut ma = json!({
            "resourceType": "MedicationAdministration",
            "id": id,
            "identifier": [{"system": format!("{BASE}/token"), "value": g.token}],
            "status": status,
            "medicationCodeableConcept": {
                "coding": [{
                    "system": format!("{BASE}/drug-library/{}", id_part(library_id)),
                    "code": g.programme.drug,
                    "display": name
                }],
                "text": name
            },
            "subject": subject,
            "effectivePeriod": period,
            "dosage": dosage(&g.programme),
            "extension": [{
                "url": format!("{BASE}/StructureDefinition/ders-verdict"),
                "valueCode": verdict
            }],
        });
        if let Some(serial) = &g.serial {
            ma["device"] = json!([{"reference": format!("Device/{}", pump_id(serial))}]);
        }
        if let Some(order) = &order {
            ma["request"] = json!({
                "identifier": {"system": format!("{BASE}/order"), "value": order},
                "display": format!("Order {order}")
            });
        }
        if let Some(infused) = g
            .events
            .last()
            .and_then(|e| crate::units::parse_volume(&e.2).ok())
            .and_then(|v| v.ml().ok())
        {
            ma["extension"]
                .as_array_mut()
                .expect("made an array above")
                .push(json!({
                    "url": format!("{BASE}/StructureDefinition/volume-infused"),
                    "valueQuantity": quantity(infused, "mL")
                }));
        }
        let provenance = self.provenance(g, &id, gateway, &verdict);
        (ma, Some(provenance))
    }

    /// Who confirmed the administration at the bedside, and the gateway
    /// that checked it.
    fn provenance(&self, g: &Given, id: &str, gateway: &str, verdict: &str) -> Value {
        let confirmations = self
            .confirmations
            .get(&(g.pump.clone(), g.request))
            .cloned()
            .unwrap_or_default();
        let mut agents: Vec<Value> = confirmations
            .iter()
            .flat_map(|(stage, by, _)| {
                by.iter().map(move |who| {
                    json!({
                        "type": {"coding": [{
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "verifier",
                            "display": "Verifier"
                        }], "text": format!("confirmed {}", stage.replace('_', " "))},
                        "who": {"identifier": {"system": format!("{BASE}/staff"), "value": who}, "display": who}
                    })
                })
            })
            .collect();
        agents.push(json!({
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "assembler",
                "display": "Assembler"
            }], "text": format!("checked by the dose error reduction cross-check: {verdict}")},
            "who": {"reference": format!("Device/gateway-{}", id_part(gateway))}
        }));
        json!({
            "resourceType": "Provenance",
            "id": format!("prov-{}", id_part(&g.token)),
            "target": [{"reference": format!("MedicationAdministration/{id}")}],
            "recorded": g.authorised_at,
            "activity": {"text": "authorised by the gateway after its cross-check and the bedside confirmations"},
            "agent": agents,
        })
    }
}

/// The dosage: a bolus's dose, or an infusion's rate, in UCUM.
fn dosage(p: &Programme) -> Value {
    let mut d = json!({"route": {"text": "intravenous"}});
    match p.delivery {
        Delivery::Bolus { dose, .. } => {
            let unit = format!(
                "{}{}",
                ucum_amount(dose.unit.amount),
                if dose.unit.per_kg { "/kg" } else { "" }
            );
            d["dose"] = quantity(dose.value, &unit);
        }
        Delivery::Continuous { rate, .. } => {
            let unit = match rate.unit {
                RateUnit::MillilitresPerHour => "mL/h".to_owned(),
                RateUnit::Dose {
                    amount,
                    per_kg,
                    per,
                } => format!(
                    "{}{}/{}",
                    ucum_amount(amount),
                    if per_kg { "/kg" } else { "" },
                    match per {
                        TimeUnit::Second => "s",
                        TimeUnit::Minute => "min",
                        TimeUnit::Hour => "h",
                    }
                ),
            };
            d["rateQuantity"] = quantity(rate.value, &unit);
        }
    }
    d
}

/// A UCUM quantity. The exact value is written as a plain decimal of at
/// most 6 places and read as a JSON number, which prints back the same
/// digits (`serde_json` writes the shortest form that reads back).
fn quantity(value: Exact, ucum: &str) -> Value {
    let number: Value = serde_json::from_str(&format::plain(value, 6)).unwrap_or_else(|_| json!(0));
    json!({"value": number, "unit": ucum, "system": "http://unitsofmeasure.org", "code": ucum})
}

/// A FHIR id part: letters, digits, `-` and `.`, at most 64 characters.
fn id_part(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(55);
    out
}

fn pump_id(serial: &str) -> String {
    format!("pump-{}", id_part(serial))
}
