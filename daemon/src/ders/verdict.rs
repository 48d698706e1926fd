//! The answer of the cross-check: an outcome and every reason behind it.
//!
//! Codes are stable strings (part of the `--json` contract and, later, of the
//! event log); where IHE PCD PIV has an error code for the same idea it is
//! given beside ours.

use serde::{Deserialize, Serialize};

/// How far a programme is from being given, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Within every limit.
    Pass,
    /// Outside a soft limit: may be given after an override with a reason and
    /// a confirmation.
    SoftLimit,
    /// Outside a hard limit: must be reprogrammed, no override.
    HardLimit,
    /// Mismatch or unknown (drug, concentration, library, arithmetic): never
    /// given.
    Block,
}

impl Outcome {
    /// Words for people.
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::SoftLimit => "SOFT LIMIT (override with reason and confirmation)",
            Outcome::HardLimit => "HARD LIMIT (reprogramme; no override)",
            Outcome::Block => "BLOCKED (do not give)",
        }
    }
}

/// Which rule produced a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// The care area is not in the library, or differs from the gateway's.
    CareAreaMismatch,
    /// The pump runs another library version than the gateway's active one.
    LibraryVersionMismatch,
    /// The drug is not in the library for this care area.
    DrugNotInLibrary,
    /// The concentration is not one the library allows here.
    ConcentrationNotInLibrary,
    /// A listed but non-standard concentration.
    NonStandardConcentration,
    /// An unlisted concentration inside the custom range.
    CustomConcentration,
    /// A dose per kg without a patient weight.
    WeightMissing,
    /// Patient weight outside the care area's limits.
    WeightOutOfRange,
    /// Volume left above volume loaded, or similar impossible container.
    ContainerInconsistent,
    /// The drug has no continuous limits in this care area.
    ContinuousNotConfigured,
    /// The programme's unit cannot be compared with the library's.
    UnitMismatch,
    /// Continuous dose under or over a limit.
    DoseRateLimit,
    /// The bolus is not configured for this drug.
    BolusNotAllowed,
    /// Bolus dose over a limit.
    BolusDoseLimit,
    /// Bolus over a shorter time than allowed.
    BolusDurationLimit,
    /// No bolus duration given where the library limits it.
    BolusDurationMissing,
    /// Bolus faster than allowed.
    BolusRateLimit,
    /// Bolus volume over the limit.
    BolusVolumeLimit,
    /// Bolus takes too large a share of what is left in the container.
    BolusShareOfContainer,
    /// Bolus larger than what is left in the container.
    BolusExceedsContainer,
    /// Total over the cumulative window over the limit.
    CumulativeLimit,
    /// The pump's own computed rate or volume disagrees with ours.
    PumpComputationMismatch,
    /// The numbers could not be computed exactly (overflow).
    ArithmeticError,
    /// The care area needs the prescriber's order and the pump has none.
    OrderMissing,
    /// The programme differs from the prescriber's order.
    OrderMismatch,
}

impl Code {
    /// The IHE PCD PIV error code for the same idea, where one fits.
    pub fn ihe(self) -> Option<u16> {
        match self {
            Code::DrugNotInLibrary => Some(9010),
            Code::LibraryVersionMismatch
            | Code::UnitMismatch
            | Code::ContinuousNotConfigured
            | Code::PumpComputationMismatch
            | Code::ConcentrationNotInLibrary => Some(9018),
            Code::WeightMissing => Some(9019),
            Code::CareAreaMismatch => Some(9021),
            Code::WeightOutOfRange
            | Code::DoseRateLimit
            | Code::BolusDoseLimit
            | Code::BolusDurationLimit
            | Code::BolusRateLimit
            | Code::BolusVolumeLimit
            | Code::BolusShareOfContainer
            | Code::CumulativeLimit => Some(9024),
            Code::BolusExceedsContainer => Some(9034),
            Code::BolusNotAllowed => Some(9039),
            // Allowed concentrations (soft): no PIV code says "allowed
            // but not standard"; 9037 is a concentration that does not
            // match the order (set on that reason in `order`).
            Code::NonStandardConcentration
            | Code::CustomConcentration
            | Code::ContainerInconsistent
            | Code::BolusDurationMissing
            | Code::ArithmeticError
            | Code::OrderMissing
            | Code::OrderMismatch => None,
        }
    }
}

