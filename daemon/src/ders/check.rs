//! The cross-check itself: a pure function of (library, care area,
//! programme, history) that recomputes volume, rate and dose from the raw
//! inputs and never trusts the pump's arithmetic. Every rule is in
//! `docs/ders.md`; any value that cannot be computed exactly blocks.

use super::programme::{Delivery, History, Programme};
use super::verdict::{Code, Outcome, Reason, Verdict};
use crate::format;
use crate::library::{CareArea, ContinuousLimits, Drug, Library};
use crate::units::{
    ArithmeticError, BolusUnit, Concentration, Exact, Rate, RateUnit, TimeUnit, Volume,
};

/// Relative tolerance on the pump's own flow rate and bolus volume: 1%.
pub const TOLERANCE_PERCENT: i128 = 1;
/// Absolute flow-rate tolerance in microlitres per hour: 0.005 mL/h, half the
/// 0.01 mL/h step of syringe pumps. Small enough that at the lowest rates a
/// doubled rate (0.05 against 0.1 mL/h) is still caught.
pub const FLOW_TOLERANCE_UL_PER_H: i128 = 5;
/// Absolute bolus-volume tolerance in microlitres: 0.005 mL, half a 0.01 mL
/// step.
pub const VOLUME_TOLERANCE_UL: i128 = 5;

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

