//! The one place numbers and units become text, for every surface: CLI,
//! terminal, logs and reports (BRIEF section 5).
//!
//! Rules:
//! - units in full where confusion kills: "micrograms", "nanograms", "units"
//!   (never "µg", "mcg", "U" or "IU"); a space between number and unit;
//! - always a leading zero (0.5), never a trailing zero (5, not 5.0);
//! - thousands separators from 1,000;
//! - concentrations as amount in volume and per mL:
//!   "2,500 micrograms in 50 mL (50 micrograms/mL)".
//!
//! Rounding (display only; checks are exact): every integer digit is kept and
//! decimals are added up to [`SIGNIFICANT`] significant figures, at most
//! [`MAX_PLACES`] decimal places, rounding half away from zero. When two values
//! must be told apart (a programmed value against its limit), [`distinct`]
//! adds digits until they differ, so "2.5 mL/h is over the limit of 2.5 mL/h"
//! can never be printed.

use crate::units::{
    Amount, AmountUnit, Concentration, Dose, Duration, Exact, Quantity, Rate, TimeUnit, Volume,
    Weight,
};

/// Significant figures shown by default.
pub const SIGNIFICANT: u32 = 4;
/// The most decimal places ever shown.
pub const MAX_PLACES: u32 = 9;

/// A number with the default precision: "2,500", "0.05", "41.67".
pub fn number(x: Exact) -> String {
    number_sig(x, SIGNIFICANT)
}

/// A number with `sig` significant figures (integer digits are never
/// dropped).
pub fn number_sig(x: Exact, sig: u32) -> String {
    if x.is_zero() {
        return "0".to_owned();
    }
    let negative = x.is_negative();
    let Ok(abs) = x.abs() else {
        return "(too large to show)".to_owned();
    };
    let places = decimal_places(abs, sig);
    let Ok(scaled) = abs.scaled_round(places) else {
        return "(too large to show)".to_owned();
    };
    if scaled == 0 {
        return format!("less than 0.{}1", "0".repeat(MAX_PLACES as usize - 1));
    }
    let s = render_scaled(scaled, places);
    if negative { format!("-{s}") } else { s }
}

/// The stable name a value is written with in JSON (`"infusing"`,
/// `"biomedical_engineer"`): how states, roles and priorities are shown
/// in messages and logs.
pub fn name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Words with their first letter in capitals, to start a sentence or a
/// line ("Nurse", "Confirmed at ...").
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A count: "0", "999", "12,345".
pub fn count(n: u64) -> String {
    group_thousands(&n.to_string())
}

fn decimal_places(abs: Exact, sig: u32) -> u32 {
    let int_digits = {
        let whole = abs.numer() / abs.denom();
        if whole == 0 {
            0
        } else {
            whole.unsigned_abs().ilog10() + 1
        }
    };
    let places = if int_digits >= sig {
        0
    } else if int_digits > 0 {
        sig - int_digits
    } else {
        // Leading zeros after the point before the first significant digit.
        let mut zeros = 0;
        let mut v = abs;
        while zeros < MAX_PLACES {
            match v.mul_int(10) {
                Ok(next) if next < Exact::ONE => {
                    v = next;
                    zeros += 1;
                }
                _ => break,
            }
        }
        zeros + sig
    };
    places.min(MAX_PLACES)
}

fn render_scaled(scaled: i128, places: u32) -> String {
    let digits = scaled.unsigned_abs().to_string();
    let places = places as usize;
    let (int_part, frac_part) = if digits.len() > places {
        digits.split_at(digits.len() - places)
    } else {
        ("0", digits.as_str())
    };
    let frac = if digits.len() > places {
        frac_part.to_owned()
    } else {
        format!("{}{frac_part}", "0".repeat(places - digits.len()))
    };
    let frac = frac.trim_end_matches('0');
    let int_grouped = group_thousands(int_part);
    if frac.is_empty() {
        int_grouped
    } else {
        format!("{int_grouped}.{frac}")
    }
}

