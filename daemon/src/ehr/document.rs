//! Documentation out: the infusion events of the log as IHE PCD-10 (IPEC)
//! `ORU^R42` messages, and the pump's status after each as PCD-01 (DEC)
//! `ORU^R01`, in the IEEE 11073-10101 terms and containment IHE's sample
//! uses (MDS 1.0.0.0, VMD 1.1.0.0, delivery information 1.1.1.x, the
//! primary source 1.1.2.x). Built from the records alone, so a message
//! made again after a restart is the same message, with the same control
//! id (the EHR can drop a resend). `docs/interop.md` has the mapping.
//!
//! The [`Documenter`] learns, from the records it is shown in order, each
//! token's programme and the order it was checked against, then turns
//! each `delivery` record into its messages.

use std::collections::HashMap;

use serde_json::Value;

use super::er7::{Field, Message, Segment, Separators};
use crate::ders::Programme;
use crate::format;
use crate::units::{AmountUnit, Exact, RateUnit};

/// MSH-21 of PCD-10.
const IPEC_PROFILE: [&str; 4] = [
    "IHE_PCD_010",
    "IHE PCD",
    "1.3.6.1.4.1.19376.1.6.4.10",
    "ISO",
];
/// MSH-21 of PCD-01.
const DEC_PROFILE: [&str; 4] = [
    "IHE_PCD_001",
    "IHE PCD",
    "1.3.6.1.4.1.19376.1.6.1.1.1",
    "ISO",
];

/// Who sends (MSH-3/4) and to whom (MSH-5/6).
#[derive(Debug, Clone)]
pub struct Origin {
    /// This gateway's id.
    pub gateway: String,
    /// Its care area.
    pub care_area: String,
}

/// An IPEC event, with its IEEE 11073 code (0 where IHE lists the code as
/// pending, as its own sample does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfusionEvent {
    /// `MDC_EVT_PUMP_DELIV_START` (197288): started or resumed.
    Start,
    /// `MDC_EVT_PUMP_DELIV_STOP`: paused or stopped.
    Stop,
    /// `MDC_EVT_PUMP_DELIV_COMP`: completed, or a bolus given.
    Complete,
}

impl InfusionEvent {
    /// The event of a logged delivery (`event` of a `delivery` record).
    pub fn of(delivery: &str) -> Option<InfusionEvent> {
        Some(match delivery {
            "started" | "resumed" => InfusionEvent::Start,
            "paused" | "stopped" => InfusionEvent::Stop,
            "completed" | "bolus_delivered" => InfusionEvent::Complete,
            _ => return None,
        })
    }

    fn coded(self) -> [&'static str; 3] {
        match self {
            InfusionEvent::Start => ["197288", "MDC_EVT_PUMP_DELIV_START", "MDC"],
            InfusionEvent::Stop => ["0", "MDC_EVT_PUMP_DELIV_STOP", "MDC"],
            InfusionEvent::Complete => ["0", "MDC_EVT_PUMP_DELIV_COMP", "MDC"],
        }
    }

    fn delivering(self) -> bool {
        self == InfusionEvent::Start
    }
}

/// What is known of a token's programme.
#[derive(Debug, Clone)]
struct Given {
    programme: Programme,
    /// The prescriber's order it was checked against: its number and the
    /// patient (PID-3) it was for.
    order: Option<(String, Field)>,
}

/// Learns the log in order; makes each delivery's messages. What it
/// keeps is let go once used (a programme once authorised or denied, a
/// token once its delivery ends), so it does not grow with the log.
#[derive(Debug, Default)]
pub struct Documenter {
    /// Programmes by (port, programme hash).
    programmes: HashMap<(String, String), Value>,
    /// The order number a (port, request) was checked against.
    checked: HashMap<(String, u64), String>,
    /// Orders by number: the patient identifier (PID-3).
    orders: HashMap<String, Field>,
    /// What each token gives.
    tokens: HashMap<String, Given>,
}

