//! The cross-check itself: a pure function of (library, care area,
//! programme, history) that recomputes volume, rate and dose from the raw
//! inputs and never trusts the pump's arithmetic. Every rule is in
//! `docs/ders.md`; any value that cannot be computed exactly blocks.

use super::exposure::{ExposureError, History, KindMismatch, Request, Worst, worst_window};
use super::programme::{Delivery, Programme};
use super::verdict::{Code, Outcome, Reason, Verdict};
use crate::format;
use crate::library::{CareArea, ContinuousLimits, Drug, Library};
use crate::units::{
    ArithmeticError, BolusUnit, Concentration, Exact, Rate, RateUnit, TimeUnit, Volume, Weight,
};

/// How far the pump's own flow rate and bolus volume may differ from the
/// gateway's, relative to the gateway's: 1%, and nothing absolute, so no
/// disagreement above 1% passes at any rate (a floor in mL/h let a doubled
/// rate through at neonatal rates). A pump that rounds its figure more
/// coarsely than that at low rates must send more decimal places. The
/// limits are applied to the worse of the two figures, so the tolerance
/// decides only whether the pump's arithmetic is trusted at all.
pub const TOLERANCE_PERCENT: i128 = 1;

type Calc<T> = Result<T, ArithmeticError>;

/// Cross-check `programme` against `library` for the gateway's `care_area`.
pub fn check(
    library: &Library,
    care_area: &str,
    programme: &Programme,
    history: &History,
) -> Verdict {
    let mut reasons = Vec::new();
    let mut computed = Vec::new();
    if let Err(e) = run(
        library,
        care_area,
        programme,
        history,
        &mut reasons,
        &mut computed,
    ) {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::ArithmeticError,
            format!("The gateway could not compute this programme exactly ({e}); it is blocked."),
        ));
    }
    Verdict::from_reasons(reasons, computed)
}

#[allow(clippy::too_many_lines)] // the order of the rules, read top to bottom
fn run(
    library: &Library,
    care_area: &str,
    p: &Programme,
    history: &History,
    reasons: &mut Vec<Reason>,
    computed: &mut Vec<(String, String)>,
) -> Calc<()> {
    let Some(area) = library.care_area(care_area) else {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::CareAreaMismatch,
            format!(
                "Care area {care_area:?} is not in drug library version {}.",
                library.version
            ),
        ));
        return Ok(());
    };
    if let Some(pump_area) = &p.care_area
        && pump_area != care_area
    {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::CareAreaMismatch,
            format!(
                "The pump is set to care area {pump_area:?} but this bed is {care_area:?} ({}). Set the pump's care area.",
                area.name
            ),
        ));
    }
    if p.library_version != library.version {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::LibraryVersionMismatch,
            format!(
                "The pump runs drug library version {} but the approved version is {}. The pump must be updated before use.",
                p.library_version, library.version
            ),
        ));
    }
    let Some(drug) = area.drug(&p.drug) else {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::DrugNotInLibrary,
            format!(
                "Drug {:?} is not in the library for {}. It cannot be given through the drug library here.",
                p.drug, area.name
            ),
        ));
        return Ok(());
    };
    let name = drug.display_name.as_str();
    let c = p.container;
    computed.push((
        "concentration".into(),
        format::concentration(c.concentration),
    ));
    if c.volume_remaining > c.volume_loaded {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::ContainerInconsistent,
            format!(
                "The pump says {} is left in a container loaded with {}; that is impossible. Check the container.",
                format::volume(c.volume_remaining),
                format::volume(c.volume_loaded)
            ),
        ));
    }
    check_concentration(drug, c.concentration, reasons)?;
    let weight_kg = check_weight(area, drug, p, reasons)?;
    match p.delivery {
        Delivery::Continuous {
            rate,
            vtbi: _,
            pump_flow_rate,
        } => check_continuous(
            drug,
            c.concentration,
            rate,
            pump_flow_rate,
            weight_kg,
            p,
            history,
            reasons,
            computed,
        )?,
        Delivery::Bolus {
            dose,
            duration,
            pump_volume,
        } => {
            let Some(bolus) = drug.bolus.filter(|b| b.allowed) else {
                reasons.push(Reason::new(
                    Outcome::Block,
                    Code::BolusNotAllowed,
                    format!("{name} is not configured for a bolus in {}. Do not give a bolus from this pump.", area.name),
                ));
                return Ok(());
            };
            let b = BolusInput {
                name,
                conc: c.concentration,
                remaining: c.volume_remaining,
                dose_value: dose.value,
                dose_unit: dose.unit,
                duration_ms: duration.map(crate::units::Duration::millis),
                pump_volume,
                weight_kg,
            };
            check_bolus(
                drug,
                &b,
                bolus.dose_unit,
                &bolus,
                p,
                history,
                reasons,
                computed,
            )?;
        }
    }
    Ok(())
}