/// One reason, with the numbers behind it, all already formatted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Outcome this reason alone calls for.
    pub outcome: Outcome,
    /// Stable code.
    pub code: Code,
    /// IHE PCD PIV error code, where one fits.
    pub ihe_code: Option<u16>,
    /// Which limit (`hard_max`, `soft_min`, `max_share_of_remaining_percent`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// The programmed (or recomputed) value with its unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub programmed: Option<String>,
    /// The limit's value with its unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_value: Option<String>,
    /// By how much and by what factor the limit is passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<String>,
    /// A sentence for a tired person.
    pub message: String,
}

impl Reason {
    pub(crate) fn new(outcome: Outcome, code: Code, message: String) -> Self {
        Reason {
            outcome,
            code,
            // IHE 9024 means "hard limit exceeded": never put it on a soft alert.
            ihe_code: code
                .ihe()
                .filter(|c| !(outcome == Outcome::SoftLimit && *c == 9024)),
            limit: None,
            programmed: None,
            limit_value: None,
            margin: None,
            message,
        }
    }

    /// The same reason, carrying the two values it compares.
    #[must_use]
    pub(crate) fn comparing(mut self, programmed: String, limit_value: String) -> Self {
        self.programmed = Some(programmed);
        self.limit_value = Some(limit_value);
        self
    }

    /// The same reason, naming what it is about (the limit, or the
    /// order's field: `order.concentration`).
    #[must_use]
    pub(crate) fn about(mut self, limit: String) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// The cross-check's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The most severe outcome of all reasons (pass when there are none).
    pub outcome: Outcome,
    /// Every reason, most severe first.
    pub reasons: Vec<Reason>,
    /// What the gateway computed from first principles, for display.
    pub computed: Vec<(String, String)>,
    /// The prescriber's order it was compared with (its number), if any.
    pub order: Option<String>,
}

impl Verdict {
    pub(crate) fn from_reasons(mut reasons: Vec<Reason>, computed: Vec<(String, String)>) -> Self {
        reasons.sort_by_key(|r| std::cmp::Reverse(r.outcome));
        let outcome = reasons.first().map_or(Outcome::Pass, |r| r.outcome);
        Verdict {
            outcome,
            reasons,
            computed,
            order: None,
        }
    }

    /// The same verdict with more reasons (the order's), most severe
    /// first again.
    #[must_use]
    pub fn with(self, order: Option<&super::Ordered>, more: Vec<Reason>) -> Verdict {
        let mut reasons = self.reasons;
        reasons.extend(more);
        Verdict {
            order: order.map(|o| o.number.clone()),
            ..Verdict::from_reasons(reasons, self.computed)
        }
    }

    /// True when some reason carries this code.
    pub fn has(&self, code: Code) -> bool {
        self.reasons.iter().any(|r| r.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    /// IHE PCD TF-2 Rev 8.0 ERR-5 table and the 2020 draft's additions
    /// (`../shared/INTEROP.md`): each code where its words say the same.
    #[test]
    fn each_piv_code_says_what_its_table_says() {
        // 9018 "Parameter does not match drug library"; 9037 is narrower:
        // a concentration that does not match the programmed order.
        assert_eq!(Code::ConcentrationNotInLibrary.ihe(), Some(9018));
        assert_eq!(Code::CustomConcentration.ihe(), None);
        assert_eq!(Code::NonStandardConcentration.ihe(), None);
        // 9019 "Patient weight missing".
        assert_eq!(Code::WeightMissing.ihe(), Some(9019));
        // 9034 "Not enough fluid or medication in container to deliver bolus".
        assert_eq!(Code::BolusExceedsContainer.ihe(), Some(9034));
        assert_eq!(Code::BolusNotAllowed.ihe(), Some(9039));
        assert_eq!(Code::DrugNotInLibrary.ihe(), Some(9010));
    }
}