fn group_thousands(int_part: &str) -> String {
    if int_part.len() < 4 {
        return int_part.to_owned();
    }
    let mut out = String::with_capacity(int_part.len() + int_part.len() / 3);
    for (i, ch) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Two numbers shown with the fewest digits (at least the default) that make
/// different values look different.
/// If even [`MAX_PLACES`] decimals cannot separate them, `a` is marked
/// "just over" or "just under" `b`.
pub fn distinct(a: Exact, b: Exact) -> (String, String) {
    let mut sig = SIGNIFICANT;
    loop {
        let (sa, sb) = (number_sig(a, sig), number_sig(b, sig));
        if a == b || sa != sb {
            return (sa, sb);
        }
        if sig >= SIGNIFICANT + MAX_PLACES + 15 {
            let side = if a > b { "just over" } else { "just under" };
            return (format!("{side} {sa}"), sb);
        }
        sig += 1;
    }
}

/// A number already shown as text, followed by its unit, with the singular
/// for exactly one ("1 microgram/kg/min").
pub fn shown_with_unit(shown: &str, unit: &str) -> String {
    if shown == "1" {
        for word in ["nanograms", "micrograms", "units"] {
            if let Some(rest) = unit.strip_prefix(word) {
                return format!("1 {}{rest}", &word[..word.len() - 1]);
            }
        }
    }
    format!("{shown} {unit}")
}

/// A number followed by its unit: "25 micrograms", "1 unit/mL".
pub fn with_unit(x: Exact, unit: &str) -> String {
    shown_with_unit(&number(x), unit)
}

/// An amount in the unit it should be shown in.
pub fn amount(a: Amount, unit: AmountUnit) -> String {
    match a.value_in(unit) {
        Some(Ok(v)) => with_unit(v, unit.symbol()),
        _ => "(amount in another unit)".to_owned(),
    }
}

/// A volume in mL.
pub fn volume(v: Volume) -> String {
    match v.ml() {
        Ok(ml) => with_unit(ml, "mL"),
        Err(_) => "(volume too large to show)".to_owned(),
    }
}

/// A duration in the largest whole unit: "90 s", "2 min", "1 h".
pub fn duration(d: Duration) -> String {
    let ms = d.millis();
    for unit in [TimeUnit::Hour, TimeUnit::Minute] {
        if let Ok(v) = d.value_in(unit)
            && v.is_integer()
            && !v.is_zero()
        {
            return with_unit(v, unit.symbol());
        }
    }
    match ms.div_int(1_000) {
        Ok(s) => with_unit(s, "s"),
        Err(_) => "(duration too large to show)".to_owned(),
    }
}

/// Time left on a clock that counts down, to the second: "1 min 05 s",
/// "40 s", "0 s" once it has run out.
pub fn countdown(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// A plain decimal with at most `places` decimals, no separators: what a
/// pump writes on the wire and HL7 carries ("12.5", "0.001").
pub fn plain(x: Exact, places: u32) -> String {
    let Ok(scaled) = x.scaled_round(places) else {
        return "0".to_owned();
    };
    let negative = scaled < 0;
    let digits = scaled.unsigned_abs().to_string();
    let places = places as usize;
    let (int, frac) = if digits.len() > places {
        digits.split_at(digits.len() - places)
    } else {
        ("0", digits.as_str())
    };
    let frac = format!("{frac:0>places$}");
    let frac = frac.trim_end_matches('0');
    let sign = if negative { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// A patient weight: "70 kg".
pub fn weight(w: Weight) -> String {
    match w.kg() {
        Ok(kg) => with_unit(kg, "kg"),
        Err(_) => "(weight too large to show)".to_owned(),
    }
}

/// "2,500 micrograms in 50 mL (50 micrograms/mL)", or "0.5 mg/mL" when the
/// volume is 1 mL.
pub fn concentration(c: Concentration) -> String {
    let unit = c.unit();
    let per_ml = match c.per_ml_in(unit) {
        Some(Ok(v)) => with_unit(v, &format!("{}/mL", unit.symbol())),
        _ => "(strength too large to show)".to_owned(),
    };
    if c.volume().microlitres() == Exact::int(1_000) {
        return per_ml;
    }
    format!(
        "{} in {} ({per_ml})",
        amount(c.amount(), unit),
        volume(c.volume())
    )
}

/// A continuous rate in its own unit: "0.05 micrograms/kg/min".
pub fn rate(r: Rate) -> String {
    with_unit(r.value, &r.unit.to_string())
}

/// A bolus dose in its own unit: "25 micrograms".
pub fn dose(d: Dose) -> String {
    with_unit(d.value, &d.unit.to_string())
}

/// A percentage: "25%".
pub fn percent(fraction: Exact) -> String {
    match fraction.mul_int(100) {
        Ok(p) => format!("{}%", number_sig(p, 3)),
        Err(_) => "(too large to show)".to_owned(),
    }
}

/// Any parsed quantity.
pub fn quantity(q: &Quantity) -> String {
    match *q {
        Quantity::Amount(a, u) => amount(a, u),
        Quantity::Dose(d) => dose(d),
        Quantity::Volume(v) => volume(v),
        Quantity::Duration(d) => duration(d),
        Quantity::Weight(w) => weight(w),
        Quantity::Concentration(c) => concentration(c),
        Quantity::Rate(r) => rate(r),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_countdown_reads_to_the_second() {
        assert_eq!(countdown(100), "1 min 40 s");
        assert_eq!(countdown(65), "1 min 05 s");
        assert_eq!(countdown(40), "40 s");
        assert_eq!(countdown(-3), "0 s");
    }

    use super::*;
    use crate::units::{parse_concentration, parse_quantity};

    fn x(n: i128, d: i128) -> Exact {
        Exact::ratio(n, d).unwrap()
    }

    #[test]
    fn leading_zero_no_trailing_zero_thousands() {
        assert_eq!(number(x(1, 2)), "0.5");
        assert_eq!(number(Exact::int(5)), "5");
        assert_eq!(number(Exact::int(999)), "999");
        assert_eq!(number(Exact::int(1_000)), "1,000");
        assert_eq!(number(Exact::int(2_500_000)), "2,500,000");
        assert_eq!(number(x(125, 10_000)), "0.0125");
        assert_eq!(number(x(1, 3)), "0.3333");
        assert_eq!(number(x(125, 3)), "41.67");
        assert_eq!(number(x(123_456, 100)), "1,235");
        assert_eq!(number(x(-1, 2)), "-0.5");
        assert_eq!(number(Exact::ZERO), "0");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(number(x(1, 10_i128.pow(12))), "less than 0.000000001");
    }

    #[test]
    fn distinct_adds_digits_until_values_differ() {
        let limit = x(5, 2);
        let over = x(2_500_001, 1_000_000);
        assert_eq!(number(limit), number(over));
        let (a, b) = distinct(over, limit);
        assert_eq!((a.as_str(), b.as_str()), ("2.500001", "2.5"));
        assert_eq!(distinct(limit, limit), ("2.5".to_owned(), "2.5".to_owned()));
        let hair = x(1, 10_i128.pow(20));
        let (a, b) = distinct(limit.add(hair).unwrap(), limit);
        assert_eq!((a.as_str(), b.as_str()), ("just over 2.5", "2.5"));
        let (a, _) = distinct(limit.sub(hair).unwrap(), limit);
        assert_eq!(a, "just under 2.5");
        assert_eq!(
            shown_with_unit("1", "micrograms/kg/min"),
            "1 microgram/kg/min"
        );
    }

    #[test]
    fn concentrations_read_as_the_brief_says() {
        let c = parse_concentration("2,500 micrograms in 50 mL").unwrap();
        assert_eq!(
            concentration(c),
            "2,500 micrograms in 50 mL (50 micrograms/mL)"
        );
        let c = parse_concentration("0.5 mg/mL").unwrap();
        assert_eq!(concentration(c), "0.5 mg/mL");
        let c = parse_concentration("50 units in 50 mL").unwrap();
        assert_eq!(concentration(c), "50 units in 50 mL (1 unit/mL)");
    }

    #[test]
    fn units_in_full() {
        for (input, shown) in [
            ("25 mcg", "25 micrograms"),
            ("25 µg", "25 micrograms"),
            ("100 ng", "100 nanograms"),
            ("0.05 micrograms/kg/min", "0.05 micrograms/kg/min"),
            ("5.0 mL/h", "5 mL/h"),
            ("90 s", "90 s"),
            ("120 s", "2 min"),
            ("70 kg", "70 kg"),
            ("0.5 mg/kg", "0.5 mg/kg"),
            ("10 units/h", "10 units/h"),
        ] {
            assert_eq!(parse_quantity(input).unwrap().to_string(), shown, "{input}");
        }
    }
}