fn check_concentration(drug: &Drug, conc: Concentration, reasons: &mut Vec<Reason>) -> Calc<()> {
    let name = &drug.display_name;
    for listed in &drug.concentrations {
        let l = Concentration::new(
            listed.amount,
            listed.unit,
            Volume::from_ml(listed.volume_ml)?,
        )?;
        if l.same_strength(conc)? {
            if !listed.standard {
                reasons.push(Reason::new(
                    Outcome::SoftLimit,
                    Code::NonStandardConcentration,
                    format!(
                        "{} is a non-standard concentration of {name}. Confirm it matches the container label.",
                        format::concentration(conc)
                    ),
                ));
            }
            return Ok(());
        }
    }
    let listed: Vec<String> = drug
        .concentrations
        .iter()
        .filter_map(|l| {
            Volume::from_ml(l.volume_ml)
                .and_then(|v| Concentration::new(l.amount, l.unit, v))
                .ok()
                .map(format::concentration)
        })
        .collect();
    if let Some(custom) = drug.custom_concentration
        && let Some(per_ml) = conc.per_ml_in(custom.unit)
    {
        let per_ml = per_ml?;
        if per_ml >= custom.min_per_ml && per_ml <= custom.max_per_ml {
            reasons.push(Reason::new(
                Outcome::SoftLimit,
                Code::CustomConcentration,
                format!(
                    "{} is not a listed concentration of {name} (listed: {}). Confirm it matches the container label.",
                    format::concentration(conc),
                    listed.join("; ")
                ),
            ));
            return Ok(());
        }
    }
    let mut r = Reason::new(
        Outcome::Block,
        Code::ConcentrationNotInLibrary,
        format!(
            "{} is not a concentration of {name} allowed here. Allowed: {}. Check the container label and reprogramme.",
            format::concentration(conc),
            listed.join("; ")
        ),
    );
    r.programmed = Some(format::concentration(conc));
    r.limit_value = Some(listed.join("; "));
    reasons.push(r);
    Ok(())
}

fn check_weight(
    area: &CareArea,
    drug: &Drug,
    p: &Programme,
    reasons: &mut Vec<Reason>,
) -> Calc<Option<Exact>> {
    let needs = match p.delivery {
        Delivery::Continuous { rate, .. } => {
            rate.unit.per_kg() || drug.continuous.is_some_and(|c| c.dose_unit.per_kg())
        }
        Delivery::Bolus { dose, .. } => {
            dose.unit.per_kg
                || drug
                    .bolus
                    .and_then(|b| b.dose_unit)
                    .is_some_and(|u| u.per_kg)
        }
    };
    let Some(w) = p.patient_weight else {
        if needs {
            reasons.push(Reason::new(
                Outcome::Block,
                Code::WeightMissing,
                format!(
                    "{} is dosed per kg but no patient weight was entered.",
                    drug.display_name
                ),
            ));
        }
        return Ok(None);
    };
    let kg = w.kg()?;
    let range = area.patient_weight_kg;
    for (bound, limit, over) in [("min", range.min, false), ("max", range.max, true)] {
        let Some(limit) = limit else { continue };
        if (over && kg > limit) || (!over && kg < limit) {
            let (shown, lim) = format::distinct(kg, limit);
            let mut reason = Reason::new(
                Outcome::HardLimit,
                Code::WeightOutOfRange,
                format!(
                    "Patient weight {shown} kg is {} the {} limit of {lim} kg for {}. Check the weight.",
                    if over { "above" } else { "below" },
                    if over { "maximum" } else { "minimum" },
                    area.name
                ),
            );
            reason.limit = Some(format!("patient_weight_kg.{bound}"));
            reason.programmed = Some(format!("{shown} kg"));
            reason.limit_value = Some(format!("{lim} kg"));
            reasons.push(reason);
        }
    }
    Ok(Some(kg))
}

