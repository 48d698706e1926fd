//! The simulated pump's own arithmetic and delivery over time: the flow
//! rate and bolus volume it computes from what was programmed, and the
//! volume and amount it has given.
//!
//! This stands in for pump firmware. The gateway never trusts it: the
//! cross-check recomputes everything, which is why a scenario can also make
//! the pump claim a wrong value.

use crate::format::plain;
use crate::units::{
    ArithmeticError, Concentration, Dose, Exact, Rate, RateUnit, TimeUnit, Volume, Weight,
};

/// Microlitres, exactly.
fn ul(v: Volume) -> Exact {
    v.microlitres()
}

/// The flow rate in mL/h the pump runs at for a rate.
pub fn flow_ml_per_h(
    rate: Rate,
    conc: Concentration,
    weight: Option<Weight>,
) -> Result<Exact, String> {
    let calc = || -> Result<Option<Exact>, ArithmeticError> {
        match rate.unit {
            RateUnit::MillilitresPerHour => Ok(Some(rate.value)),
            RateUnit::Dose {
                amount,
                per_kg,
                per,
            } => {
                let mut base_per_h = rate
                    .value
                    .mul_int(amount.base_factor())?
                    .mul_int(TimeUnit::Hour.millis())?
                    .div_int(per.millis())?;
                if per_kg {
                    let Some(w) = weight else { return Ok(None) };
                    base_per_h = base_per_h.mul(w.kg()?)?;
                }
                Ok(Some(base_per_h.div(conc.base_per_ml()?)?))
            }
        }
    };
    calc()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "a dose per kg needs the patient weight".to_owned())
}

/// The volume in mL the pump gives for a bolus dose.
pub fn bolus_ml(dose: Dose, conc: Concentration, weight: Option<Weight>) -> Result<Exact, String> {
    let calc = || -> Result<Option<Exact>, ArithmeticError> {
        let mut base = dose.value.mul_int(dose.unit.amount.base_factor())?;
        if dose.unit.per_kg {
            let Some(w) = weight else { return Ok(None) };
            base = base.mul(w.kg()?)?;
        }
        Ok(Some(base.div(conc.base_per_ml()?)?))
    };
    calc()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "a dose per kg needs the patient weight".to_owned())
}

/// A delivery under way.
#[derive(Debug, Clone)]
pub struct Running {
    /// The request it was authorised for.
    pub request: u32,
    /// The token it runs under.
    pub token: [u8; 16],
    /// Continuous or bolus.
    pub bolus: bool,
    /// Flow rate, mL/h.
    pub flow_ml_per_h: Exact,
    /// Volume to give, µL (none: until the container is empty).
    pub target_ul: Option<Exact>,
    /// Given so far, µL.
    pub given_ul: Exact,
    /// Paused by the user.
    pub paused: bool,
    /// The dose rate as programmed, for status.
    pub dose_rate: Option<String>,
}

impl Running {
    /// Advances by `sim_ms` of simulated time, limited by what is left in
    /// the container; returns the µL given in this step.
    pub fn advance(&mut self, sim_ms: u64, remaining_ul: Exact) -> Exact {
        if self.paused {
            return Exact::ZERO;
        }
        let step = self
            .flow_ml_per_h
            .mul_int(1000)
            .and_then(|ul_per_h| ul_per_h.mul_int(i128::from(sim_ms)))
            .and_then(|x| x.div_int(TimeUnit::Hour.millis()))
            .unwrap_or(Exact::ZERO);
        let mut step = min(step, remaining_ul);
        if let Some(target) = self.target_ul {
            let left = target.sub(self.given_ul).unwrap_or(Exact::ZERO);
            step = min(step, left);
        }
        self.given_ul = self.given_ul.add(step).unwrap_or(self.given_ul);
        step
    }

    /// True when the target is reached or the container is empty.
    pub fn finished(&self, remaining_ul: Exact) -> bool {
        remaining_ul.is_zero() || self.target_ul.is_some_and(|t| self.given_ul >= t)
    }
}

fn min(a: Exact, b: Exact) -> Exact {
    if a < b { a } else { b }
}

/// Volume as a string in mL.
pub fn ml_text(microlitres: Exact) -> String {
    format!(
        "{} mL",
        plain(microlitres.div_int(1000).unwrap_or(Exact::ZERO), 3)
    )
}

/// Amount given for a volume at a concentration, in the concentration's unit.
pub fn amount_text(microlitres: Exact, conc: Concentration) -> String {
    let ml = microlitres.div_int(1000).unwrap_or(Exact::ZERO);
    let unit = conc.unit();
    let amount = conc
        .per_ml_in(unit)
        .and_then(Result::ok)
        .and_then(|per_ml| per_ml.mul(ml).ok())
        .unwrap_or(Exact::ZERO);
    format!("{} {}", plain(amount, 3), unit.symbol())
}

/// Microlitres of a volume.
pub fn volume_ul(v: Volume) -> Exact {
    ul(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{parse_concentration, parse_dose, parse_rate, parse_weight};

    #[test]
    fn plain_decimals() {
        assert_eq!(plain(Exact::ratio(25, 2).unwrap(), 3), "12.5");
        assert_eq!(plain(Exact::ratio(1, 3).unwrap(), 3), "0.333");
        assert_eq!(plain(Exact::int(50), 3), "50");
        assert_eq!(plain(Exact::ratio(1, 1000).unwrap(), 3), "0.001");
    }

    #[test]
    fn fentanyl_arithmetic() {
        let conc = parse_concentration("2500 micrograms in 50 mL").unwrap();
        let w = parse_weight("70 kg").ok();
        let rate = parse_rate("1 micrograms/kg/h").unwrap();
        // 70 micrograms/h at 50 micrograms/mL = 1.4 mL/h.
        assert_eq!(plain(flow_ml_per_h(rate, conc, w).unwrap(), 3), "1.4");
        let dose = parse_dose("25 micrograms").unwrap();
        assert_eq!(plain(bolus_ml(dose, conc, w).unwrap(), 3), "0.5");
        // The HSIB error: 25 micrograms "in 50 mL" makes the whole syringe.
        let wrong = parse_concentration("25 micrograms in 50 mL").unwrap();
        assert_eq!(plain(bolus_ml(dose, wrong, w).unwrap(), 3), "50");
    }

    #[test]
    fn delivery_stops_at_the_target() {
        let mut r = Running {
            request: 1,
            token: [0; 16],
            bolus: true,
            flow_ml_per_h: Exact::int(30),
            target_ul: Some(Exact::int(500)),
            given_ul: Exact::ZERO,
            paused: false,
            dose_rate: None,
        };
        // 30 mL/h for 60 s = 500 µL.
        let remaining = Exact::int(12_000);
        assert_eq!(r.advance(30_000, remaining), Exact::int(250));
        assert!(!r.finished(remaining));
        assert_eq!(r.advance(60_000, remaining), Exact::int(250));
        assert!(r.finished(remaining));
    }
}