/// Compare `value` with min/max limits; push a reason for the worst one.
#[allow(clippy::too_many_arguments)]
fn limit_reason(
    value: Exact,
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
        let outside = if is_max { value > limit } else { value < limit };
        if !outside {
            continue;
        }
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
            format!("{what} {v} is {side} the {kind} {dir} of {l} by {d}{factor}."),
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
/// programme's own rate input.
fn flows(
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
    let in_lib = value_in_library_unit(limits, base_per_h, ml_per_h, weight_kg, conc)?;
    match in_lib {
        Some(v) => {
            let unit = limits.dose_unit.to_string();
            computed.push(("dose rate".into(), format::with_unit(v, &unit)));
            limit_reason(
                v,
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
    if pump_flow.unit == RateUnit::MillilitresPerHour {
        if outside_tolerance(pump_flow.value, ml_per_h, FLOW_TOLERANCE_UL_PER_H)? {
            let (a, b) = format::distinct(pump_flow.value, ml_per_h);
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
    if let Some(cum) = drug.cumulative {
        let window_ms = i128::from(cum.window_minutes) * 60_000;
        // Largest amount in any window from now on: history still inside the
        // window plus the infusion at this rate until the window ends.
        let mut events = in_window(history, conc, p, window_ms, name, reasons);
        events.sort_by_key(|(age, _)| std::cmp::Reverse(*age));
        let rate_per_ms = base_per_h.div_int(TimeUnit::Hour.millis())?;
        let mut worst = rate_per_ms.mul_int(window_ms)?;
        let mut remaining: Exact = events
            .iter()
            .try_fold(Exact::ZERO, |acc, (_, a)| acc.add(*a))?;
        for (age, amount) in &events {
            // Just before this entry leaves the window, after `window - age`
            // of infusion.
            let t = window_ms - age;
            worst = worst.max(remaining.add(rate_per_ms.mul_int(t)?)?);
            remaining = remaining.sub(*amount)?;
        }
        cumulative_reason(drug, cum, worst, reasons)?;
    }
    Ok(())
}

/// History still inside the cumulative window, as (age in ms, base amount).
/// An entry dated after the request (clocks that disagree) counts as given
/// just now, never as not given; an entry in another kind of amount cannot be
/// added up, so it blocks.
fn in_window(
    history: &History,
    conc: Concentration,
    p: &Programme,
    window_ms: i128,
    name: &str,
    reasons: &mut Vec<Reason>,
) -> Vec<(i128, Exact)> {
    let kind = conc.amount().kind();
    if let Some(other) = history.deliveries.iter().find(|d| d.amount.kind() != kind) {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::UnitMismatch,
            format!(
                "The delivery history of {name} has an amount counted in {} but the container is counted in {kind}; the total given cannot be worked out.",
                other.amount.kind()
            ),
        ));
    }
    history
        .deliveries
        .iter()
        .filter(|d| d.amount.kind() == kind)
        .map(|d| {
            (
                (p.requested_at - d.at).whole_milliseconds().max(0),
                d.amount.base(),
            )
        })
        .filter(|(age, _)| *age < window_ms)
        .collect()
}

/// True when the pump's figure differs from ours by more than the larger of
/// [`TOLERANCE_PERCENT`] of ours and `floor_micro` thousandths (of a mL or a
/// mL/h). Exactly on the tolerance is accepted.
fn outside_tolerance(pump: Exact, ours: Exact, floor_micro: i128) -> Calc<bool> {
    let diff = pump.sub(ours)?.abs()?;
    let tolerance = ours
        .mul_int(TOLERANCE_PERCENT)?
        .div_int(100)?
        .max(Exact::ratio(floor_micro, 1_000)?);
    Ok(diff > tolerance)
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
    worst_base: Exact,
    reasons: &mut Vec<Reason>,
) -> Calc<()> {
    let worst = worst_base.div_int(cum.unit.base_factor())?;
    let unit = cum.unit.symbol();
    limit_reason(
        worst,
        unit,
        &format!(
            "{} total over {} min (given plus programmed)",
            drug.display_name, cum.window_minutes
        ),
        Code::CumulativeLimit,
        None,
        None,
        None,
        Some(cum.max),
        reasons,
    )
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
    // Dose against the library's dose limits, in the library's unit.
    if let Some(lu) = lib_unit {
        if lu.amount.kind() == b.dose_unit.amount.kind() {
            let per_unit = match (lu.per_kg, b.weight_kg) {
                (false, _) => Some(amount),
                (true, Some(kg)) => Some(amount.div(kg)?),
                (true, None) => None,
            };
            if let Some(v) = per_unit {
                let v = v.div_int(lu.amount.base_factor())?;
                limit_reason(
                    v,
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
    let volume_ml = amount.div(b.conc.base_per_ml()?)?;
    let remaining_ml = b.remaining.ml()?;
    computed.push((
        "bolus volume".into(),
        format!("{} mL", format::number(volume_ml)),
    ));
    if volume_ml > remaining_ml {
        let (v, r) = format::distinct(volume_ml, remaining_ml);
        reasons.push(
            Reason::new(
                Outcome::Block,
                Code::BolusExceedsContainer,
                format!(
                    "This {name} bolus needs {v} mL at {}, but only {r} mL is left: the pump would EMPTY THE CONTAINER. Check the concentration on the container label.",
                    format::concentration(b.conc)
                ),
            )
            .comparing(format!("{v} mL"), format!("{r} mL left")),
        );
    } else if let Some(max_share) = limits.max_share_of_remaining_percent {
        // volume / remaining > share / 100, compared without dividing by a
        // possibly zero remaining volume.
        if volume_ml.mul_int(100)? > max_share.mul(remaining_ml)? {
            let share_percent = volume_ml.div(remaining_ml)?.mul_int(100)?;
            let (share, limit) = format::distinct(share_percent, max_share);
            let mut reason = Reason::new(
                Outcome::HardLimit,
                Code::BolusShareOfContainer,
                format!(
                    "This {name} bolus is {} mL, {share}% of the {} mL left in the container; the limit is {limit}%. A bolus this large is the sign of a wrong concentration. Check the container label.",
                    format::number(volume_ml),
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
            volume_ml,
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
                    secs,
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
            computed.push((
                "bolus rate".into(),
                format!("{} mL/h", format::number(ml_per_h)),
            ));
            if let Some(max) = limits.max_rate_ml_per_h {
                limit_reason(
                    ml_per_h,
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
    let pump_ml = b.pump_volume.ml()?;
    if outside_tolerance(pump_ml, volume_ml, VOLUME_TOLERANCE_UL)? {
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
    if let Some(cum) = drug.cumulative {
        let window_ms = i128::from(cum.window_minutes) * 60_000;
        let given = in_window(history, b.conc, p, window_ms, name, reasons)
            .iter()
            .try_fold(Exact::ZERO, |acc, (_, a)| acc.add(*a))?;
        cumulative_reason(drug, cum, given.add(amount)?, reasons)?;
    }
    Ok(())
}
