//! Library lint: what a pharmacist must fix before signing a library, beyond
//! what the JSON Schema can say (limits in order, units that agree, no
//! duplicates, high-alert drugs fully limited, Tall Man names that spell the
//! generic name).

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::model::{BolusLimits, ContinuousLimits, Drug, Library, MAX_WINDOW_MINUTES, Range};
use crate::format;
use crate::units::{AmountKind, AmountUnit, Exact, RateUnit};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The library must not be used.
    Error,
    /// Worth a second look; does not refuse the library.
    Warning,
}

/// One problem, where it is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Stable machine code, e.g. "soft-outside-hard".
    pub code: &'static str,
    /// JSON path, e.g. `$.care_areas[0].drugs[2].bolus.hard_max`.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl Finding {
    /// An error.
    pub fn error(code: &'static str, path: &str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            code,
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// A warning.
    pub fn warning(code: &'static str, path: &str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            code,
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}] {}: {}", self.code, self.path, self.message)
    }
}

struct Linter {
    findings: Vec<Finding>,
}

impl Linter {
    fn error(&mut self, code: &'static str, path: &str, message: String) {
        self.findings.push(Finding::error(code, path, message));
    }

    fn warning(&mut self, code: &'static str, path: &str, message: String) {
        self.findings.push(Finding::warning(code, path, message));
    }

    /// Check that the named limits, where present, rise in the given order.
    fn ordered(&mut self, path: &str, unit: &str, limits: &[(&str, Option<Exact>)]) {
        let present: Vec<(&str, Exact)> = limits
            .iter()
            .filter_map(|(name, v)| v.map(|v| (*name, v)))
            .collect();
        for (i, (lo_name, lo)) in present.iter().enumerate() {
            for (hi_name, hi) in &present[i + 1..] {
                if lo > hi {
                    let code = if lo_name.starts_with("soft") == hi_name.starts_with("soft") {
                        "min-above-max"
                    } else {
                        "soft-outside-hard"
                    };
                    let (a, b) = format::distinct(*lo, *hi);
                    self.error(
                        code,
                        &format!("{path}.{lo_name}"),
                        format!("{lo_name} ({a} {unit}) is above {hi_name} ({b} {unit})"),
                    );
                }
            }
        }
    }
}

/// Lint a library that has already passed the schema.
pub fn lint_model(library: &Library) -> Vec<Finding> {
    let mut l = Linter {
        findings: Vec::new(),
    };
    if library.format_version == 1 {
        l.warning(
            "format-version-1",
            "$.format_version",
            "format version 1 cannot say whether a care area checks programmes against the prescriber's order, so no care area does; to use orders, set format_version to 2, give every care area `orders` (required, optional or not_used) and sign it again".to_owned(),
        );
    }
    for (i, role) in library.policy.soft_override_roles.iter().enumerate() {
        if !role.confirms_at_bedside() {
            l.error(
                "override-role-not-at-bedside",
                &format!("$.policy.soft_override_roles[{i}]"),
                format!(
                    "{} confirm nothing at the bedside, so they cannot override a soft limit; only nurses and doctors can",
                    format::name(role).replace('_', " ") + "s"
                ),
            );
        }
    }
    let mut area_ids: HashMap<&str, usize> = HashMap::new();
    for (ai, area) in library.care_areas.iter().enumerate() {
        let apath = format!("$.care_areas[{ai}]");
        if let Some(first) = area_ids.insert(area.id.as_str(), ai) {
            l.error(
                "duplicate-id",
                &format!("{apath}.id"),
                format!(
                    "care area id {:?} is also used by $.care_areas[{first}]",
                    area.id
                ),
            );
        }
        weight_range(&mut l, &apath, area.patient_weight_kg);
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        for (di, drug) in area.drugs.iter().enumerate() {
            let dpath = format!("{apath}.drugs[{di}]");
            if let Some(first) = ids.insert(drug.id.as_str(), di) {
                l.error(
                    "duplicate-id",
                    &format!("{dpath}.id"),
                    format!(
                        "drug id {:?} is also used by {apath}.drugs[{first}]",
                        drug.id
                    ),
                );
            }
            for name in [&drug.generic_name, &drug.display_name] {
                let key = name.to_lowercase();
                if let Some(&first) = names.get(&key)
                    && first != di
                {
                    l.error(
                        "duplicate-name",
                        &format!("{dpath}.generic_name"),
                        format!(
                            "drug name {name:?} is also used by {apath}.drugs[{first}] in care area {:?}",
                            area.id
                        ),
                    );
                }
                names.insert(key, di);
            }
            let per_kg = drug.continuous.is_some_and(|c| c.dose_unit.per_kg())
                || drug
                    .bolus
                    .is_some_and(|b| b.allowed && b.dose_unit.is_some_and(|u| u.per_kg));
            if per_kg
                && (area.patient_weight_kg.min.is_none() || area.patient_weight_kg.max.is_none())
            {
                l.warning(
                    "weight-limits-missing",
                    &format!("{apath}.patient_weight_kg"),
                    format!(
                        "{} is dosed per kg but care area {:?} has no patient weight limits",
                        drug.display_name, area.id
                    ),
                );
            }
            lint_drug(&mut l, &dpath, drug);
        }
    }
    l.findings
        .extend(super::consistency::lint_consistency(library));
    l.findings
}

