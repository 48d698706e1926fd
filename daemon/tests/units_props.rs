//! Property tests: parsing and formatting round-trip, conversions are exact,
//! and limit comparisons hold at exact boundaries whatever the units.

use proptest::prelude::*;
use pumpgw::format;
use pumpgw::units::{
    AmountUnit, Exact, Rate, RateUnit, TimeUnit, parse_concentration, parse_number, parse_rate,
};

/// A decimal string as people write it, with its exact value.
fn decimal() -> impl Strategy<Value = (String, Exact)> {
    (0u64..1_000_000_000, 0u32..=6).prop_map(|(n, places)| {
        let scale = 10u64.pow(places);
        let int = n / scale;
        let frac = n % scale;
        let s = if places == 0 {
            int.to_string()
        } else {
            format!("{int}.{frac:0width$}", width = places as usize)
        };
        (
            s,
            Exact::ratio(i128::from(n), i128::from(scale))
                .expect("scale is a positive power of ten"),
        )
    })
}

fn grouped(s: &str) -> String {
    let (int, frac) = s.split_once('.').map_or((s, None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    match frac {
        Some(f) => format!("{out}.{f}"),
        None => out,
    }
}

proptest! {
    #[test]
    fn numbers_parse_exactly_with_or_without_separators((s, v) in decimal()) {
        prop_assert_eq!(parse_number(&s).unwrap(), v);
        prop_assert_eq!(parse_number(&grouped(&s)).unwrap(), v);
    }

    #[test]
    fn formatted_numbers_parse_back_to_the_rounded_value((s, v) in decimal()) {
        let _ = s;
        let shown = format::number(v);
        let back = parse_number(&shown).unwrap();
        // Exact when the value needs no more than 4 significant figures;
        // otherwise within half a unit of the last digit shown.
        let places = shown.split_once('.').map_or(0, |(_, f)| f.len());
        let half_ulp = Exact::ratio(1, 2 * 10_i128.pow(u32::try_from(places).unwrap())).unwrap();
        prop_assert!(back.sub(v).unwrap().abs().unwrap() <= half_ulp, "{} -> {}", v.numer(), shown);
        prop_assert!(!shown.starts_with('.'));
        prop_assert!(!(shown.contains('.') && shown.ends_with('0')));
    }

    #[test]
    fn distinct_never_shows_different_values_alike(a in 1i128..10_000_000, b in 1i128..10_000_000, d in 1i128..1_000_000) {
        let x = Exact::ratio(a, d).unwrap();
        let y = Exact::ratio(b, d).unwrap();
        let (sx, sy) = format::distinct(x, y);
        prop_assert_eq!(sx == sy, x == y);
    }

    #[test]
    fn rate_conversion_round_trips(n in 1i128..1_000_000_000, d in 1i128..1_000) {
        let v = Exact::ratio(n, d).unwrap();
        let from = RateUnit::Dose { amount: AmountUnit::Microgram, per_kg: true, per: TimeUnit::Minute };
        let to = RateUnit::Dose { amount: AmountUnit::Milligram, per_kg: true, per: TimeUnit::Hour };
        let there = Rate { value: v, unit: from }.convert(to).unwrap().unwrap();
        let back = Rate { value: there, unit: to }.convert(from).unwrap().unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn a_limit_is_inside_and_one_base_unit_over_is_outside(limit in 1i128..10_000_000) {
        // A limit in micrograms/h against a rate typed in nanograms/h.
        let lim = Exact::int(limit);
        let on = parse_rate(&format!("{} nanograms/h", limit * 1_000)).unwrap();
        let over = parse_rate(&format!("{} nanograms/h", limit * 1_000 + 1)).unwrap();
        let unit = RateUnit::Dose { amount: AmountUnit::Microgram, per_kg: false, per: TimeUnit::Hour };
        prop_assert!(on.convert(unit).unwrap().unwrap() <= lim);
        prop_assert!(over.convert(unit).unwrap().unwrap() > lim);
    }

    #[test]
    fn concentrations_of_equal_strength_match(amount in 1i128..100_000, vol in 1i128..500, k in 2i128..10) {
        let a = parse_concentration(&format!("{amount} micrograms in {vol} mL")).unwrap();
        let b = parse_concentration(&format!("{} micrograms in {} mL", amount * k, vol * k)).unwrap();
        let c = parse_concentration(&format!("{} micrograms in {} mL", amount * k + 1, vol * k)).unwrap();
        prop_assert!(a.same_strength(b).unwrap());
        prop_assert!(!a.same_strength(c).unwrap());
    }

    #[test]
    fn the_parser_never_panics(s in "\\PC{0,40}") {
        let _ = pumpgw::units::parse_quantity(&s);
    }
}