impl Documenter {
    /// Takes note of one record (any type; the ones that matter are
    /// `order_received`, `programme_requested`, `verdict`, `authorised`).
    pub fn learn(&mut self, pump: Option<&str>, record: &Value) {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let request = record.get("request").and_then(Value::as_u64);
        match (text("type"), pump) {
            (Some("order_received"), _) => {
                if let (Some(number), Some(kept)) = (text("placer"), text("message"))
                    && let Ok(m) = Message::parse(kept.as_bytes())
                    && let Some(pid) = m.segment("PID")
                {
                    self.orders.insert(number.to_owned(), pid.field(3).clone());
                }
            }
            (Some("programme_requested"), Some(pump)) => {
                if let (Some(hash), Some(p)) = (text("programme_hash"), record.get("programme")) {
                    self.programmes
                        .insert((pump.to_owned(), hash.to_owned()), p.clone());
                }
            }
            (Some("verdict"), Some(pump)) => {
                if let (Some(request), Some(order)) = (request, text("order")) {
                    self.checked
                        .insert((pump.to_owned(), request), order.to_owned());
                }
            }
            // What a denial was about is never needed again.
            (Some("denied"), Some(pump)) => {
                if let Some(hash) = text("programme_hash") {
                    self.programmes.remove(&(pump.to_owned(), hash.to_owned()));
                }
                if let Some(request) = request {
                    self.checked.remove(&(pump.to_owned(), request));
                }
            }
            (Some("delivery"), Some(_)) => {
                // A delivery that ends ends its token: nothing more comes
                // under it (the messages of this record are made first).
                if matches!(
                    text("event"),
                    Some("completed" | "stopped" | "bolus_delivered")
                ) && let Some(token) = text("token")
                {
                    self.tokens.remove(token);
                }
            }
            (Some("authorised"), Some(pump)) => {
                let programme = text("programme_hash")
                    .and_then(|h| self.programmes.remove(&(pump.to_owned(), h.to_owned())))
                    .and_then(|p| serde_json::from_value::<Programme>(p).ok());
                if let (Some(token), Some(programme)) = (text("token"), programme) {
                    let order = request
                        .and_then(|r| self.checked.remove(&(pump.to_owned(), r)))
                        .map(|n| {
                            let patient = self.orders.get(&n).cloned().unwrap_or_default();
                            (n, patient)
                        });
                    self.tokens
                        .insert(token.to_owned(), Given { programme, order });
                }
            }
            _ => {}
        }
    }