fn weight_range(l: &mut Linter, apath: &str, range: Range) {
    if let (Some(min), Some(max)) = (range.min, range.max)
        && min > max
    {
        let (a, b) = format::distinct(min, max);
        l.error(
            "min-above-max",
            &format!("{apath}.patient_weight_kg.min"),
            format!("minimum patient weight {a} kg is above the maximum {b} kg"),
        );
    }
    if range.max.is_some_and(Exact::is_zero) {
        l.error(
            "zero-limit",
            &format!("{apath}.patient_weight_kg.max"),
            "maximum patient weight is zero".to_owned(),
        );
    }
}

fn lint_drug(l: &mut Linter, dpath: &str, drug: &Drug) {
    if drug.display_name.to_lowercase() != drug.generic_name.to_lowercase() {
        l.error(
            "tall-man-mismatch",
            &format!("{dpath}.display_name"),
            format!(
                "display name {:?} does not spell the generic name {:?} (Tall Man lettering may only change letter case)",
                drug.display_name, drug.generic_name
            ),
        );
    }
    let kind = lint_concentrations(l, dpath, drug);
    if let Some(c) = drug.continuous {
        lint_continuous(l, dpath, drug, c, kind);
    }
    if let Some(b) = drug.bolus {
        lint_bolus(l, dpath, drug, &b, kind);
    }
    if let Some(cum) = drug.cumulative
        && !(1..=MAX_WINDOW_MINUTES).contains(&cum.window_minutes)
    {
        l.error(
            "window-out-of-range",
            &format!("{dpath}.cumulative.window_minutes"),
            format!(
                "a cumulative window of {} minutes is not between 1 and {} (7 days, the delivery history the gateway keeps)",
                format::count(u64::from(cum.window_minutes)),
                format::count(u64::from(MAX_WINDOW_MINUTES))
            ),
        );
    }
    if let Some(cum) = drug.cumulative
        && let Some(k) = kind
        && cum.unit.kind() != k
    {
        l.error(
            "unit-mismatch",
            &format!("{dpath}.cumulative.unit"),
            format!(
                "cumulative limit is in {} but the concentrations are in {k}",
                cum.unit
            ),
        );
    }
    if drug.continuous.is_none() && !drug.bolus.is_some_and(|b| b.allowed) {
        l.error(
            "no-delivery",
            dpath,
            format!(
                "{} has neither continuous limits nor an allowed bolus, so nothing can be given",
                drug.display_name
            ),
        );
    }
}

