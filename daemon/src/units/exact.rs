//! `Exact`: the one number type behind every clinical quantity.
//!
//! A reduced fraction of two `i128`s. Limits are compared exactly, so a value
//! exactly on a limit is inside it and one base unit over is outside, whatever
//! the concentration or unit conversion in between. Every operation is
//! checked: an overflow is an error, never a wrap or a silent saturation.
//! Rounding happens only when a value is shown (see [`crate::format`]).

use std::cmp::Ordering;
use std::fmt;

use num_rational::Ratio;
use num_traits::{CheckedAdd, CheckedDiv, CheckedMul, CheckedSub, Signed, Zero};

/// What went wrong in an arithmetic step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ArithmeticError {
    /// The result does not fit in the exact representation.
    #[error("number too large to compute exactly")]
    Overflow,
    /// A division by zero (for example a zero volume or a zero duration).
    #[error("division by zero")]
    DivisionByZero,
}

/// An exact rational number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exact(Ratio<i128>);

// Checked methods named like the operators on purpose: they return Result,
// so the std::ops traits (which cannot fail) are deliberately not implemented.
#[allow(clippy::should_implement_trait)]
impl Exact {
    /// Zero.
    pub const ZERO: Exact = Exact(Ratio::new_raw(0, 1));
    /// One.
    pub const ONE: Exact = Exact(Ratio::new_raw(1, 1));

    /// A whole number.
    pub const fn int(value: i128) -> Self {
        Exact(Ratio::new_raw(value, 1))
    }

    /// `numer / denom`, reduced.
    pub fn ratio(numer: i128, denom: i128) -> Result<Self, ArithmeticError> {
        if denom == 0 {
            return Err(ArithmeticError::DivisionByZero);
        }
        // Ratio::new reduces and normalises the sign; i128::MIN cannot be
        // negated, so refuse it rather than let the reduction overflow.
        if numer == i128::MIN || denom == i128::MIN {
            return Err(ArithmeticError::Overflow);
        }
        Ok(Exact(Ratio::new(numer, denom)))
    }

    /// Numerator of the reduced fraction (carries the sign).
    pub fn numer(self) -> i128 {
        *self.0.numer()
    }

    /// Denominator of the reduced fraction (always positive).
    pub fn denom(self) -> i128 {
        *self.0.denom()
    }

    /// `self + rhs`.
    pub fn add(self, rhs: Exact) -> Result<Exact, ArithmeticError> {
        self.0
            .checked_add(&rhs.0)
            .map(Exact)
            .ok_or(ArithmeticError::Overflow)
    }

    /// `self - rhs`.
    pub fn sub(self, rhs: Exact) -> Result<Exact, ArithmeticError> {
        self.0
            .checked_sub(&rhs.0)
            .map(Exact)
            .ok_or(ArithmeticError::Overflow)
    }

    /// `self * rhs`.
    pub fn mul(self, rhs: Exact) -> Result<Exact, ArithmeticError> {
        self.0
            .checked_mul(&rhs.0)
            .map(Exact)
            .ok_or(ArithmeticError::Overflow)
    }

    /// `self / rhs`.
    pub fn div(self, rhs: Exact) -> Result<Exact, ArithmeticError> {
        if rhs.0.is_zero() {
            return Err(ArithmeticError::DivisionByZero);
        }
        self.0
            .checked_div(&rhs.0)
            .map(Exact)
            .ok_or(ArithmeticError::Overflow)
    }

    /// `self * n`.
    pub fn mul_int(self, n: i128) -> Result<Exact, ArithmeticError> {
        self.mul(Exact::int(n))
    }

    /// `self / n`.
    pub fn div_int(self, n: i128) -> Result<Exact, ArithmeticError> {
        self.div(Exact::int(n))
    }

    /// True for zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// True below zero.
    pub fn is_negative(self) -> bool {
        self.0.is_negative()
    }

    /// The absolute value.
    pub fn abs(self) -> Result<Exact, ArithmeticError> {
        if self.numer() == i128::MIN {
            return Err(ArithmeticError::Overflow);
        }
        Ok(Exact(self.0.abs()))
    }

    /// The larger of two values.
    #[must_use]
    pub fn max(self, other: Exact) -> Exact {
        if other > self { other } else { self }
    }

    /// Round to `places` decimal places, half away from zero, and return the
    /// result scaled by `10^places` as an integer (`1.25` at 1 place is `13`).
    pub fn scaled_round(self, places: u32) -> Result<i128, ArithmeticError> {
        let scale = 10_i128
            .checked_pow(places)
            .ok_or(ArithmeticError::Overflow)?;
        let n = self.numer();
        let d = self.denom();
        let scaled = n.checked_mul(scale).ok_or(ArithmeticError::Overflow)?;
        let q = scaled / d;
        let r = scaled % d;
        // |r| * 2 >= d  <=>  the dropped part is at least one half.
        let twice = r
            .checked_abs()
            .and_then(|a| a.checked_mul(2))
            .ok_or(ArithmeticError::Overflow)?;
        if twice >= d {
            Ok(if n < 0 { q - 1 } else { q + 1 })
        } else {
            Ok(q)
        }
    }

    /// True when the value is a whole number.
    pub fn is_integer(self) -> bool {
        self.denom() == 1
    }
}

impl PartialOrd for Exact {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Exact {
    fn cmp(&self, other: &Self) -> Ordering {
        // Ratio's Ord compares without overflowing (it never cross-multiplies
        // blindly), which is what makes boundary comparisons trustworthy.
        self.0.cmp(&other.0)
    }
}

impl fmt::Debug for Exact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_integer() {
            write!(f, "{}", self.numer())
        } else {
            write!(f, "{}/{}", self.numer(), self.denom())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_and_compares_exactly() {
        let third = Exact::ratio(1, 3).unwrap();
        let also_third = Exact::ratio(2, 6).unwrap();
        assert_eq!(third, also_third);
        assert!(third.mul_int(3).unwrap() == Exact::ONE);
        assert!(Exact::ratio(333_333, 1_000_000).unwrap() < third);
    }

    #[test]
    fn overflow_is_an_error() {
        let big = Exact::int(i128::MAX / 2 + 1);
        assert_eq!(big.mul_int(4), Err(ArithmeticError::Overflow));
        assert_eq!(Exact::ratio(1, 0), Err(ArithmeticError::DivisionByZero));
        assert_eq!(
            Exact::ONE.div(Exact::ZERO),
            Err(ArithmeticError::DivisionByZero)
        );
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(Exact::ratio(125, 100).unwrap().scaled_round(1), Ok(13));
        assert_eq!(Exact::ratio(-125, 100).unwrap().scaled_round(1), Ok(-13));
        assert_eq!(Exact::ratio(124, 100).unwrap().scaled_round(1), Ok(12));
        assert_eq!(Exact::ratio(1, 3).unwrap().scaled_round(3), Ok(333));
        assert_eq!(Exact::ratio(2, 3).unwrap().scaled_round(3), Ok(667));
    }
}