    /// The messages a record documents, in the order they go: for a
    /// `delivery`, its `ORU^R42` then the pump's status as `ORU^R01`;
    /// nothing for any other record. `drug_name` gives a library id's
    /// display name.
    pub fn messages(
        &self,
        seq: u64,
        record: &Value,
        origin: &Origin,
        drug_name: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Message> {
        let text = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or_default();
        if text("type") != "delivery" {
            return Vec::new();
        }
        let Some(event) = InfusionEvent::of(text("event")) else {
            return Vec::new();
        };
        let given = self.tokens.get(text("token"));
        let facts = Facts {
            seq,
            at: text("at"),
            serial: text("pump_serial"),
            library_version: record
                .get("library_version")
                .and_then(Value::as_u64)
                .map(|v| v.to_string())
                .unwrap_or_default(),
            care_area: text("care_area"),
            volume_infused: text("volume_infused"),
            given,
            drug_name: given.and_then(|g| drug_name(&g.programme.drug)),
        };
        vec![
            facts.message(origin, Some(event)),
            facts.message(origin, None),
        ]
    }
}

/// A pump as it is now (its last STATUS), for the periodic PCD-01.
#[derive(Debug, Clone)]
pub struct Now {
    /// Its serial number.
    pub serial: String,
    /// The library version it runs.
    pub library_version: Option<u64>,
    /// Infusing (a continuous infusion or a bolus running).
    pub infusing: bool,
    /// The drug's display name, when one is loaded.
    pub drug: Option<String>,
    /// Its flow rate now, mL/h, as the pump said it.
    pub flow_ml_per_h: Option<Exact>,
    /// Volume infused since loading, mL.
    pub infused_ml: Option<Exact>,
    /// Volume left in the container, mL.
    pub remaining_ml: Option<Exact>,
    /// When the gateway last heard it.
    pub at: time::OffsetDateTime,
}

/// The periodic PCD-01 `ORU^R01` of a pump: what it is doing now, from its
/// last status. Not from the log (nothing of it is kept): the `n`th
/// periodic message of this run, control id `GATEWAY-P{n}`.
pub fn periodic(now: &Now, origin: &Origin, n: u64) -> Message {
    let stamp = stamp(&crate::store::record::time_text(now.at));
    let control = format!("{}-P{n}", origin.gateway);
    let mut msh = Segment::new("MSH");
    msh.set(1, Field::text("|"))
        .set(2, Field::text("^~\\&"))
        .set(3, Field::components(&[origin.gateway.as_str(), "PUMPGW"]))
        .set(4, Field::text(origin.care_area.clone()))
        .set(7, Field::text(stamp.clone()))
        .set(9, Field::components(&["ORU", "R01", "ORU_R01"]))
        .set(10, Field::text(control.clone()))
        .set(11, Field::text("P"))
        .set(12, Field::text("2.6"))
        .set(15, Field::text("AL"))
        .set(16, Field::text("NE"))
        .set(18, Field::text("UNICODE UTF-8"))
        .set(21, Field::components(&DEC_PROFILE));
    let mut obr = Segment::new("OBR");
    obr.set(1, Field::text("1"))
        .set(3, Field::components(&[control.as_str(), "PUMPGW"]))
        .set(
            4,
            match &now.drug {
                Some(d) => Field::components(&[d.as_str(), d.as_str()]),
                None => Field::components(&["999999", "Medication Unknown"]),
            },
        )
        .set(7, Field::text(stamp));
    let mut obx = Observations::default();
    obx.group("70049", "MDC_DEV_PUMP_INFUS_MDS", "1.0.0.0", &now.serial);
    if let Some(v) = now.library_version {
        obx.text(
            "184517",
            "MDC_PUMP_DRUG_LIBRARY_VERSION",
            "1.0.0.1",
            &v.to_string(),
        );
    }
    obx.delivery_info(now.infusing);
    if let Some(flow) = now.flow_ml_per_h {
        obx.number(
            "0",
            "MDC_FLOW_FLUID_PUMP_CURRENT",
            "1.1.1.2",
            flow,
            &ML_PER_H,
        );
    }
    obx.group("0", "MDC_DEV_PUMP_INFUSATE_SOURCE_PRIMARY", "1.1.2.0", "");
    if let Some(v) = now.infused_ml {
        obx.number("157993", "MDC_VOL_FLUID_DELIV_TOTAL", "1.1.2.7", v, &ML);
    }
    if let Some(v) = now.remaining_ml {
        obx.number("157872", "MDC_VOL_FLUID_TBI_REMAIN", "1.1.2.8", v, &ML);
    }
    if let Some(d) = &now.drug {
        obx.text("184514", "MDC_DRUG_NAME_LABEL", "1.1.2.10", d);
    }
    obx.text(
        "184516",
        "MDC_PUMP_DRUG_LIBRARY_CARE_AREA",
        "1.1.2.12",
        &origin.care_area,
    );
    let mut segments = vec![msh, obr];
    segments.extend(obx.segments);
    Message {
        separators: Separators::default(),
        segments,
    }
}

/// One delivery record and what it was given under.
struct Facts<'a> {
    seq: u64,
    at: &'a str,
    serial: &'a str,
    library_version: String,
    care_area: &'a str,
    volume_infused: &'a str,
    given: Option<&'a Given>,
    drug_name: Option<String>,
}