/// A figure the gateway computed and, where the pump computed one too, the
/// pump's. The pump delivers its own figure, so a maximum is checked against
/// the larger of the two and a minimum against the smaller.
#[derive(Debug, Clone, Copy)]
struct Figures {
    ours: Exact,
    pump: Option<Exact>,
}

impl Figures {
    /// Ours alone (nothing for the pump to disagree about).
    fn ours(ours: Exact) -> Self {
        Figures { ours, pump: None }
    }

    /// The figure a maximum (`true`) or a minimum is checked against, and
    /// whether it is the pump's.
    fn worse(self, is_max: bool) -> (Exact, bool) {
        match self.pump {
            Some(p) if (is_max && p > self.ours) || (!is_max && p < self.ours) => (p, true),
            _ => (self.ours, false),
        }
    }
}

/// Compare `figures` with min/max limits; push a reason for the worst one.
#[allow(clippy::too_many_arguments)]
fn limit_reason(
    figures: Figures,
    unit: &str,
    what: &str,
    code: Code,
    hard_min: Option<Exact>,
    soft_min: Option<Exact>,
    soft_max: Option<Exact>,
    hard_max: Option<Exact>,
    reasons: &mut Vec<Reason>,
) -> Calc<()> {
    let candidates = [
        ("hard_max", hard_max, true, Outcome::HardLimit),
        ("soft_max", soft_max, true, Outcome::SoftLimit),
        ("hard_min", hard_min, false, Outcome::HardLimit),
        ("soft_min", soft_min, false, Outcome::SoftLimit),
    ];
    for (name, limit, is_max, outcome) in candidates {
        let Some(limit) = limit else { continue };
        let (value, pumps) = figures.worse(is_max);
        let outside = if is_max { value > limit } else { value < limit };
        if !outside {
            continue;
        }
        let whose = if pumps {
            " (as the pump would give it)"
        } else {
            ""
        };
        let (v, l) = format::distinct(value, limit);
        let diff = if is_max {
            value.sub(limit)?
        } else {
            limit.sub(value)?
        };
        let (d, _) = format::distinct(diff, Exact::ZERO);
        let factor = if limit.is_zero() {
            String::new()
        } else {
            let f = value.div(limit)?;
            if is_max {
                // Never "1 times the limit" for a value that is over it.
                format!(", {} times the limit", format::distinct(f, Exact::ONE).0)
            } else {
                format!(", {} of the limit", format::percent(f))
            }
        };
        let kind = if outcome == Outcome::HardLimit {
            "HARD"
        } else {
            "soft"
        };
        let dir = if is_max { "maximum" } else { "minimum" };
        let side = if is_max { "over" } else { "under" };
        let (v, l, d) = (
            format::shown_with_unit(&v, unit),
            format::shown_with_unit(&l, unit),
            format::shown_with_unit(&d, unit),
        );
        let mut r = Reason::new(
            outcome,
            code,
            format!("{what} {v}{whose} is {side} the {kind} {dir} of {l} by {d}{factor}."),
        );
        r.limit = Some(name.to_owned());
        r.programmed = Some(v);
        r.limit_value = Some(l);
        r.margin = Some(format!("{side} by {d}{factor}"));
        reasons.push(r);
        return Ok(());
    }
    Ok(())
}

