//! What the cross-check is asked about: a programme as the pump sent it, and
//! (in files) the bed's recent exposure to each drug (see [`super::exposure`]).
//!
//! In files (the `ders check` CLI) every quantity is written as people write
//! it ("2,500 micrograms in 50 mL") and parsed by [`crate::units`]; the JSON
//! Schemas are `config/schema/programme-v1.schema.json` and
//! `config/schema/history-v1.schema.json`.

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;

use super::exposure::{Delivered, History, Pending, Running};
use crate::units::{
    Amount, AmountUnit, Concentration, Dose, Duration, Rate, RateUnit, TimeUnit, Volume, Weight,
    parse_amount, parse_concentration, parse_dose, parse_duration, parse_rate, parse_volume,
    parse_weight,
};

/// An infusion or bolus programme, with the pump's own arithmetic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    /// Drug id in the library.
    pub drug: String,
    /// The care area the pump is set to, if it says; must match the gateway's.
    #[serde(default)]
    pub care_area: Option<String>,
    /// The library version the pump is running.
    pub library_version: u64,
    /// When the programme was requested (the "now" of the check).
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// Patient weight, needed for doses per kg.
    #[serde(default, deserialize_with = "opt_weight")]
    pub patient_weight: Option<Weight>,
    /// The container loaded on the pump.
    pub container: Container,
    /// What is to be given.
    pub delivery: Delivery,
}

/// The syringe or bag.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    /// The concentration programmed for it.
    #[serde(deserialize_with = "concentration")]
    pub concentration: Concentration,
    /// The volume it held when loaded.
    #[serde(deserialize_with = "volume")]
    pub volume_loaded: Volume,
    /// The volume left now.
    #[serde(deserialize_with = "volume")]
    pub volume_remaining: Volume,
    /// The controller's count of container loads (a new container, a new
    /// number); absent, every programme counts as a new load.
    #[serde(default)]
    pub load: Option<u32>,
}

/// Continuous infusion or bolus.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Delivery {
    /// A continuous infusion.
    Continuous {
        /// Dose rate ("0.05 micrograms/kg/min") or flow rate ("5 mL/h").
        #[serde(deserialize_with = "rate")]
        rate: Rate,
        /// Volume to be infused.
        #[serde(default, deserialize_with = "opt_volume")]
        vtbi: Option<Volume>,
        /// The flow rate the pump computed and will run at.
        #[serde(deserialize_with = "rate")]
        pump_flow_rate: Rate,
    },
    /// A bolus.
    Bolus {
        /// The dose ("25 micrograms" or "0.5 micrograms/kg").
        #[serde(deserialize_with = "dose")]
        dose: Dose,
        /// Over how long.
        #[serde(default, deserialize_with = "opt_duration")]
        duration: Option<Duration>,
        /// The volume the pump computed and will give.
        #[serde(deserialize_with = "volume")]
        pump_volume: Volume,
    },
}

/// History file entry with its drug id: an amount given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFileEntry {
    drug: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[serde(deserialize_with = "amount")]
    amount: Amount,
    #[serde(default, deserialize_with = "opt_amount_per_hour")]
    rate: Option<Amount>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    since: Option<OffsetDateTime>,
}

/// History file entry: an infusion running (or authorised, not started).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunningFileEntry {
    drug: String,
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
    #[serde(deserialize_with = "amount_per_hour")]
    rate: Amount,
    #[serde(default, deserialize_with = "opt_amount")]
    left: Option<Amount>,
    #[serde(default)]
    source: Option<String>,
}

/// History file entry: a bolus authorised and not yet reported given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingFileEntry {
    drug: String,
    #[serde(deserialize_with = "amount")]
    amount: Amount,
    #[serde(default)]
    source: Option<String>,
}

/// A history file (`history-v1.schema.json`): deliveries, running
/// infusions and pending boluses of any drug; [`HistoryFile::for_drug`]
/// picks one drug's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryFile {
    deliveries: Vec<HistoryFileEntry>,
    #[serde(default)]
    running: Vec<RunningFileEntry>,
    #[serde(default)]
    pending: Vec<PendingFileEntry>,
}

impl HistoryFile {
    /// The exposure to one drug.
    pub fn for_drug(&self, drug: &str) -> History {
        History {
            deliveries: self
                .deliveries
                .iter()
                .filter(|d| d.drug == drug)
                .map(|d| Delivered {
                    at: d.at,
                    amount: d.amount,
                    rate: d.rate,
                    since: d.since,
                })
                .collect(),
            running: self
                .running
                .iter()
                .filter(|r| r.drug == drug)
                .map(|r| Running {
                    since: r.since,
                    per_hour: r.rate,
                    left: r.left,
                    source: r.source.clone(),
                })
                .collect(),
            pending: self
                .pending
                .iter()
                .filter(|p| p.drug == drug)
                .map(|p| Pending {
                    amount: p.amount,
                    source: p.source.clone(),
                })
                .collect(),
        }
    }
}

fn opt_amount_per_hour<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Amount>, D::Error> {
    #[derive(Deserialize)]
    struct Rate(#[serde(deserialize_with = "amount_per_hour")] Amount);
    Ok(Option::<Rate>::deserialize(d)?.map(|r| r.0))
}

/// A running infusion's rate: an amount per time ("100 micrograms/h"), as
/// the amount per hour. Per kg or in mL/h it cannot be counted without the
/// programme, so it is refused.
fn amount_per_hour<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
    let s = text(d)?;
    let rate = parse_rate(&s).map_err(serde::de::Error::custom)?;
    match rate.unit {
        RateUnit::Dose {
            amount,
            per_kg: false,
            per,
        } => rate
            .value
            .mul_int(TimeUnit::Hour.millis())
            .and_then(|v| v.div_int(per.millis()))
            .and_then(|v| Amount::new(v, amount))
            .map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom(format!(
            "{s:?}: an infusion's rate is an amount per time, such as \"100 micrograms/h\" (not per kg, not mL/h)"
        ))),
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

macro_rules! quantity_field {
    ($name:ident, $opt:ident, $ty:ty, $parse:expr) => {
        fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            let s = text(d)?;
            $parse(&s).map_err(serde::de::Error::custom)
        }
        #[allow(dead_code)]
        fn $opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| $parse(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    };
}

quantity_field!(
    concentration,
    _opt_concentration,
    Concentration,
    parse_concentration
);
quantity_field!(volume, opt_volume, Volume, parse_volume);
quantity_field!(rate, _opt_rate, Rate, parse_rate);
quantity_field!(dose, _opt_dose, Dose, parse_dose);
quantity_field!(_duration, opt_duration, Duration, parse_duration);
quantity_field!(_weight, opt_weight, Weight, parse_weight);
quantity_field!(amount, opt_amount, Amount, |s: &str| parse_amount(s)
    .map(|(a, _): (Amount, AmountUnit)| a));