impl Facts<'_> {
    /// `ORU^R42` for an event, `ORU^R01` (the status) without one.
    fn message(&self, origin: &Origin, event: Option<InfusionEvent>) -> Message {
        let (kind, profile, n) = match event {
            Some(_) => (["ORU", "R42", "ORU_R01"], IPEC_PROFILE, 1),
            None => (["ORU", "R01", "ORU_R01"], DEC_PROFILE, 2),
        };
        let stamp = stamp(self.at);
        let mut msh = Segment::new("MSH");
        msh.set(1, Field::text("|"))
            .set(2, Field::text("^~\\&"))
            .set(3, Field::components(&[origin.gateway.as_str(), "PUMPGW"]))
            .set(4, Field::text(origin.care_area.clone()))
            .set(7, Field::text(stamp.clone()))
            .set(9, Field::components(&kind))
            .set(10, Field::text(control_id(&origin.gateway, self.seq, n)))
            .set(11, Field::text("P"))
            .set(12, Field::text("2.6"))
            .set(15, Field::text("AL"))
            .set(16, Field::text("NE"))
            .set(18, Field::text("UNICODE UTF-8"))
            .set(21, Field::components(&profile));
        let mut segments = vec![msh];
        let order = self.given.and_then(|g| g.order.as_ref());
        if let Some((_, patient)) = order.filter(|(_, p)| !p.is_empty()) {
            // The patient by PID-3 alone: the gateway keeps no names.
            // PID-5 is required by HL7 v2.6, so it says "unspecified"
            // (XPN-7 `U`); the EHR knows whose identifier it is.
            let mut pid = Segment::new("PID");
            pid.set(3, patient.clone())
                .set(5, Field::components(&["", "", "", "", "", "", "U"]));
            segments.push(pid);
        }
        let mut obr = Segment::new("OBR");
        obr.set(1, Field::text("1"));
        if let Some((number, _)) = order {
            obr.set(2, Field::components(&[number.as_str(), "PCD-03"]));
        }
        obr.set(
            3,
            Field::components(&[&format!("{}-{}", origin.gateway, self.seq), "PUMPGW"]),
        )
        .set(
            4,
            match self.given {
                Some(g) => Field::components(&[
                    g.programme.drug.as_str(),
                    self.drug_name.as_deref().unwrap_or(&g.programme.drug),
                ]),
                None => Field::components(&["999999", "Medication Unknown"]),
            },
        )
        .set(7, Field::text(stamp));
        segments.push(obr);
        let mut obx = Observations::default();
        obx.group("70049", "MDC_DEV_PUMP_INFUS_MDS", "1.0.0.0", self.serial);
        obx.text(
            "184517",
            "MDC_PUMP_DRUG_LIBRARY_VERSION",
            "1.0.0.1",
            &self.library_version,
        );
        if let Some(event) = event {
            let [code, name, system] = event.coded();
            obx.coded("0", "MDC_ATTR_EVT_COND", "1.0.0.2", &[code, name, system]);
            obx.text("0", "MDC_ATTR_EVT_SOURCE", "1.0.0.3", "1.1.2.0");
        }
        self.pump(&mut obx, event);
        segments.extend(obx.segments);
        Message {
            separators: Separators::default(),
            segments,
        }
    }

    /// The VMD, its delivery information and the primary source.
    fn pump(&self, obx: &mut Observations, event: Option<InfusionEvent>) {
        let delivering = event.is_none_or(InfusionEvent::delivering);
        obx.delivery_info(delivering);
        let programme = self.given.map(|g| &g.programme);
        let flow = programme.and_then(flow_ml_per_h);
        let now = if delivering {
            flow
        } else {
            Some(Exact::int(0))
        };
        if let Some(now) = now {
            obx.number(
                "0",
                "MDC_FLOW_FLUID_PUMP_CURRENT",
                "1.1.1.2",
                now,
                &ML_PER_H,
            );
        }
        let bolus =
            programme.is_some_and(|p| matches!(p.delivery, crate::ders::Delivery::Bolus { .. }));
        let source = if bolus {
            "pump-source-info-clinician"
        } else {
            "pump-source-info-primary"
        };
        obx.coded("0", "MDC_DEV_PUMP_ACTIVE_SOURCES", "1.1.1.3", &["", source]);
        self.source(obx, delivering, bolus, flow);
    }

    /// The primary source (1.1.2.x): what it delivers, from what.
    fn source(&self, obx: &mut Observations, delivering: bool, bolus: bool, flow: Option<Exact>) {
        let programme = self.given.map(|g| &g.programme);
        obx.group("0", "MDC_DEV_PUMP_INFUSATE_SOURCE_PRIMARY", "1.1.2.0", "");
        let delivery_status = if delivering {
            "pump-delivery-status-delivering"
        } else {
            "pump-delivery-status-not-delivering"
        };
        obx.coded(
            "0",
            "MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS",
            "1.1.2.1",
            &["", delivery_status],
        );
        let mode = if bolus {
            "pump-program-delivery-mode-bolus"
        } else {
            "pump-program-delivery-mode-continuous"
        };
        obx.coded(
            "0",
            "MDC_DEV_PUMP_PROGRAM_DELIVERY_MODE",
            "1.1.2.2",
            &["", mode],
        );
        if let Some(flow) = flow {
            obx.number("157784", "MDC_FLOW_FLUID_PUMP", "1.1.2.4", flow, &ML_PER_H);
        }
        if let Some(p) = programme
            && let crate::ders::Delivery::Continuous { rate, .. } = p.delivery
            && rate.unit != RateUnit::MillilitresPerHour
        {
            obx.number(
                "157924",
                "MDC_RATE_DOSE",
                "1.1.2.5",
                rate.value,
                &rate_unit(rate.unit),
            );
        }
        let vtbi = programme.and_then(|p| match p.delivery {
            crate::ders::Delivery::Continuous { vtbi, .. } => vtbi,
            crate::ders::Delivery::Bolus { pump_volume, .. } => Some(pump_volume),
        });
        if let Some(v) = vtbi.and_then(|v| v.ml().ok()) {
            obx.number("157884", "MDC_VOL_FLUID_TBI", "1.1.2.6", v, &ML);
        }
        let infused = crate::units::parse_volume(self.volume_infused)
            .ok()
            .and_then(|v| v.ml().ok());
        if let Some(infused) = infused {
            obx.number(
                "157993",
                "MDC_VOL_FLUID_DELIV_TOTAL",
                "1.1.2.7",
                infused,
                &ML,
            );
        }
        if let (Some(v), Some(infused)) = (vtbi.and_then(|v| v.ml().ok()), infused)
            && let Ok(left) = v.sub(infused)
        {
            let left = if left.is_negative() {
                Exact::int(0)
            } else {
                left
            };
            obx.number("157872", "MDC_VOL_FLUID_TBI_REMAIN", "1.1.2.8", left, &ML);
        }
        if let Some(p) = programme {
            let name = self.drug_name.clone().unwrap_or_else(|| p.drug.clone());
            obx.text("184514", "MDC_DRUG_NAME_LABEL", "1.1.2.10", &name);
            let c = p.container.concentration;
            if let Some(Ok(per_ml)) = c.per_ml_in(c.unit()) {
                obx.number(
                    "157760",
                    "MDC_CONC_DRUG",
                    "1.1.2.11",
                    per_ml,
                    &concentration_unit(c.unit()),
                );
            }
        }
        obx.text(
            "184516",
            "MDC_PUMP_DRUG_LIBRARY_CARE_AREA",
            "1.1.2.12",
            self.care_area,
        );
        if let Some(kg) = programme
            .and_then(|p| p.patient_weight)
            .and_then(|w| w.kg().ok())
        {
            obx.number("68063", "MDC_ATTR_PT_WEIGHT", "1.1.2.13", kg, &KG);
        }
    }
}

