//! Clinical quantities as types: amounts (mass, units, millimoles), volumes,
//! durations, patient weight, and the derived kinds (concentration, dose rate,
//! flow rate, bolus dose).
//!
//! Every value is held exactly in a defined base unit — nanograms, milli-units,
//! micromoles, microlitres, milliseconds, grams of body weight — so that a
//! conversion never rounds. Values in a display unit are derived on demand.

use std::fmt;

use super::exact::{ArithmeticError, Exact};

/// What an amount counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmountKind {
    /// Mass (base unit: nanogram).
    Mass,
    /// Biological activity in units, e.g. insulin or heparin (base: milli-unit).
    Units,
    /// Amount of substance (base: micromole).
    Moles,
}

impl fmt::Display for AmountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountKind::Mass => "mass",
            AmountKind::Units => "units",
            AmountKind::Moles => "amount of substance (mmol)",
        })
    }
}

/// A unit an amount is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AmountUnit {
    /// nanograms
    Nanogram,
    /// micrograms
    Microgram,
    /// mg
    Milligram,
    /// g
    Gram,
    /// units (never "U" or "IU")
    Unit,
    /// mmol
    Millimole,
}

impl AmountUnit {
    /// Every unit, for help texts and tests.
    pub const ALL: [AmountUnit; 6] = [
        AmountUnit::Nanogram,
        AmountUnit::Microgram,
        AmountUnit::Milligram,
        AmountUnit::Gram,
        AmountUnit::Unit,
        AmountUnit::Millimole,
    ];

    /// The kind of amount this unit counts.
    pub fn kind(self) -> AmountKind {
        match self {
            AmountUnit::Nanogram
            | AmountUnit::Microgram
            | AmountUnit::Milligram
            | AmountUnit::Gram => AmountKind::Mass,
            AmountUnit::Unit => AmountKind::Units,
            AmountUnit::Millimole => AmountKind::Moles,
        }
    }

    /// How many base units one of this unit is.
    pub fn base_factor(self) -> i128 {
        match self {
            AmountUnit::Nanogram => 1,
            AmountUnit::Microgram | AmountUnit::Unit | AmountUnit::Millimole => 1_000,
            AmountUnit::Milligram => 1_000_000,
            AmountUnit::Gram => 1_000_000_000,
        }
    }

    /// The name shown to people (BRIEF section 5: micrograms, nanograms and
    /// units in full).
    pub fn symbol(self) -> &'static str {
        match self {
            AmountUnit::Nanogram => "nanograms",
            AmountUnit::Microgram => "micrograms",
            AmountUnit::Milligram => "mg",
            AmountUnit::Gram => "g",
            AmountUnit::Unit => "units",
            AmountUnit::Millimole => "mmol",
        }
    }
}

impl fmt::Display for AmountUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A unit of time used in rates and durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// s
    Second,
    /// min
    Minute,
    /// h
    Hour,
}

impl TimeUnit {
    /// Milliseconds in one of this unit.
    pub fn millis(self) -> i128 {
        match self {
            TimeUnit::Second => 1_000,
            TimeUnit::Minute => 60_000,
            TimeUnit::Hour => 3_600_000,
        }
    }

    /// The symbol shown to people.
    pub fn symbol(self) -> &'static str {
        match self {
            TimeUnit::Second => "s",
            TimeUnit::Minute => "min",
            TimeUnit::Hour => "h",
        }
    }
}

/// An amount of drug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    kind: AmountKind,
    base: Exact,
}

impl Amount {
    /// `value` of `unit`.
    pub fn new(value: Exact, unit: AmountUnit) -> Result<Self, ArithmeticError> {
        Ok(Amount {
            kind: unit.kind(),
            base: value.mul_int(unit.base_factor())?,
        })
    }

    /// An amount straight from base units.
    pub fn from_base(kind: AmountKind, base: Exact) -> Self {
        Amount { kind, base }
    }

    /// What it counts.
    pub fn kind(self) -> AmountKind {
        self.kind
    }

    /// The value in base units (nanograms, milli-units or micromoles).
    pub fn base(self) -> Exact {
        self.base
    }

    /// The value in `unit`, or `None` if `unit` counts something else.
    pub fn value_in(self, unit: AmountUnit) -> Option<Result<Exact, ArithmeticError>> {
        (unit.kind() == self.kind).then(|| self.base.div_int(unit.base_factor()))
    }
}

/// A volume of liquid (base: microlitre).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Volume {
    microlitres: Exact,
}

impl Volume {
    /// `ml` millilitres.
    pub fn from_ml(ml: Exact) -> Result<Self, ArithmeticError> {
        Ok(Volume {
            microlitres: ml.mul_int(1_000)?,
        })
    }

