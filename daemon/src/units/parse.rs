//! Parsing of quantities typed by people or written in files:
//! "2,500 micrograms in 50 mL", "0.5 mg/mL", "5 mL/h",
//! "0.05 micrograms/kg/min", "25 micrograms", "70 kg", "60 s".
//!
//! Strict on purpose: ".5" (a missed leading zero reads as 5), "5." and
//! "2,50" (a decimal comma) are refused, as are "U" and "IU" (misread as 0
//! or 10): errors say what was wrong, where, and what to write instead.

use std::fmt;

use super::exact::Exact;
use super::quantity::{
    Amount, AmountUnit, BolusUnit, Concentration, Dose, Duration, Rate, RateUnit, TimeUnit, Volume,
    Weight,
};

/// Digits allowed after the decimal point.
pub const MAX_FRACTION_DIGITS: usize = 9;
/// Digits allowed before the decimal point.
pub const MAX_INTEGER_DIGITS: usize = 15;

/// A parse failure with the position (in characters, from 1) it was found at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?}: {message} (at character {position})")]
pub struct ParseError {
    /// What was parsed.
    pub input: String,
    /// 1-based character position of the problem.
    pub position: usize,
    /// What was wrong and what to write instead.
    pub message: String,
}

/// Any quantity the parser recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// "25 micrograms".
    Amount(Amount, AmountUnit),
    /// "0.5 micrograms/kg" (a bolus dose by weight).
    Dose(Dose),
    /// "50 mL".
    Volume(Volume),
    /// "60 s".
    Duration(Duration),
    /// "70 kg".
    Weight(Weight),
    /// "2,500 micrograms in 50 mL" or "0.5 mg/mL".
    Concentration(Concentration),
    /// "0.05 micrograms/kg/min" or "5 mL/h".
    Rate(Rate),
}

impl Quantity {
    fn what(&self) -> &'static str {
        match self {
            Quantity::Amount(..) => "an amount",
            Quantity::Dose(..) => "a dose per kg",
            Quantity::Volume(..) => "a volume",
            Quantity::Duration(..) => "a duration",
            Quantity::Weight(..) => "a weight",
            Quantity::Concentration(..) => "a concentration",
            Quantity::Rate(..) => "a rate",
        }
    }
}

struct Cursor<'a> {
    input: &'a str,
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn error_at(&self, rest_at: &str, message: impl Into<String>) -> ParseError {
        let byte = self.input.len() - rest_at.len();
        ParseError {
            input: self.input.to_owned(),
            position: self.input[..byte].chars().count() + 1,
            message: message.into(),
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.rest, message)
    }

    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn at_end(&self) -> bool {
        self.rest.trim().is_empty()
    }

    fn number(&mut self) -> Result<Exact, ParseError> {
        self.skip_space();
        let start = self.rest;
        let len = start
            .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.' || c == '-' || c == '+'))
            .unwrap_or(start.len());
        let text = &start[..len];
        if text.is_empty() {
            return Err(self.error("expected a number"));
        }
        let value = parse_decimal(text).map_err(|m| self.error_at(start, m))?;
        self.rest = &start[len..];
        Ok(value)
    }

    /// A unit word: letters, 'µ', and nothing else.
    fn word(&mut self) -> &'a str {
        self.skip_space();
        let len = self
            .rest
            .find(|c: char| !(c.is_alphabetic()))
            .unwrap_or(self.rest.len());
        let (w, r) = self.rest.split_at(len);
        self.rest = r;
        w
    }

    fn eat(&mut self, token: char) -> bool {
        let trimmed = self.rest.trim_start();
        if let Some(r) = trimmed.strip_prefix(token) {
            self.rest = r;
            true
        } else {
            false
        }
    }
}

/// Parse a plain decimal number: "2,500", "0.05", "12".
pub fn parse_number(input: &str) -> Result<Exact, ParseError> {
    let mut c = Cursor { input, rest: input };
    let value = c.number()?;
    if !c.at_end() {
        return Err(c.error("unexpected text after the number"));
    }
    Ok(value)
}