/// The flow rate a programme runs at, mL/h (a continuous infusion's;
/// none for a bolus).
fn flow_ml_per_h(p: &Programme) -> Option<Exact> {
    match p.delivery {
        crate::ders::Delivery::Continuous { rate, .. } => {
            let kg = p.patient_weight.and_then(|w| w.kg().ok());
            crate::ders::flows(rate, p.container.concentration, kg)
                .ok()
                .flatten()
                .map(|(_, ml)| ml)
        }
        crate::ders::Delivery::Bolus { .. } => None,
    }
}

/// MSH-10 of a record's `n`th message: the same every time it is made.
pub fn control_id(gateway: &str, seq: u64, n: u8) -> String {
    format!("{gateway}-{seq}-{n}")
}

/// A record's RFC 3339 time as HL7 DTM (to the millisecond, UTC).
fn stamp(at: &str) -> String {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}.{:03}+0000",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        })
        .unwrap_or_default()
}

/// A unit as OBX-6: the MDC code where one is known, then UCUM.
type Unit = Vec<String>;

fn unit(mdc: Option<(&str, &str)>, ucum: &str) -> Unit {
    let mut parts = Vec::new();
    if let Some((code, name)) = mdc {
        parts.extend([code, name, "MDC"]);
    }
    parts.extend([ucum, ucum, "UCUM"]);
    parts.into_iter().map(str::to_owned).collect()
}

