//! The drug library, format version 2 (version 1 still read), as Rust types.
//!
//! The JSON Schemas `config/schema/drug-library-v2.schema.json` and
//! `-v1` are the published contract; these types mirror them field for
//! field, refuse unknown fields, and hold every number as an exact decimal
//! (written as a JSON string, so no reader anywhere turns a limit into a
//! binary float). Version 2 adds each care area's `orders`; a version 1
//! file reads as `not_used` everywhere.

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;

use crate::units::{
    AmountUnit, BolusUnit, Exact, RateUnit, parse_amount_unit, parse_bolus_unit, parse_number,
    parse_rate_unit,
};

/// The value of the `format` field.
pub const FORMAT_NAME: &str = "pumpgw-drug-library";
/// The format version this build writes and documents; it also reads
/// [`FORMAT_VERSIONS_READ`].
pub const FORMAT_VERSION: u32 = 2;
/// Every format version this build reads.
pub const FORMAT_VERSIONS_READ: [u32; 2] = [1, 2];

/// A whole drug library.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Library {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// One of [`FORMAT_VERSIONS_READ`].
    pub format_version: u32,
    /// Stable identifier of the library (one per hospital or trust).
    pub library_id: String,
    /// Human name.
    pub name: String,
    /// Monotonically increasing version; never reused, never rolled back.
    pub version: u64,
    /// When pharmacy built it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who built it.
    pub author: String,
    /// Who may override soft limits and with which reasons.
    #[serde(default)]
    pub policy: Policy,
    /// The care areas, each with its own drug entries.
    pub care_areas: Vec<CareArea>,
}

/// Library-wide rules for confirmations and overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Roles allowed to override a soft limit.
    #[serde(default = "default_override_roles")]
    pub soft_override_roles: Vec<Role>,
    /// The reasons offered when overriding a soft limit.
    #[serde(default = "default_override_reasons")]
    pub override_reasons: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            soft_override_roles: default_override_roles(),
            override_reasons: default_override_reasons(),
        }
    }
}

fn default_override_roles() -> Vec<Role> {
    vec![Role::Nurse, Role::Doctor]
}

fn default_override_reasons() -> Vec<String> {
    vec![
        "Prescribed dose confirmed with prescriber".to_owned(),
        "Patient-specific protocol".to_owned(),
    ]
}

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Nurse.
    Nurse,
    /// Doctor.
    Doctor,
    /// Pharmacist.
    Pharmacist,
    /// Biomedical engineer.
    BiomedicalEngineer,
}

impl Role {
    /// Whether people in this role confirm anything at the bedside
    /// (`docs/staff.md`): nurses and doctors do; pharmacists and biomedical
    /// engineers never do.
    pub fn confirms_at_bedside(self) -> bool {
        matches!(self, Role::Nurse | Role::Doctor)
    }
}

/// A care area (a profile on the pump): its weight limits and drugs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CareArea {
    /// Identifier, e.g. "adult-icu".
    pub id: String,
    /// Human name, e.g. "Adult critical care".
    pub name: String,
    /// Patient weights accepted in this area.
    #[serde(default)]
    pub patient_weight_kg: Range,
    /// Whether programmes here must match the prescriber's order (format
    /// version 2; version 1 files: not used).
    #[serde(default)]
    pub orders: OrderPolicy,
    /// The drug entries.
    pub drugs: Vec<Drug>,
}

/// Whether a care area checks programmes against the prescriber's order
/// (IHE PCD-03, `docs/interop.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderPolicy {
    /// Every programme needs an open order for its pump, and must match it.
    Required,
    /// A programme is checked against its pump's open order when there is one.
    Optional,
    /// Orders are neither taken nor checked here.
    #[default]
    NotUsed,
}

impl OrderPolicy {
    /// As the library writes it.
    pub fn name(self) -> &'static str {
        match self {
            OrderPolicy::Required => "required",
            OrderPolicy::Optional => "optional",
            OrderPolicy::NotUsed => "not_used",
        }
    }
}

/// An inclusive range where either end may be absent.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lowest allowed value.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub min: Option<Exact>,
    /// Highest allowed value.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub max: Option<Exact>,
}

/// One drug in one care area.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drug {
    /// Identifier the pump and programmes use, e.g. "fentanyl".
    pub id: String,
    /// Generic name in lower case, e.g. "fentanyl".
    pub generic_name: String,
    /// The name shown, in Tall Man lettering where one exists ("fentaNYL").
    pub display_name: String,
    /// High-alert medicine (ISMP): stricter lint and bolus confirmation.
    #[serde(default)]
    pub high_alert: bool,
    /// The concentrations the library knows.
    pub concentrations: Vec<LibraryConcentration>,
    /// Whether, and within which strengths, another concentration may be used.
    #[serde(default)]
    pub custom_concentration: Option<CustomConcentration>,
    /// Continuous infusion limits; absent when the drug is not infused.
    #[serde(default)]
    pub continuous: Option<ContinuousLimits>,
    /// Bolus settings; absent means no bolus.
    #[serde(default)]
    pub bolus: Option<BolusLimits>,
    /// A limit on the total given over a sliding window.
    #[serde(default)]
    pub cumulative: Option<CumulativeLimit>,
    /// Advisory text shown with every programme of this drug.
    #[serde(default)]
    pub advisory: Option<String>,
}