    /// A volume in microlitres.
    pub fn from_microlitres(microlitres: Exact) -> Self {
        Volume { microlitres }
    }

    /// The value in microlitres.
    pub fn microlitres(self) -> Exact {
        self.microlitres
    }

    /// The value in millilitres.
    pub fn ml(self) -> Result<Exact, ArithmeticError> {
        self.microlitres.div_int(1_000)
    }
}

/// A length of time (base: millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duration {
    millis: Exact,
}

impl Duration {
    /// `value` of `unit`.
    pub fn new(value: Exact, unit: TimeUnit) -> Result<Self, ArithmeticError> {
        Ok(Duration {
            millis: value.mul_int(unit.millis())?,
        })
    }

    /// A duration in milliseconds.
    pub fn from_millis(millis: Exact) -> Self {
        Duration { millis }
    }

    /// The value in milliseconds.
    pub fn millis(self) -> Exact {
        self.millis
    }

    /// The value in `unit`.
    pub fn value_in(self, unit: TimeUnit) -> Result<Exact, ArithmeticError> {
        self.millis.div_int(unit.millis())
    }
}

/// A patient's body weight (base: gram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Weight {
    grams: Exact,
}

impl Weight {
    /// `kg` kilograms.
    pub fn from_kg(kg: Exact) -> Result<Self, ArithmeticError> {
        Ok(Weight {
            grams: kg.mul_int(1_000)?,
        })
    }

    /// The value in kilograms.
    pub fn kg(self) -> Result<Exact, ArithmeticError> {
        self.grams.div_int(1_000)
    }
}

/// How strong a solution is: an amount in a volume, kept as written so it can
/// be shown as "2,500 micrograms in 50 mL (50 micrograms/mL)".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concentration {
    amount: Amount,
    unit: AmountUnit,
    volume: Volume,
}

impl Concentration {
    /// `amount` (written in `unit`) in `volume`. The volume must not be zero.
    pub fn new(amount: Exact, unit: AmountUnit, volume: Volume) -> Result<Self, ArithmeticError> {
        if volume.microlitres().is_zero() {
            return Err(ArithmeticError::DivisionByZero);
        }
        Ok(Concentration {
            amount: Amount::new(amount, unit)?,
            unit,
            volume,
        })
    }

    /// The amount in the container.
    pub fn amount(self) -> Amount {
        self.amount
    }

    /// The unit the amount was written in, used to show it back.
    pub fn unit(self) -> AmountUnit {
        self.unit
    }

    /// The volume the amount is dissolved in.
    pub fn volume(self) -> Volume {
        self.volume
    }

    /// Base units of drug per millilitre.
    pub fn base_per_ml(self) -> Result<Exact, ArithmeticError> {
        self.amount.base().div(self.volume.ml()?)
    }

    /// The strength in `unit` per mL, if `unit` counts the same kind.
    pub fn per_ml_in(self, unit: AmountUnit) -> Option<Result<Exact, ArithmeticError>> {
        (unit.kind() == self.amount.kind()).then(|| {
            self.base_per_ml()
                .and_then(|b| b.div_int(unit.base_factor()))
        })
    }

    /// True when both have the same strength per mL (the container volume
    /// may differ: 1,000 micrograms in 20 mL is as strong as 2,500 in 50 mL).
    pub fn same_strength(self, other: Concentration) -> Result<bool, ArithmeticError> {
        Ok(self.amount.kind() == other.amount.kind()
            && self.base_per_ml()? == other.base_per_ml()?)
    }
}

/// The unit of a continuous dose: an amount per time, optionally per kg of
/// body weight — or plain mL/h for drugs dosed by volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateUnit {
    /// e.g. micrograms/kg/min, units/h.
    Dose {
        /// Amount unit.
        amount: AmountUnit,
        /// Per kilogram of body weight.
        per_kg: bool,
        /// Per minute or per hour.
        per: TimeUnit,
    },
    /// mL/h.
    MillilitresPerHour,
}

impl RateUnit {
    /// True when the rate depends on the patient's weight.
    pub fn per_kg(self) -> bool {
        matches!(self, RateUnit::Dose { per_kg: true, .. })
    }

    /// The amount unit, unless the unit is mL/h.
    pub fn amount_unit(self) -> Option<AmountUnit> {
        match self {
            RateUnit::Dose { amount, .. } => Some(amount),
            RateUnit::MillilitresPerHour => None,
        }
    }
}