static ML_PER_H: std::sync::LazyLock<Unit> =
    std::sync::LazyLock::new(|| unit(Some(("265266", "MDC_DIM_MILLI_L_PER_HR")), "mL/h"));
static ML: std::sync::LazyLock<Unit> =
    std::sync::LazyLock::new(|| unit(Some(("263762", "MDC_DIM_MILLI_L")), "mL"));
static KG: std::sync::LazyLock<Unit> =
    std::sync::LazyLock::new(|| unit(Some(("263875", "MDC_DIM_KILO_G")), "kg"));

/// UCUM for an amount unit (`units` are international units, `[iU]`).
pub fn ucum_amount(u: AmountUnit) -> &'static str {
    match u.symbol() {
        "micrograms" => "ug",
        "nanograms" => "ng",
        "units" => "[iU]",
        other => other_symbol(other),
    }
}

fn other_symbol(symbol: &str) -> &'static str {
    match symbol {
        "mg" => "mg",
        "g" => "g",
        "mmol" => "mmol",
        _ => "1",
    }
}

fn rate_unit(u: RateUnit) -> Unit {
    match u {
        RateUnit::MillilitresPerHour => ML_PER_H.clone(),
        RateUnit::Dose {
            amount,
            per_kg,
            per,
        } => {
            let ucum = format!(
                "{}{}/{}",
                ucum_amount(amount),
                if per_kg { "/kg" } else { "" },
                match per {
                    crate::units::TimeUnit::Minute => "min",
                    crate::units::TimeUnit::Hour => "h",
                    crate::units::TimeUnit::Second => "s",
                }
            );
            let mdc = (ucum == "ug/kg/min").then_some(("265619", "MDC_DIM_MICRO_G_PER_KG_PER_MIN"));
            unit(mdc, &ucum)
        }
    }
}

fn concentration_unit(u: AmountUnit) -> Unit {
    let ucum = format!("{}/mL", ucum_amount(u));
    let mdc = (ucum == "mg/mL").then_some(("264306", "MDC_DIM_MILLI_G_PER_ML"));
    unit(mdc, &ucum)
}

/// OBX segments, numbered in order.
#[derive(Default)]
struct Observations {
    segments: Vec<Segment>,
}

impl Observations {
    fn next(&mut self, kind: &str, code: &str, name: &str, sub: &str) -> &mut Segment {
        let mut s = Segment::new("OBX");
        s.set(1, Field::text((self.segments.len() + 1).to_string()))
            .set(2, Field::text(kind))
            .set(3, Field::components(&[code, name, "MDC"]))
            .set(4, Field::text(sub));
        self.segments.push(s);
        self.segments.last_mut().expect("just pushed")
    }

    /// The VMD and its delivery information, down to the infusing status.
    fn delivery_info(&mut self, infusing: bool) {
        self.group("70050", "MDC_DEV_PUMP_INFUS_VMD", "1.1.0.0", "");
        self.group("0", "MDC_DEV_PUMP_DELIVERY_INFO", "1.1.1.0", "");
        let status = if infusing {
            "pump-status-infusing"
        } else {
            "pump-status-not-infusing"
        };
        self.coded(
            "184519",
            "MDC_PUMP_INFUSING_STATUS",
            "1.1.1.1",
            &["", status],
        );
    }