/// Base units of drug per hour (absolute, not per kg) and mL/h, from the
/// programme's own rate input (`None` when the rate cannot be counted in
/// the concentration's kind, or needs a weight not given). The one
/// definition, also used for orders from the EHR.
pub fn flows(
    rate: Rate,
    conc: Concentration,
    weight_kg: Option<Exact>,
) -> Calc<Option<(Exact, Exact)>> {
    let base_per_ml = conc.base_per_ml()?;
    match rate.unit {
        RateUnit::MillilitresPerHour => Ok(Some((rate.value.mul(base_per_ml)?, rate.value))),
        RateUnit::Dose {
            amount,
            per_kg,
            per,
        } => {
            if amount.kind() != conc.amount().kind() {
                return Ok(None);
            }
            let mut base_per_h = rate
                .value
                .mul_int(amount.base_factor())?
                .mul_int(TimeUnit::Hour.millis())?
                .div_int(per.millis())?;
            if per_kg {
                let Some(kg) = weight_kg else { return Ok(None) };
                base_per_h = base_per_h.mul(kg)?;
            }
            Ok(Some((base_per_h, base_per_h.div(base_per_ml)?)))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_continuous(
    drug: &Drug,
    conc: Concentration,
    rate: Rate,
    pump_flow: Rate,
    weight_kg: Option<Exact>,
    p: &Programme,
    history: &History,
    reasons: &mut Vec<Reason>,
    computed: &mut Vec<(String, String)>,
) -> Calc<()> {
    let name = &drug.display_name;
    let Some(limits) = drug.continuous else {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::ContinuousNotConfigured,
            format!("{name} is not configured for continuous infusion here."),
        ));
        return Ok(());
    };
    let Some((base_per_h, ml_per_h)) = flows(rate, conc, weight_kg)? else {
        if p.patient_weight.is_some() || !rate.unit.per_kg() {
            reasons.push(unit_mismatch(name, &rate.unit.to_string(), &conc));
        }
        return Ok(());
    };
    computed.push((
        "flow rate".into(),
        format!("{} mL/h", format::number(ml_per_h)),
    ));
    // The pump runs at its own flow rate: the limits see the worse figure.
    let pump_ml_per_h = (pump_flow.unit == RateUnit::MillilitresPerHour).then_some(pump_flow.value);
    let in_lib = value_in_library_unit(limits, base_per_h, ml_per_h, weight_kg, conc)?;
    match in_lib {
        Some(v) => {
            let pump = match pump_ml_per_h {
                Some(f) => {
                    value_in_library_unit(limits, f.mul(conc.base_per_ml()?)?, f, weight_kg, conc)?
                }
                None => None,
            };
            let unit = limits.dose_unit.to_string();
            computed.push(("dose rate".into(), format::with_unit(v, &unit)));
            limit_reason(
                Figures { ours: v, pump },
                &unit,
                &format!("{name} dose rate"),
                Code::DoseRateLimit,
                limits.hard_min,
                limits.soft_min,
                limits.soft_max,
                limits.hard_max,
                reasons,
            )?;
        }
        // Without a weight a per-kg limit cannot be compared; WEIGHT_MISSING
        // already blocks, so a second, misleading unit reason is not added.
        None if limits.dose_unit.per_kg() && weight_kg.is_none() => {}
        None => reasons.push(unit_mismatch(name, &limits.dose_unit.to_string(), &conc)),
    }
    // The pump's own arithmetic.
    if let Some(pump_ml_per_h) = pump_ml_per_h {
        if outside_tolerance(pump_ml_per_h, ml_per_h)? {
            let (a, b) = format::distinct(pump_ml_per_h, ml_per_h);
            reasons.push(
                Reason::new(
                    Outcome::Block,
                    Code::PumpComputationMismatch,
                    format!(
                        "The pump would run at {a} mL/h but this programme works out at {b} mL/h. The pump's calculation is wrong; do not start."
                    ),
                )
                .comparing(format!("{a} mL/h"), format!("{b} mL/h")),
            );
        }
    } else {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::UnitMismatch,
            format!(
                "The pump's flow rate must be in mL/h, not {}.",
                pump_flow.unit
            ),
        ));
    }
    if let Some(request) = exposure_request(p)? {
        check_cumulative(drug, conc, p, history, request, reasons)?;
    }
    Ok(())
}

