//! Quantities with exact arithmetic, and the parser for people's input.
//!
//! `exact` is the number type, `quantity` the typed clinical values built on
//! it, `parse` turns text into them. Showing them is [`crate::format`]'s job.

mod exact;
mod parse;
mod quantity;

pub use exact::{ArithmeticError, Exact};
pub use parse::{
    MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, ParseError, Quantity, parse_amount, parse_amount_unit,
    parse_bolus_unit, parse_concentration, parse_dose, parse_duration, parse_number,
    parse_quantity, parse_rate, parse_rate_unit, parse_volume, parse_weight,
};
pub use quantity::{
    Amount, AmountKind, AmountUnit, BolusUnit, Concentration, Dose, Duration, Rate, RateUnit,
    TimeUnit, Volume, Weight,
};