fn parse_decimal(text: &str) -> Result<Exact, String> {
    if text.starts_with('-') {
        return Err("values cannot be negative".into());
    }
    if text.contains(['-', '+']) {
        return Err(format!("{text:?} is not a number"));
    }
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    if int_part.is_empty() {
        return Err("write a leading zero before the decimal point (0.5, not .5)".into());
    }
    let digits: String = if int_part.contains(',') {
        let groups: Vec<&str> = int_part.split(',').collect();
        let first_ok = (1..=3).contains(&groups[0].len());
        let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
        if !first_ok || !rest_ok {
            return Err(
                "commas may only separate thousands (2,500); use a point for decimals (2.5)".into(),
            );
        }
        groups.concat()
    } else {
        int_part.to_owned()
    };
    if digits.len() > 1 && digits.starts_with('0') {
        return Err("a number cannot start with 0 unless it is 0 itself (write 5, or 0.5)".into());
    }
    if digits.len() > MAX_INTEGER_DIGITS {
        return Err(format!(
            "too large: at most {MAX_INTEGER_DIGITS} digits before the decimal point"
        ));
    }
    let frac = match frac_part {
        None => "",
        Some("") => return Err("a number cannot end with a decimal point (write 5, not 5.)".into()),
        Some(f) if f.contains(['.', ',']) => return Err("only one decimal point is allowed".into()),
        Some(f) if f.len() > MAX_FRACTION_DIGITS => {
            return Err(format!(
                "too precise: at most {MAX_FRACTION_DIGITS} digits after the decimal point"
            ));
        }
        Some(f) => f,
    };
    let all = format!("{digits}{frac}");
    let numer: i128 = all
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    let denom = 10_i128.pow(u32::try_from(frac.len()).map_err(|_| "too precise".to_owned())?);
    Exact::ratio(numer, denom).map_err(|e| e.to_string())
}

fn amount_unit(word: &str) -> Option<AmountUnit> {
    Some(match word.to_lowercase().as_str() {
        "ng" | "nanogram" | "nanograms" => AmountUnit::Nanogram,
        "mcg" | "µg" | "μg" | "ug" | "microgram" | "micrograms" => AmountUnit::Microgram,
        "mg" | "milligram" | "milligrams" => AmountUnit::Milligram,
        "g" | "gram" | "grams" => AmountUnit::Gram,
        "unit" | "units" => AmountUnit::Unit,
        "mmol" | "millimole" | "millimoles" => AmountUnit::Millimole,
        _ => return None,
    })
}

fn time_unit(word: &str) -> Option<TimeUnit> {
    Some(match word.to_lowercase().as_str() {
        "s" | "sec" | "second" | "seconds" => TimeUnit::Second,
        "min" | "mins" | "minute" | "minutes" => TimeUnit::Minute,
        "h" | "hr" | "hour" | "hours" => TimeUnit::Hour,
        _ => return None,
    })
}

fn is_ml(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "ml" | "millilitre" | "millilitres" | "milliliter" | "milliliters"
    )
}

fn is_litre(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "l" | "litre" | "litres" | "liter" | "liters"
    )
}

const KNOWN: &str = "nanograms, micrograms, mg, g, units, mmol, mL, L, kg, s, min, h";

fn unknown_unit(c: &Cursor<'_>, at: &str, word: &str) -> ParseError {
    let lower = word.to_lowercase();
    if lower == "u" || lower == "iu" {
        return c.error_at(
            at,
            format!("write \"units\" in full, not {word:?} (it is misread as 0 or 10)"),
        );
    }
    if word.is_empty() {
        return c.error_at(at, format!("expected a unit after the number ({KNOWN})"));
    }
    c.error_at(at, format!("unknown unit {word:?}; known units: {KNOWN}"))
}

fn volume_after_number(c: &mut Cursor<'_>) -> Result<Volume, ParseError> {
    let n = c.number()?;
    let at = c.rest.trim_start();
    let w = c.word();
    let ml = if is_ml(w) {
        n
    } else if is_litre(w) {
        n.mul_int(1_000)
            .map_err(|e| c.error_at(at, e.to_string()))?
    } else {
        return Err(unknown_unit(c, at, w));
    };
    Volume::from_ml(ml).map_err(|e| c.error_at(at, e.to_string()))
}