/// What a programme would add to the bed's exposure, at the worse of the
/// gateway's and the pump's figures: an infusion's amount per hour and the
/// most it can give (what is left in its container, and its volume to be
/// infused), or a bolus's amount. `None` when it cannot be worked out
/// (units that do not agree, a per-kg dose without a weight, a pump rate
/// not in mL/h): the check blocks those programmes.
///
/// The daemon records this figure with every token it issues, so that what
/// runs is counted exactly as it was checked.
pub fn exposure_request(p: &Programme) -> Calc<Option<Request>> {
    let conc = p.container.concentration;
    let per_ml = conc.base_per_ml()?;
    let weight_kg = p.patient_weight.map(Weight::kg).transpose()?;
    match p.delivery {
        Delivery::Continuous {
            rate,
            vtbi,
            pump_flow_rate,
        } => {
            let Some((ours, _)) = flows(rate, conc, weight_kg)? else {
                return Ok(None);
            };
            if pump_flow_rate.unit != RateUnit::MillilitresPerHour {
                return Ok(None);
            }
            let pump = pump_flow_rate.value.mul(per_ml)?;
            let mut left_ml = p.container.volume_remaining.ml()?;
            if let Some(vtbi) = vtbi {
                left_ml = std::cmp::min(left_ml, vtbi.ml()?);
            }
            Ok(Some(Request::Infusion {
                per_hour: ours.max(pump),
                left: Some(left_ml.mul(per_ml)?),
            }))
        }
        Delivery::Bolus {
            dose, pump_volume, ..
        } => {
            if dose.unit.amount.kind() != conc.amount().kind() {
                return Ok(None);
            }
            let mut amount = dose.value.mul_int(dose.unit.amount.base_factor())?;
            if dose.unit.per_kg {
                let Some(kg) = weight_kg else { return Ok(None) };
                amount = amount.mul(kg)?;
            }
            Ok(Some(Request::Bolus(
                amount.max(pump_volume.ml()?.mul(per_ml)?),
            )))
        }
    }
}

/// Rules 12 and 21: the largest amount in any window from now on, with
/// everything given, running and authorised at this bed (section 9).
fn check_cumulative(
    drug: &Drug,
    conc: Concentration,
    p: &Programme,
    history: &History,
    request: Request,
    reasons: &mut Vec<Reason>,
) -> Calc<()> {
    let Some(cum) = drug.cumulative else {
        return Ok(());
    };
    let window_ms = i128::from(cum.window_minutes) * 60_000;
    let kind = conc.amount().kind();
    match worst_window(history, kind, p.requested_at, window_ms, request) {
        Ok(worst) => cumulative_reason(drug, cum, &worst, reasons),
        Err(ExposureError::Kind(KindMismatch { found })) => {
            reasons.push(Reason::new(
                Outcome::Block,
                Code::UnitMismatch,
                format!(
                    "The delivery history of {} has an amount counted in {found} but the container is counted in {kind}; the total given cannot be worked out.",
                    drug.display_name
                ),
            ));
            Ok(())
        }
        Err(ExposureError::Arithmetic(e)) => Err(e),
    }
}

/// True when the pump's figure differs from ours by more than
/// [`TOLERANCE_PERCENT`] of ours. Exactly on the tolerance is accepted.
fn outside_tolerance(pump: Exact, ours: Exact) -> Calc<bool> {
    let diff = pump.sub(ours)?.abs()?;
    Ok(diff.mul_int(100)? > ours.mul_int(TOLERANCE_PERCENT)?)
}

fn value_in_library_unit(
    limits: ContinuousLimits,
    base_per_h: Exact,
    ml_per_h: Exact,
    weight_kg: Option<Exact>,
    conc: Concentration,
) -> Calc<Option<Exact>> {
    match limits.dose_unit {
        RateUnit::MillilitresPerHour => Ok(Some(ml_per_h)),
        RateUnit::Dose {
            amount,
            per_kg,
            per,
        } => {
            if amount.kind() != conc.amount().kind() {
                return Ok(None);
            }
            let mut v = base_per_h;
            if per_kg {
                let Some(kg) = weight_kg else { return Ok(None) };
                v = v.div(kg)?;
            }
            Ok(Some(
                v.mul_int(per.millis())?
                    .div_int(TimeUnit::Hour.millis())?
                    .div_int(amount.base_factor())?,
            ))
        }
    }
}

fn unit_mismatch(name: &str, unit: &str, conc: &Concentration) -> Reason {
    Reason::new(
        Outcome::Block,
        Code::UnitMismatch,
        format!(
            "{name}: a dose in {unit} cannot be given from a container of {}. Reprogramme in the library's unit.",
            format::concentration(*conc)
        ),
    )
}