impl fmt::Display for RateUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateUnit::Dose {
                amount,
                per_kg,
                per,
            } => {
                let kg = if *per_kg { "/kg" } else { "" };
                write!(f, "{}{kg}/{}", amount.symbol(), per.symbol())
            }
            RateUnit::MillilitresPerHour => f.write_str("mL/h"),
        }
    }
}

/// A continuous rate with its unit: a dose rate or a flow rate as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// The number in `unit`.
    pub value: Exact,
    /// The unit it was written in.
    pub unit: RateUnit,
}

impl Rate {
    /// The same rate in another unit. `None` when the units measure different
    /// things (mass against units, per kg against not per kg, dose against
    /// volume).
    pub fn convert(self, to: RateUnit) -> Option<Result<Exact, ArithmeticError>> {
        match (self.unit, to) {
            (RateUnit::MillilitresPerHour, RateUnit::MillilitresPerHour) => Some(Ok(self.value)),
            (
                RateUnit::Dose {
                    amount: a1,
                    per_kg: k1,
                    per: p1,
                },
                RateUnit::Dose {
                    amount: a2,
                    per_kg: k2,
                    per: p2,
                },
            ) if a1.kind() == a2.kind() && k1 == k2 => Some(
                // value * a1/a2 * p2/p1, in one exact step.
                self.value
                    .mul_int(a1.base_factor())
                    .and_then(|v| v.mul_int(p2.millis()))
                    .and_then(|v| v.div_int(a2.base_factor()))
                    .and_then(|v| v.div_int(p1.millis())),
            ),
            _ => None,
        }
    }
}

/// The unit of a bolus dose: an amount, optionally per kg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BolusUnit {
    /// Amount unit.
    pub amount: AmountUnit,
    /// Per kilogram of body weight.
    pub per_kg: bool,
}

impl fmt::Display for BolusUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.amount.symbol())?;
        if self.per_kg {
            f.write_str("/kg")?;
        }
        Ok(())
    }
}

/// A bolus dose as written: "25 micrograms" or "0.5 micrograms/kg".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dose {
    /// The number in `unit`.
    pub value: Exact,
    /// The unit it was written in.
    pub unit: BolusUnit,
}

impl Dose {
    /// The same dose in another unit, `None` when they measure different
    /// things.
    pub fn convert(self, to: BolusUnit) -> Option<Result<Exact, ArithmeticError>> {
        (self.unit.amount.kind() == to.amount.kind() && self.unit.per_kg == to.per_kg).then(|| {
            self.value
                .mul_int(self.unit.amount.base_factor())
                .and_then(|v| v.div_int(to.amount.base_factor()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(n: i128, d: i128) -> Exact {
        Exact::ratio(n, d).unwrap()
    }

    #[test]
    fn concentration_strength_is_amount_over_volume() {
        let c = Concentration::new(
            Exact::int(2_500),
            AmountUnit::Microgram,
            Volume::from_ml(Exact::int(50)).unwrap(),
        )
        .unwrap();
        assert_eq!(
            c.per_ml_in(AmountUnit::Microgram).unwrap().unwrap(),
            Exact::int(50)
        );
        assert_eq!(
            c.per_ml_in(AmountUnit::Milligram).unwrap().unwrap(),
            x(1, 20)
        );
        assert!(c.per_ml_in(AmountUnit::Unit).is_none());
        let same = Concentration::new(
            Exact::int(1),
            AmountUnit::Milligram,
            Volume::from_ml(Exact::int(20)).unwrap(),
        )
        .unwrap();
        assert!(c.same_strength(same).unwrap());
    }

    #[test]
    fn zero_volume_concentration_is_refused() {
        assert_eq!(
            Concentration::new(
                Exact::ONE,
                AmountUnit::Milligram,
                Volume::from_ml(Exact::ZERO).unwrap()
            ),
            Err(ArithmeticError::DivisionByZero)
        );
    }

    #[test]
    fn rate_conversion_is_exact() {
        let r = Rate {
            value: x(1, 20),
            unit: RateUnit::Dose {
                amount: AmountUnit::Microgram,
                per_kg: true,
                per: TimeUnit::Minute,
            },
        };
        let per_h = RateUnit::Dose {
            amount: AmountUnit::Nanogram,
            per_kg: true,
            per: TimeUnit::Hour,
        };
        assert_eq!(r.convert(per_h).unwrap().unwrap(), Exact::int(3_000));
        let not_per_kg = RateUnit::Dose {
            amount: AmountUnit::Microgram,
            per_kg: false,
            per: TimeUnit::Minute,
        };
        assert!(r.convert(not_per_kg).is_none());
        assert!(r.convert(RateUnit::MillilitresPerHour).is_none());
    }
}