/// Parse any quantity.
#[allow(clippy::too_many_lines)] // one grammar, read top to bottom
pub fn parse_quantity(input: &str) -> Result<Quantity, ParseError> {
    let mut c = Cursor { input, rest: input };
    let n = c.number()?;
    let unit_at = c.rest.trim_start();
    let w = c.word();
    let arith =
        |c: &Cursor<'_>, e: super::exact::ArithmeticError| c.error_at(unit_at, e.to_string());

    let q = if let Some(au) = amount_unit(w) {
        if c.eat('/') {
            let at2 = c.rest.trim_start();
            let w2 = c.word();
            if is_ml(w2) {
                let v = Volume::from_ml(Exact::ONE).map_err(|e| arith(&c, e))?;
                Quantity::Concentration(Concentration::new(n, au, v).map_err(|e| arith(&c, e))?)
            } else if w2.eq_ignore_ascii_case("kg") {
                if c.eat('/') {
                    let at3 = c.rest.trim_start();
                    let w3 = c.word();
                    let per = time_unit(w3).ok_or_else(|| {
                        c.error_at(at3, format!("expected min or h after /kg/, found {w3:?}"))
                    })?;
                    Quantity::Rate(Rate {
                        value: n,
                        unit: RateUnit::Dose {
                            amount: au,
                            per_kg: true,
                            per,
                        },
                    })
                } else {
                    Quantity::Dose(Dose {
                        value: n,
                        unit: BolusUnit {
                            amount: au,
                            per_kg: true,
                        },
                    })
                }
            } else if let Some(per) = time_unit(w2) {
                if per == TimeUnit::Second {
                    return Err(c.error_at(at2, "dose rates are per min or per h, not per s"));
                }
                Quantity::Rate(Rate {
                    value: n,
                    unit: RateUnit::Dose {
                        amount: au,
                        per_kg: false,
                        per,
                    },
                })
            } else {
                return Err(c.error_at(
                    at2,
                    format!("expected mL, kg, min or h after \"/\", found {w2:?}"),
                ));
            }
        } else if c
            .rest
            .trim_start()
            .starts_with(|ch: char| ch.is_alphabetic())
        {
            let at2 = c.rest.trim_start();
            let w2 = c.word();
            if !w2.eq_ignore_ascii_case("in") {
                return Err(c.error_at(at2, format!("expected \"in\" or the end, found {w2:?}")));
            }
            let volume = volume_after_number(&mut c)?;
            if volume.microlitres().is_zero() {
                return Err(c.error("the volume of a concentration cannot be zero"));
            }
            Quantity::Concentration(Concentration::new(n, au, volume).map_err(|e| arith(&c, e))?)
        } else {
            Quantity::Amount(Amount::new(n, au).map_err(|e| arith(&c, e))?, au)
        }
    } else if is_ml(w) {
        if c.eat('/') {
            let at2 = c.rest.trim_start();
            let w2 = c.word();
            match time_unit(w2) {
                Some(TimeUnit::Hour) => Quantity::Rate(Rate {
                    value: n,
                    unit: RateUnit::MillilitresPerHour,
                }),
                _ => return Err(c.error_at(at2, format!("flow rates are in mL/h, found mL/{w2}"))),
            }
        } else {
            Quantity::Volume(Volume::from_ml(n).map_err(|e| arith(&c, e))?)
        }
    } else if is_litre(w) {
        let ml = n.mul_int(1_000).map_err(|e| arith(&c, e))?;
        Quantity::Volume(Volume::from_ml(ml).map_err(|e| arith(&c, e))?)
    } else if let Some(t) = time_unit(w) {
        Quantity::Duration(Duration::new(n, t).map_err(|e| arith(&c, e))?)
    } else if w.eq_ignore_ascii_case("kg") {
        Quantity::Weight(Weight::from_kg(n).map_err(|e| arith(&c, e))?)
    } else {
        return Err(unknown_unit(&c, unit_at, w));
    };
    if !c.at_end() {
        return Err(c.error(format!(
            "unexpected text after {}: {:?}",
            q.what(),
            c.rest.trim()
        )));
    }
    Ok(q)
}

fn expected(input: &str, got: &Quantity, want: &str) -> ParseError {
    ParseError {
        input: input.to_owned(),
        position: 1,
        message: format!("expected {want}, but this is {}", got.what()),
    }
}

/// Parse a concentration: "2,500 micrograms in 50 mL" or "0.5 mg/mL".
pub fn parse_concentration(input: &str) -> Result<Concentration, ParseError> {
    match parse_quantity(input)? {
        Quantity::Concentration(c) => Ok(c),
        other => Err(expected(
            input,
            &other,
            "a concentration such as \"2,500 micrograms in 50 mL\" or \"0.5 mg/mL\"",
        )),
    }
}