fn cumulative_reason(
    drug: &Drug,
    cum: crate::library::CumulativeLimit,
    worst: &Worst,
    reasons: &mut Vec<Reason>,
) -> Calc<()> {
    let in_unit = |base: Exact| base.div_int(cum.unit.base_factor());
    let unit = cum.unit.symbol();
    let before = reasons.len();
    limit_reason(
        Figures::ours(in_unit(worst.total)?),
        unit,
        &format!(
            "{} total over {} min (given, running, authorised and this programme)",
            drug.display_name, cum.window_minutes
        ),
        Code::CumulativeLimit,
        None,
        None,
        None,
        Some(cum.max),
        reasons,
    )?;
    if reasons.len() > before
        && let Some(r) = reasons.last_mut()
    {
        // Which parts make the total, so nobody has to guess what counted.
        let mut parts = Vec::new();
        let on = |pumps: &[String]| {
            if pumps.is_empty() {
                String::new()
            } else {
                format!(" on {}", pumps.join(", "))
            }
        };
        for (base, words) in [
            (worst.given, "given".to_owned()),
            (
                worst.running,
                format!("running or authorised{}", on(&worst.running_on)),
            ),
            (
                worst.pending,
                format!(
                    "in boluses authorised and not yet given{}",
                    on(&worst.pending_on)
                ),
            ),
            (worst.request, "from this programme".to_owned()),
        ] {
            if !base.is_zero() {
                parts.push(format!(
                    "{} {words}",
                    format::with_unit(in_unit(base)?, unit)
                ));
            }
        }
        r.message = format!("{} Counted: {}.", r.message, parts.join(", "));
    }
    Ok(())
}