/// A concentration listed in the library.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryConcentration {
    /// Amount of drug in the container.
    #[serde(deserialize_with = "decimal")]
    pub amount: Exact,
    /// Unit of `amount`.
    #[serde(deserialize_with = "amount_unit")]
    pub unit: AmountUnit,
    /// Volume of the container in mL.
    #[serde(deserialize_with = "decimal")]
    pub volume_ml: Exact,
    /// A standard concentration (no extra confirmation beyond the usual).
    #[serde(default = "yes")]
    pub standard: bool,
}

fn yes() -> bool {
    true
}

/// The strengths allowed for a concentration not listed in the library.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomConcentration {
    /// Unit of the bounds (per mL).
    #[serde(deserialize_with = "amount_unit")]
    pub unit: AmountUnit,
    /// Lowest strength per mL.
    #[serde(deserialize_with = "decimal")]
    pub min_per_ml: Exact,
    /// Highest strength per mL.
    #[serde(deserialize_with = "decimal")]
    pub max_per_ml: Exact,
}

/// Continuous dose limits, each optional, in `dose_unit`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinuousLimits {
    /// The dosing unit, which is also the dosing mode (mL/h is volume mode).
    #[serde(deserialize_with = "rate_unit")]
    pub dose_unit: RateUnit,
    /// Below this: hard limit.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub hard_min: Option<Exact>,
    /// Below this: soft limit.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub soft_min: Option<Exact>,
    /// Above this: soft limit.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub soft_max: Option<Exact>,
    /// Above this: hard limit.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub hard_max: Option<Exact>,
}

/// Bolus settings.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BolusLimits {
    /// Whether a bolus may be given at all.
    pub allowed: bool,
    /// Unit of the dose limits ("micrograms" or "micrograms/kg").
    #[serde(default, deserialize_with = "opt_bolus_unit")]
    pub dose_unit: Option<BolusUnit>,
    /// Above this dose: soft limit.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub soft_max: Option<Exact>,
    /// Above this dose: hard limit.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub hard_max: Option<Exact>,
    /// Shortest duration a bolus may be given over, in seconds.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub min_duration_s: Option<Exact>,
    /// Fastest rate a bolus may run at, in mL/h.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub max_rate_ml_per_h: Option<Exact>,
    /// Largest volume of one bolus, in mL.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub max_volume_ml: Option<Exact>,
    /// Largest share of the volume left in the container one bolus may take.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub max_share_of_remaining_percent: Option<Exact>,
    /// How many people (doctors) must confirm a bolus: 1 or 2.
    #[serde(default = "one")]
    pub confirmations: u8,
}

fn one() -> u8 {
    1
}

/// The longest cumulative window a library may set, in minutes (7 days):
/// the gateway keeps and restores this much delivery history, so every
/// window a valid library sets is counted whole.
pub const MAX_WINDOW_MINUTES: u32 = 10_080;

/// A cap on the amount given over a sliding window.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CumulativeLimit {
    /// The largest amount in any window.
    #[serde(deserialize_with = "decimal")]
    pub max: Exact,
    /// Unit of `max` (an amount, never per kg).
    #[serde(deserialize_with = "amount_unit")]
    pub unit: AmountUnit,
    /// Window length in minutes.
    pub window_minutes: u32,
}

impl Library {
    /// The care area with this id.
    pub fn care_area(&self, id: &str) -> Option<&CareArea> {
        self.care_areas.iter().find(|c| c.id == id)
    }

    /// Number of drug entries over all care areas.
    pub fn entry_count(&self) -> usize {
        self.care_areas.iter().map(|c| c.drugs.len()).sum()
    }
}

impl CareArea {
    /// The drug entry with this id.
    pub fn drug(&self, id: &str) -> Option<&Drug> {
        self.drugs.iter().find(|d| d.id == id)
    }
}

fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Exact, D::Error> {
    let s = String::deserialize(d)?;
    parse_number(&s).map_err(|e| serde::de::Error::custom(e.message))
}

fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Exact>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_number(&s).map_err(|e| serde::de::Error::custom(e.message)))
        .transpose()
}

fn amount_unit<'de, D: Deserializer<'de>>(d: D) -> Result<AmountUnit, D::Error> {
    let s = String::deserialize(d)?;
    parse_amount_unit(&s).map_err(|e| serde::de::Error::custom(e.message))
}

fn rate_unit<'de, D: Deserializer<'de>>(d: D) -> Result<RateUnit, D::Error> {
    let s = String::deserialize(d)?;
    parse_rate_unit(&s).map_err(|e| serde::de::Error::custom(e.message))
}

fn opt_bolus_unit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BolusUnit>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_bolus_unit(&s).map_err(|e| serde::de::Error::custom(e.message)))
        .transpose()
}