    /// A containment level (MDS, VMD, channel): no value, status X; the
    /// MDS names the pump in OBX-18.
    fn group(&mut self, code: &str, name: &str, sub: &str, equipment: &str) {
        let s = self.next("", code, name, sub);
        s.set(11, Field::text("X"));
        if !equipment.is_empty() {
            s.set(18, Field::components(&[equipment, "PUMPGW"]));
        }
    }

    fn text(&mut self, code: &str, name: &str, sub: &str, value: &str) {
        self.next("ST", code, name, sub)
            .set(5, Field::text(value))
            .set(11, Field::text("R"));
    }

    fn coded(&mut self, code: &str, name: &str, sub: &str, value: &[&str]) {
        self.next("CWE", code, name, sub)
            .set(5, Field::components(value))
            .set(11, Field::text("R"));
    }

    fn number(&mut self, code: &str, name: &str, sub: &str, value: Exact, unit: &Unit) {
        self.next("NM", code, name, sub)
            .set(5, Field::text(format::plain(value, 4)))
            .set(6, Field::components(unit))
            .set(11, Field::text("R"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn learnt() -> Documenter {
        let order = include_str!("../../../config/examples/ehr/fentanyl-order.hl7");
        let kept = super::super::order::minimised(
            &Message::parse(order.as_bytes()).expect("the fixture is HL7"),
        );
        let mut d = Documenter::default();
        let p = Some("pump-a");
        d.learn(
            p,
            &json!({"type": "order_received", "placer": "F-2001", "message": kept}),
        );
        d.learn(p, &json!({"type": "programme_requested", "programme_hash": "ab", "programme": {
            "drug": "fentanyl", "library_version": 12, "requested_at": "2026-12-04T10:00:00Z",
            "patient_weight": "70 kg",
            "container": {"concentration": "2500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "50 mL"},
            "delivery": {"kind": "continuous", "rate": "50 micrograms/h", "vtbi": "50 mL", "pump_flow_rate": "1 mL/h"}}}));
        d.learn(
            p,
            &json!({"type": "verdict", "request": 3, "order": "F-2001"}),
        );
        d.learn(
            p,
            &json!({"type": "authorised", "request": 3, "programme_hash": "ab", "token": "t1"}),
        );
        d
    }

    fn origin() -> Origin {
        Origin {
            gateway: "bed-12".into(),
            care_area: "adult-icu".into(),
        }
    }

    fn delivery(event: &str, infused: &str) -> Value {
        json!({"type": "delivery", "event": event, "token": "t1", "at": "2026-12-04T10:00:05.250Z",
               "pump_serial": "A0001", "library_version": 12, "care_area": "adult-icu",
               "volume_infused": infused})
    }

    #[test]
    fn a_delivery_start_is_an_ipec_event_and_a_dec_status_with_the_order_and_the_patient() {
        let names = |id: &str| (id == "fentanyl").then(|| "fentaNYL".to_owned());
        let m = learnt().messages(41, &delivery("started", "0 mL"), &origin(), &names);
        assert_eq!(m.len(), 2);
        let r42 = m[0].to_er7();
        for part in [
            "|ORU^R42^ORU_R01|bed-12-41-1|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_010^IHE PCD^1.3.6.1.4.1.19376.1.6.4.10^ISO\r",
            "\rPID|||98765^^^IHE^PI||^^^^^^U\r",
            "\rOBR|1|F-2001^PCD-03|bed-12-41^PUMPGW|fentanyl^fentaNYL|||20261204100005.250+0000\r",
            "\rOBX|1||70049^MDC_DEV_PUMP_INFUS_MDS^MDC|1.0.0.0|||||||X|||||||A0001^PUMPGW\r",
            "\rOBX|2|ST|184517^MDC_PUMP_DRUG_LIBRARY_VERSION^MDC|1.0.0.1|12||||||R\r",
            "|0^MDC_ATTR_EVT_COND^MDC|1.0.0.2|197288^MDC_EVT_PUMP_DELIV_START^MDC||||||R\r",
            "|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.2.4|1|265266^MDC_DIM_MILLI_L_PER_HR^MDC^mL/h^mL/h^UCUM|||||R\r",
            "|157924^MDC_RATE_DOSE^MDC|1.1.2.5|50|ug/h^ug/h^UCUM|||||R\r",
            "|157872^MDC_VOL_FLUID_TBI_REMAIN^MDC|1.1.2.8|50|263762^MDC_DIM_MILLI_L^MDC^mL^mL^UCUM|||||R\r",
            "|184514^MDC_DRUG_NAME_LABEL^MDC|1.1.2.10|fentaNYL||||||R\r",
            "|157760^MDC_CONC_DRUG^MDC|1.1.2.11|50|ug/mL^ug/mL^UCUM|||||R\r",
            "|184516^MDC_PUMP_DRUG_LIBRARY_CARE_AREA^MDC|1.1.2.12|adult-icu||||||R\r",
            "|68063^MDC_ATTR_PT_WEIGHT^MDC|1.1.2.13|70|263875^MDC_DIM_KILO_G^MDC^kg^kg^UCUM|||||R\r",
        ] {
            assert!(
                r42.contains(part),
                "{part:?} not in\n{}",
                r42.replace('\r', "\n")
            );
        }
        let r01 = m[1].to_er7();
        assert!(r01.contains("|ORU^R01^ORU_R01|bed-12-41-2|"), "{r01}");
        assert!(r01.contains("IHE_PCD_001"), "{r01}");
        assert!(!r01.contains("MDC_ATTR_EVT_COND"), "{r01}");
        // Made again (after a restart): the same bytes.
        let again = learnt().messages(41, &delivery("started", "0 mL"), &origin(), &names);
        assert_eq!(again[0].to_er7(), r42);
    }

    #[test]
    fn a_periodic_status_says_what_the_pump_does_now() {
        let now = Now {
            serial: "A0001".into(),
            library_version: Some(12),
            infusing: true,
            drug: Some("fentaNYL".into()),
            flow_ml_per_h: Some(Exact::int(1)),
            infused_ml: crate::units::parse_number("0.25").ok(),
            remaining_ml: crate::units::parse_number("49.75").ok(),
            at: time::macros::datetime!(2026-12-04 10:00:00 UTC),
        };
        let m = periodic(&now, &origin(), 3).to_er7();
        for part in [
            "|ORU^R01^ORU_R01|bed-12-P3|P|2.6|",
            "\rOBR|1||bed-12-P3^PUMPGW|fentaNYL^fentaNYL|||20261204100000.000+0000\r",
            "|^pump-status-infusing|",
            "^MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.1.2.7|0.25|",
            "^MDC_VOL_FLUID_TBI_REMAIN^MDC|1.1.2.8|49.75|",
        ] {
            assert!(m.contains(part), "{part:?} not in {m}");
        }
    }

    #[test]
    fn a_stop_says_not_infusing_and_what_is_left_and_unknown_tokens_still_document() {
        let names = |_: &str| None;
        let m = learnt().messages(42, &delivery("stopped", "20 mL"), &origin(), &names);
        let r42 = m[0].to_er7();
        assert!(r42.contains("|0^MDC_EVT_PUMP_DELIV_STOP^MDC|"), "{r42}");
        assert!(r42.contains("|^pump-status-not-infusing|"), "{r42}");
        assert!(
            r42.contains("^MDC_FLOW_FLUID_PUMP_CURRENT^MDC|1.1.1.2|0|"),
            "{r42}"
        );
        assert!(
            r42.contains("^MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.1.2.7|20|"),
            "{r42}"
        );
        assert!(
            r42.contains("^MDC_VOL_FLUID_TBI_REMAIN^MDC|1.1.2.8|30|"),
            "{r42}"
        );
        let mut other = delivery("completed", "1 mL");
        other["token"] = json!("unknown");
        let m = Documenter::default().messages(43, &other, &origin(), &names);
        let r42 = m[0].to_er7();
        assert!(r42.contains("|999999^Medication Unknown|"), "{r42}");
        assert!(!r42.contains("\rPID"), "{r42}");
        assert!(
            Documenter::default()
                .messages(44, &json!({"type": "alarm"}), &origin(), &names)
                .is_empty()
        );
    }
}