struct BolusInput<'a> {
    name: &'a str,
    conc: Concentration,
    remaining: Volume,
    dose_value: Exact,
    dose_unit: BolusUnit,
    duration_ms: Option<Exact>,
    pump_volume: Volume,
    weight_kg: Option<Exact>,
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
fn check_bolus(
    drug: &Drug,
    b: &BolusInput<'_>,
    lib_unit: Option<BolusUnit>,
    limits: &crate::library::BolusLimits,
    p: &Programme,
    history: &History,
    reasons: &mut Vec<Reason>,
    computed: &mut Vec<(String, String)>,
) -> Calc<()> {
    let name = b.name;
    if b.dose_unit.amount.kind() != b.conc.amount().kind() {
        reasons.push(unit_mismatch(name, &b.dose_unit.to_string(), &b.conc));
        return Ok(());
    }
    // Absolute amount in base units.
    let mut amount = b.dose_value.mul_int(b.dose_unit.amount.base_factor())?;
    if b.dose_unit.per_kg {
        let Some(kg) = b.weight_kg else { return Ok(()) };
        amount = amount.mul(kg)?;
    }
    let show_unit = b.dose_unit.amount;
    computed.push((
        "bolus amount".into(),
        format::with_unit(amount.div_int(show_unit.base_factor())?, show_unit.symbol()),
    ));
    // The pump gives its own volume: every limit sees the worse figure.
    let per_ml = b.conc.base_per_ml()?;
    let pump_ml = b.pump_volume.ml()?;
    let pump_amount = pump_ml.mul(per_ml)?;
    // Dose against the library's dose limits, in the library's unit.
    if let Some(lu) = lib_unit {
        if lu.amount.kind() == b.dose_unit.amount.kind() {
            let in_unit = |base: Exact| -> Calc<Option<Exact>> {
                let per = match (lu.per_kg, b.weight_kg) {
                    (false, _) => base,
                    (true, Some(kg)) => base.div(kg)?,
                    (true, None) => return Ok(None),
                };
                Ok(Some(per.div_int(lu.amount.base_factor())?))
            };
            if let Some(v) = in_unit(amount)? {
                limit_reason(
                    Figures {
                        ours: v,
                        pump: in_unit(pump_amount)?,
                    },
                    &lu.to_string(),
                    &format!("{name} bolus dose"),
                    Code::BolusDoseLimit,
                    None,
                    None,
                    limits.soft_max,
                    limits.hard_max,
                    reasons,
                )?;
            }
        } else {
            reasons.push(unit_mismatch(name, &lu.to_string(), &b.conc));
        }
    }
    // Volume it means.
    let volume_ml = amount.div(per_ml)?;
    let worse_ml = volume_ml.max(pump_ml);
    let remaining_ml = b.remaining.ml()?;
    computed.push((
        "bolus volume".into(),
        format!("{} mL", format::number(volume_ml)),
    ));
    // All that is left is the signature of a wrong concentration too: equal
    // blocks, not only more.
    if worse_ml >= remaining_ml {
        let (v, r) = format::distinct(worse_ml, remaining_ml);
        let left = if worse_ml == remaining_ml {
            format!("and {r} mL is all that is left")
        } else {
            format!("but only {r} mL is left")
        };
        reasons.push(
            Reason::new(
                Outcome::Block,
                Code::BolusExceedsContainer,
                format!(
                    "This {name} bolus needs {v} mL at {}, {left}: the pump would EMPTY THE CONTAINER. Check the concentration on the container label.",
                    format::concentration(b.conc)
                ),
            )
            .comparing(format!("{v} mL"), format!("{r} mL left")),
        );
    } else if let Some(max_share) = limits.max_share_of_remaining_percent {
        // volume / remaining > share / 100, compared without dividing by a
        // possibly zero remaining volume.
        if worse_ml.mul_int(100)? > max_share.mul(remaining_ml)? {
            let share_percent = worse_ml.div(remaining_ml)?.mul_int(100)?;
            let (share, limit) = format::distinct(share_percent, max_share);
            let mut reason = Reason::new(
                Outcome::HardLimit,
                Code::BolusShareOfContainer,
                format!(
                    "This {name} bolus is {} mL, {share}% of the {} mL left in the container; the limit is {limit}%. A bolus this large is the sign of a wrong concentration. Check the container label.",
                    format::number(worse_ml),
                    format::number(remaining_ml),
                ),
            );
            reason.limit = Some("max_share_of_remaining_percent".into());
            reason.programmed = Some(format!("{share}%"));
            reason.limit_value = Some(format!("{limit}%"));
            reasons.push(reason);
        }
    }
    if let Some(max) = limits.max_volume_ml {
        limit_reason(
            Figures {
                ours: volume_ml,
                pump: Some(pump_ml),
            },
            "mL",
            &format!("{name} bolus volume"),
            Code::BolusVolumeLimit,
            None,
            None,
            None,
            Some(max),
            reasons,
        )?;
    }
    // Duration and rate.
    match b.duration_ms {
        Some(ms) if ms.is_zero() => reasons.push(Reason::new(
            Outcome::Block,
            Code::BolusDurationMissing,
            format!("A {name} bolus over 0 s is impossible; enter the bolus duration."),
        )),
        Some(ms) => {
            let secs = ms.div_int(1_000)?;
            if let Some(min) = limits.min_duration_s {
                limit_reason(
                    Figures::ours(secs),
                    "s",
                    &format!("{name} bolus duration"),
                    Code::BolusDurationLimit,
                    Some(min),
                    None,
                    None,
                    None,
                    reasons,
                )?;
            }
            let ml_per_h = volume_ml.mul_int(TimeUnit::Hour.millis())?.div(ms)?;
            let pump_ml_per_h = pump_ml.mul_int(TimeUnit::Hour.millis())?.div(ms)?;
            computed.push((
                "bolus rate".into(),
                format!("{} mL/h", format::number(ml_per_h)),
            ));
            if let Some(max) = limits.max_rate_ml_per_h {
                limit_reason(
                    Figures {
                        ours: ml_per_h,
                        pump: Some(pump_ml_per_h),
                    },
                    "mL/h",
                    &format!("{name} bolus rate"),
                    Code::BolusRateLimit,
                    None,
                    None,
                    None,
                    Some(max),
                    reasons,
                )?;
            }
        }
        _ => {
            if limits.min_duration_s.is_some() || limits.max_rate_ml_per_h.is_some() {
                reasons.push(Reason::new(
                    Outcome::Block,
                    Code::BolusDurationMissing,
                    format!(
                        "{name} boluses have a speed limit here, but no bolus duration was given."
                    ),
                ));
            }
        }
    }
    // The pump's own arithmetic.
    if outside_tolerance(pump_ml, volume_ml)? {
        let (a, c) = format::distinct(pump_ml, volume_ml);
        reasons.push(
            Reason::new(
                Outcome::Block,
                Code::PumpComputationMismatch,
                format!(
                    "The pump would give {a} mL but this bolus works out at {c} mL at {}. The pump's calculation is wrong; do not start.",
                    format::concentration(b.conc)
                ),
            )
            .comparing(format!("{a} mL"), format!("{c} mL")),
        );
    }
    if let Some(request) = exposure_request(p)? {
        check_cumulative(drug, b.conc, p, history, request, reasons)?;
    }
    Ok(())
}