/// Returns the amount kind of the concentrations when they agree.
fn lint_concentrations(l: &mut Linter, dpath: &str, drug: &Drug) -> Option<AmountKind> {
    let mut kind = None;
    let mut seen: Vec<(usize, AmountUnit, Exact, Exact)> = Vec::new();
    if !drug.concentrations.iter().any(|c| c.standard) {
        l.warning(
            "no-standard-concentration",
            &format!("{dpath}.concentrations"),
            format!(
                "{} has no standard concentration: every container will raise a soft alert",
                drug.display_name
            ),
        );
    }
    for (ci, c) in drug.concentrations.iter().enumerate() {
        let cpath = format!("{dpath}.concentrations[{ci}]");
        let k = c.unit.kind();
        match kind {
            None => kind = Some(k),
            Some(first) if first != k => l.error(
                "unit-mismatch",
                &format!("{cpath}.unit"),
                format!(
                    "concentration is in {} but an earlier one counts {first}",
                    c.unit
                ),
            ),
            Some(_) => {}
        }
        if c.volume_ml.is_zero() || c.amount.is_zero() {
            l.error(
                "zero-limit",
                &cpath,
                "a concentration needs a non-zero amount and volume".to_owned(),
            );
            continue;
        }
        let Ok(per_ml) = c
            .amount
            .mul_int(c.unit.base_factor())
            .and_then(|a| a.div(c.volume_ml))
        else {
            l.error("overflow", &cpath, "concentration too large".to_owned());
            continue;
        };
        if let Some(&(first, ..)) = seen
            .iter()
            .find(|(_, u, a, v)| *u == c.unit && *a == c.amount && *v == c.volume_ml)
        {
            l.error(
                "duplicate-concentration",
                &cpath,
                format!("the same concentration is listed at {dpath}.concentrations[{first}]"),
            );
        }
        seen.push((ci, c.unit, c.amount, c.volume_ml));
        if let Some(custom) = drug.custom_concentration {
            let factor = custom.unit.base_factor();
            let lo = custom.min_per_ml.mul_int(factor);
            let hi = custom.max_per_ml.mul_int(factor);
            if let (Ok(lo), Ok(hi)) = (lo, hi)
                && custom.unit.kind() == k
                && (per_ml < lo || per_ml > hi)
            {
                l.error(
                    "concentration-outside-range",
                    &cpath,
                    format!(
                        "{} per mL is outside the custom range {} to {} {}/mL of the same drug",
                        format::number(per_ml.div_int(c.unit.base_factor()).unwrap_or(per_ml)),
                        format::number(custom.min_per_ml),
                        format::number(custom.max_per_ml),
                        custom.unit
                    ),
                );
            }
        }
    }
    if let Some(custom) = drug.custom_concentration {
        let cpath = format!("{dpath}.custom_concentration");
        if kind.is_some_and(|k| k != custom.unit.kind()) {
            l.error(
                "unit-mismatch",
                &format!("{cpath}.unit"),
                format!(
                    "custom range is in {} but the concentrations are not",
                    custom.unit
                ),
            );
        }
        l.ordered(
            &cpath,
            &format!("{}/mL", custom.unit),
            &[
                ("min_per_ml", Some(custom.min_per_ml)),
                ("max_per_ml", Some(custom.max_per_ml)),
            ],
        );
    }
    kind
}