/// Parse a continuous rate: "0.05 micrograms/kg/min", "2 units/h", "5 mL/h".
pub fn parse_rate(input: &str) -> Result<Rate, ParseError> {
    match parse_quantity(input)? {
        Quantity::Rate(r) => Ok(r),
        other => Err(expected(
            input,
            &other,
            "a rate such as \"0.05 micrograms/kg/min\" or \"5 mL/h\"",
        )),
    }
}

/// Parse a bolus dose: "25 micrograms" or "0.5 micrograms/kg".
pub fn parse_dose(input: &str) -> Result<Dose, ParseError> {
    match parse_quantity(input)? {
        Quantity::Dose(d) => Ok(d),
        Quantity::Amount(a, unit) => {
            let value = a
                .value_in(unit)
                .expect("an amount parsed in a unit converts back to that unit")
                .map_err(|e| ParseError {
                    input: input.to_owned(),
                    position: 1,
                    message: e.to_string(),
                })?;
            Ok(Dose {
                value,
                unit: BolusUnit {
                    amount: unit,
                    per_kg: false,
                },
            })
        }
        other => Err(expected(
            input,
            &other,
            "a dose such as \"25 micrograms\" or \"0.5 micrograms/kg\"",
        )),
    }
}

/// Parse an amount: "25 micrograms", "40 mmol".
pub fn parse_amount(input: &str) -> Result<(Amount, AmountUnit), ParseError> {
    match parse_quantity(input)? {
        Quantity::Amount(a, u) => Ok((a, u)),
        other => Err(expected(
            input,
            &other,
            "an amount such as \"25 micrograms\"",
        )),
    }
}

/// Parse a volume: "50 mL".
pub fn parse_volume(input: &str) -> Result<Volume, ParseError> {
    match parse_quantity(input)? {
        Quantity::Volume(v) => Ok(v),
        other => Err(expected(input, &other, "a volume such as \"50 mL\"")),
    }
}

/// Parse a duration: "60 s", "5 min".
pub fn parse_duration(input: &str) -> Result<Duration, ParseError> {
    match parse_quantity(input)? {
        Quantity::Duration(d) => Ok(d),
        other => Err(expected(
            input,
            &other,
            "a duration such as \"60 s\" or \"5 min\"",
        )),
    }
}

/// Parse a body weight: "70 kg".
pub fn parse_weight(input: &str) -> Result<Weight, ParseError> {
    match parse_quantity(input)? {
        Quantity::Weight(w) => Ok(w),
        other => Err(expected(input, &other, "a weight such as \"70 kg\"")),
    }
}

/// Parse a continuous dose unit as written in a library: "micrograms/kg/min",
/// "units/h", "mL/h".
pub fn parse_rate_unit(input: &str) -> Result<RateUnit, ParseError> {
    parse_rate(&format!("1 {input}"))
        .map(|r| r.unit)
        .map_err(|e| unit_error(input, &e))
}

/// Parse a bolus dose unit as written in a library: "micrograms",
/// "micrograms/kg".
pub fn parse_bolus_unit(input: &str) -> Result<BolusUnit, ParseError> {
    parse_dose(&format!("1 {input}"))
        .map(|d| d.unit)
        .map_err(|e| unit_error(input, &e))
}

/// Parse an amount unit: "micrograms", "units", "mmol".
pub fn parse_amount_unit(input: &str) -> Result<AmountUnit, ParseError> {
    parse_amount(&format!("1 {input}"))
        .map(|(_, u)| u)
        .map_err(|e| unit_error(input, &e))
}

fn unit_error(input: &str, e: &ParseError) -> ParseError {
    ParseError {
        input: input.to_owned(),
        position: e.position.saturating_sub(2).max(1),
        message: e.message.clone(),
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::format::quantity(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(n: i128, d: i128) -> Exact {
        Exact::ratio(n, d).unwrap()
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("2,500").unwrap(), Exact::int(2_500));
        assert_eq!(parse_number("1,000,000.25").unwrap(), x(4_000_001, 4));
        assert_eq!(parse_number("0.05").unwrap(), x(1, 20));
        assert_eq!(parse_number(" 12 ").unwrap(), Exact::int(12));
    }

    #[test]
    fn dangerous_numbers_are_refused_with_the_reason() {
        let e = parse_number(".5").unwrap_err();
        assert!(e.message.contains("leading zero"), "{e}");
        let e = parse_number("5.").unwrap_err();
        assert!(e.message.contains("decimal point"), "{e}");
        let e = parse_number("2,50").unwrap_err();
        assert!(e.message.contains("thousands"), "{e}");
        let e = parse_number("-1").unwrap_err();
        assert!(e.message.contains("negative"), "{e}");
        let e = parse_number("05").unwrap_err();
        assert!(e.message.contains("start with 0"), "{e}");
        let e = parse_number("0.0000000001").unwrap_err();
        assert!(e.message.contains("too precise"), "{e}");
        let e = parse_number("1.2.3").unwrap_err();
        assert!(e.message.contains("one decimal point"), "{e}");
    }

    #[test]
    fn concentrations() {
        let c = parse_concentration("2,500 micrograms in 50 mL").unwrap();
        assert_eq!(
            c.per_ml_in(AmountUnit::Microgram).unwrap().unwrap(),
            Exact::int(50)
        );
        assert_eq!(c.unit(), AmountUnit::Microgram);
        let c = parse_concentration("0.5 mg/mL").unwrap();
        assert_eq!(
            c.per_ml_in(AmountUnit::Microgram).unwrap().unwrap(),
            Exact::int(500)
        );
        let c = parse_concentration("50 units in 0.05 L").unwrap();
        assert_eq!(c.per_ml_in(AmountUnit::Unit).unwrap().unwrap(), Exact::ONE);
        let c = parse_concentration("40mmol in 100mL").unwrap();
        assert_eq!(
            c.per_ml_in(AmountUnit::Millimole).unwrap().unwrap(),
            x(2, 5)
        );
    }

    #[test]
    fn rates_doses_and_simple_quantities() {
        let r = parse_rate("5 mL/h").unwrap();
        assert_eq!(r.unit, RateUnit::MillilitresPerHour);
        let r = parse_rate("0.05 micrograms/kg/min").unwrap();
        assert_eq!(r.value, x(1, 20));
        assert!(r.unit.per_kg());
        let r = parse_rate("18 units/kg/h").unwrap();
        assert_eq!(r.unit.to_string(), "units/kg/h");
        let d = parse_dose("25 micrograms").unwrap();
        assert_eq!(d.value, Exact::int(25));
        assert!(!d.unit.per_kg);
        let d = parse_dose("0.5 mg/kg").unwrap();
        assert!(d.unit.per_kg);
        assert_eq!(
            parse_volume("12 mL").unwrap().microlitres(),
            Exact::int(12_000)
        );
        assert_eq!(
            parse_duration("2 min").unwrap().millis(),
            Exact::int(120_000)
        );
        assert_eq!(parse_weight("3.5 kg").unwrap().kg().unwrap(), x(7, 2));
        assert_eq!(parse_rate_unit("mg/kg/h").unwrap().to_string(), "mg/kg/h");
        assert_eq!(
            parse_bolus_unit("micrograms/kg").unwrap().to_string(),
            "micrograms/kg"
        );
        assert_eq!(parse_amount_unit("mcg").unwrap(), AmountUnit::Microgram);
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse_concentration("2,500 mgg in 50 mL").unwrap_err();
        assert_eq!(e.position, 7);
        assert!(e.message.contains("unknown unit \"mgg\""), "{e}");
        let e = parse_rate("10 U/h").unwrap_err();
        assert!(e.message.contains("\"units\" in full"), "{e}");
        let e = parse_concentration("5 mL/h").unwrap_err();
        assert!(e.message.contains("expected a concentration"), "{e}");
        let e = parse_quantity("5 mg in 0 mL").unwrap_err();
        assert!(e.message.contains("cannot be zero"), "{e}");
        let e = parse_quantity("5").unwrap_err();
        assert!(e.message.contains("expected a unit"), "{e}");
        let e = parse_quantity("5 mg per mL").unwrap_err();
        assert!(e.message.contains("expected \"in\""), "{e}");
        let e = parse_quantity("5 mg/s").unwrap_err();
        assert!(e.message.contains("per min or per h"), "{e}");
        let e = parse_quantity("5 mL/min").unwrap_err();
        assert!(e.message.contains("mL/h"), "{e}");
        let e = parse_quantity("5 mg in 50 mL extra").unwrap_err();
        assert!(e.message.contains("unexpected text"), "{e}");
    }
}