fn lint_continuous(
    l: &mut Linter,
    dpath: &str,
    drug: &Drug,
    c: ContinuousLimits,
    kind: Option<AmountKind>,
) {
    let cpath = format!("{dpath}.continuous");
    if let (RateUnit::Dose { amount, .. }, Some(k)) = (c.dose_unit, kind)
        && amount.kind() != k
    {
        l.error(
            "unit-mismatch",
            &format!("{cpath}.dose_unit"),
            format!(
                "dose unit {} does not count the same thing as the concentrations ({k})",
                c.dose_unit
            ),
        );
    }
    l.ordered(
        &cpath,
        &c.dose_unit.to_string(),
        &[
            ("hard_min", c.hard_min),
            ("soft_min", c.soft_min),
            ("soft_max", c.soft_max),
            ("hard_max", c.hard_max),
        ],
    );
    if drug.high_alert && c.hard_max.is_none() {
        l.error(
            "high-alert-unlimited",
            &format!("{cpath}.hard_max"),
            format!(
                "{} is high-alert but has no continuous hard maximum",
                drug.display_name
            ),
        );
    }
    if c.soft_max.is_none() && c.hard_max.is_none() {
        l.warning(
            "no-upper-limit",
            &cpath,
            format!("{} has no upper continuous limit at all", drug.display_name),
        );
    }
}

fn lint_bolus(l: &mut Linter, dpath: &str, drug: &Drug, b: &BolusLimits, kind: Option<AmountKind>) {
    let bpath = format!("{dpath}.bolus");
    let limits_set = b.dose_unit.is_some()
        || b.soft_max.is_some()
        || b.hard_max.is_some()
        || b.min_duration_s.is_some()
        || b.max_rate_ml_per_h.is_some()
        || b.max_volume_ml.is_some()
        || b.max_share_of_remaining_percent.is_some();
    if !b.allowed {
        if limits_set {
            l.warning(
                "bolus-limits-unused",
                &bpath,
                "bolus is not allowed, so its limits are never used".to_owned(),
            );
        }
        return;
    }
    if let (Some(u), Some(k)) = (b.dose_unit, kind)
        && u.amount.kind() != k
    {
        l.error(
            "unit-mismatch",
            &format!("{bpath}.dose_unit"),
            format!(
                "bolus dose unit {u} does not count the same thing as the concentrations ({k})"
            ),
        );
    }
    let unit = b.dose_unit.map(|u| u.to_string()).unwrap_or_default();
    l.ordered(
        &bpath,
        &unit,
        &[("soft_max", b.soft_max), ("hard_max", b.hard_max)],
    );
    if let Some(share) = b.max_share_of_remaining_percent
        && share > Exact::int(100)
    {
        l.error(
            "share-over-100",
            &format!("{bpath}.max_share_of_remaining_percent"),
            format!(
                "a bolus cannot take {}% of what is left in the container",
                format::number(share)
            ),
        );
    }
    for (name, v) in [
        ("min_duration_s", b.min_duration_s),
        ("max_rate_ml_per_h", b.max_rate_ml_per_h),
        ("max_volume_ml", b.max_volume_ml),
        (
            "max_share_of_remaining_percent",
            b.max_share_of_remaining_percent,
        ),
    ] {
        if name != "min_duration_s" && v.is_some_and(Exact::is_zero) {
            l.error(
                "zero-limit",
                &format!("{bpath}.{name}"),
                format!(
                    "{name} is zero, so no bolus could ever pass; set allowed to false instead"
                ),
            );
        }
    }
    if drug.high_alert {
        if b.hard_max.is_none() {
            l.error(
                "high-alert-unlimited",
                &format!("{bpath}.hard_max"),
                format!(
                    "{} is high-alert and allows a bolus, but has no bolus hard maximum",
                    drug.display_name
                ),
            );
        }
        // The share of what is left is the check that catches a wrong
        // concentration (the HSIB whole-syringe bolus): required, not optional.
        if b.max_share_of_remaining_percent.is_none() {
            l.error(
                "high-alert-unlimited",
                &format!("{bpath}.max_share_of_remaining_percent"),
                format!(
                    "{} is high-alert and allows a bolus, but does not limit the bolus's share of what is left in the container",
                    drug.display_name
                ),
            );
        }
    }
    if b.min_duration_s.is_none() && b.max_rate_ml_per_h.is_none() {
        l.warning(
            "bolus-rate-unlimited",
            &bpath,
            format!(
                "{} allows a bolus with neither a minimum duration nor a maximum rate",
                drug.display_name
            ),
        );
    }
}
