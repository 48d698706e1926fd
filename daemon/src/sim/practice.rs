//! Practice mode's cases (`pumpgwd demo --practice`): the HSIB incidents
//! and their safe counterparts, played one after another by the person at
//! the touchscreen as the nurse and as the doctor, and the judgement of
//! each case from what the gateway decided. The brief says only what a
//! real bedside would (the syringe's label, what was prescribed); the
//! judgement says what was caught, by whom, and what would have happened
//! without the check.

use crate::gateway::authorise::codes;
use crate::gateway::view::VerdictSummary;
use crate::terminal::protocol::{ClosedCard, PracticeCase};

/// What a case is about, which decides how it is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A wrong strength on the pump: only the nurse's blind re-entry of
    /// the label can catch it.
    LabelDiffers,
    /// A concentration no syringe has: the cross-check stops it before
    /// anyone is asked.
    NotInLibrary,
    /// A right programme: it should be confirmed and given.
    Right,
    /// Above a soft limit: it may run with a reason.
    SoftLimit,
}

/// One practice case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// What the touchscreen's practice line says: gives nothing away.
    pub title: &'static str,
    /// The scenario's name (for logs).
    pub name: &'static str,
    /// The pump's scenario (`config/examples/practice/`).
    pub scenario: &'static str,
    /// What the person is told first: only what a real bedside would tell.
    pub brief: &'static str,
    /// What would have happened without the check.
    pub without: &'static str,
    /// How it is judged.
    pub kind: Kind,
}

/// The cases, in the order they are played.
pub const CASES: [Case; 4] = [
    Case {
        title: "a new noradrenaline syringe",
        name: "1-noradrenaline-label",
        scenario: include_str!("../../../config/examples/practice/1-noradrenaline-label.toml"),
        brief: "You are the nurse. You have just put a new syringe of noradrenaline on the pump \
                for a 70 kg patient; the infusion is prescribed at 0.1 micrograms/kg/min. The \
                syringe's label reads: noradrenaline 16 mg in 50 mL. Answer what the \
                touchscreen asks.",
        without: "The pump would have run 16 mg in 50 mL at the rate worked out for 4 mg in \
                  50 mL: four times the prescribed dose of noradrenaline, with nothing on the \
                  pump to show it.",
        kind: Kind::LabelDiffers,
    },
    Case {
        title: "a fentanyl bolus for pain",
        name: "2-fentanyl-wrong-concentration-bolus",
        scenario: include_str!(
            "../../../config/examples/practice/2-fentanyl-wrong-concentration-bolus.toml"
        ),
        brief: "You are the doctor; a nurse stands by. The patient is in pain and you have \
                prescribed a 25 microgram bolus of fentanyl over one minute. The syringe's \
                label reads: fentanyl 2,500 micrograms in 50 mL. The nurse has programmed the \
                bolus on the pump. Answer what the touchscreen asks, if it asks.",
        without: "The pump would have given 50 mL for the 25 microgram bolus: the whole \
                  syringe, 2,500 micrograms of fentanyl, in one minute (the HSIB incident).",
        kind: Kind::NotInLibrary,
    },
    Case {
        title: "another fentanyl bolus",
        name: "3-fentanyl-bolus-done-right",
        scenario: include_str!(
            "../../../config/examples/practice/3-fentanyl-bolus-done-right.toml"
        ),
        brief: "You are the nurse, then the doctor. A new fentanyl syringe is on the pump and \
                a 25 microgram bolus over one minute is prescribed. The syringe's label reads: \
                fentanyl 2,500 micrograms in 50 mL. Answer what the touchscreen asks.",
        without: "Nothing different: this programme was right, and the checks let it through \
                  after a minute at the bedside.",
        kind: Kind::Right,
    },
    Case {
        title: "a morphine infusion",
        name: "4-morphine-soft-limit",
        scenario: include_str!("../../../config/examples/practice/4-morphine-soft-limit.toml"),
        brief: "You are the nurse. A new morphine syringe is on the pump and the doctor has \
                prescribed 7 mg/h for severe pain, higher than usual, after review. The \
                syringe's label reads: morphine 50 mg in 50 mL. Answer what the touchscreen \
                asks.",
        without: "The rate above the usual maximum (7 mg/h; usually at most 5 mg/h) would have \
                  run with nobody asked why and nothing logged for the pharmacist's review.",
        kind: Kind::SoftLimit,
    },
];

/// The `outcome` words of [`PracticeCase`].
pub mod outcome {
    /// A wrong programme was stopped.
    pub const CAUGHT: &str = "caught";
    /// A wrong programme ran.
    pub const MISSED: &str = "missed";
    /// A right programme was given.
    pub const GIVEN: &str = "given";
    /// A programme above a soft limit ran with a reason.
    pub const OVERRIDDEN: &str = "overridden";
    /// Nothing was given, for another reason (declined, expired...).
    pub const NOT_GIVEN: &str = "not_given";

    /// An outcome as the summaries show it ("OVERRIDDEN WITH A REASON").
    pub fn shown(outcome: &str) -> &'static str {
        match outcome {
            CAUGHT => "CAUGHT",
            MISSED => "MISSED",
            GIVEN => "GIVEN",
            OVERRIDDEN => "OVERRIDDEN WITH A REASON",
            _ => "NOT GIVEN",
        }
    }

    /// Whether it is the safe outcome: a wrong programme caught, a right
    /// one given.
    pub fn good(outcome: &str) -> bool {
        matches!(outcome, CAUGHT | GIVEN | OVERRIDDEN)
    }
}

/// Whether a pump's last decision is final (not still waiting for a
/// person).
pub fn decided(verdict: &VerdictSummary) -> bool {
    verdict.decision == "authorised" || verdict.decision.starts_with("denied")
}

/// Judges case `number` (1-based) from the pump's final decision and the
/// confirmations closed for that pump; `name` gives a staff id's name.
pub fn judge(
    number: u32,
    case: &Case,
    verdict: &VerdictSummary,
    closed: &[&ClosedCard],
    name: &dyn Fn(&str) -> String,
) -> PracticeCase {
    let authorised = verdict.decision == "authorised";
    let code = verdict.reason.split(':').next().unwrap_or_default().trim();
    let said = verdict
        .reason
        .split_once(':')
        .map_or(verdict.reason.as_str(), |(_, m)| m.trim());
    let mut people: Vec<String> = Vec::new();
    for card in closed {
        for id in &card.by {
            let who = name(id);
            if !people.contains(&who) {
                people.push(who);
            }
        }
    }
    let people = if people.is_empty() {
        "nobody".to_owned()
    } else {
        people.join(" and ")
    };
    let (outcome, what, by) = match (case.kind, authorised) {
        (Kind::LabelDiffers, false) if code == codes::CONCENTRATION_MISMATCH => (
            outcome::CAUGHT,
            "Not started: the label typed at the touchscreen did not match the pump's \
             programme (4 mg in 50 mL)."
                .to_owned(),
            format!(
                "{people}, typing the label blind as the nurse; the gateway compared it with \
                 the programme"
            ),
        ),
        (Kind::LabelDiffers, true) => (
            outcome::MISSED,
            "Started: what was typed matched the pump's 4 mg in 50 mL, not the label's 16 mg \
             in 50 mL. Type what the label says, never what you expect."
                .to_owned(),
            "nobody".to_owned(),
        ),
        (Kind::NotInLibrary, false) if code == "CONCENTRATION_NOT_IN_LIBRARY" => (
            outcome::CAUGHT,
            format!("Not given: {said}"),
            "the gateway's cross-check against the drug library, before anyone was asked"
                .to_owned(),
        ),
        (Kind::Right, true) => (
            outcome::GIVEN,
            "Given: 25 micrograms (0.5 mL), after the label and the bolus were confirmed."
                .to_owned(),
            people,
        ),
        (Kind::Right, false) if code == codes::CONCENTRATION_MISMATCH => (
            outcome::NOT_GIVEN,
            "Not given: the label typed did not match the pump's programme; this syringe's \
             label reads 2,500 micrograms in 50 mL, as programmed."
                .to_owned(),
            people,
        ),
        (Kind::SoftLimit, true) => (
            outcome::OVERRIDDEN,
            "Started above the usual maximum, with a reason, which is logged for the \
             pharmacist's review."
                .to_owned(),
            people,
        ),
        (_, true) => (outcome::GIVEN, "Given.".to_owned(), people),
        (_, false) => (outcome::NOT_GIVEN, format!("Not given: {said}"), people),
    };
    PracticeCase {
        case: number,
        title: case.title.to_owned(),
        outcome: outcome.to_owned(),
        what,
        by,
        without: case.without.to_owned(),
    }
}

/// The summary as the console prints it, case by case, folded at 76
/// columns.
pub fn summary_text(cases: &[PracticeCase]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("Practice over. Case by case:\n");
    for c in cases {
        let word = outcome::shown(&c.outcome);
        let _ = write!(
            out,
            "\n{}. {} -- {word}\n{}\n{}\n{}\n",
            c.case,
            c.title,
            fold(&c.what, 76, "   "),
            fold(&format!("By: {}", c.by), 76, "   "),
            fold(&format!("Without the check: {}", c.without), 76, "   "),
        );
    }
    out
}

/// `text` folded at `width` columns between words, every line starting
/// with `indent`.
pub fn fold(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut column = 0;
    for word in text.split_whitespace() {
        if column == 0 {
            out.push_str(indent);
            column = indent.len();
        } else if column + 1 + word.len() > width {
            out.push('\n');
            out.push_str(indent);
            column = indent.len();
        } else {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(decision: &str, reason: &str) -> VerdictSummary {
        VerdictSummary {
            at: time::OffsetDateTime::UNIX_EPOCH,
            request: 1,
            drug: "x".to_owned(),
            decision: decision.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn card(by: &[&str]) -> ClosedCard {
        ClosedCard {
            id: 1,
            pump: "pump-1".to_owned(),
            drug: "x".to_owned(),
            outcome: "authorised".to_owned(),
            words: String::new(),
            by: by.iter().map(|s| (*s).to_owned()).collect(),
            terminal: Some("t".to_owned()),
        }
    }

    fn name(id: &str) -> String {
        format!("<{id}>")
    }

    #[test]
    fn every_case_parses_as_a_scenario_without_simulated_expectations() {
        for case in &CASES {
            let s = crate::sim::scenario::Scenario::parse(case.scenario, case.name)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert!(
                !case.scenario.contains("expect"),
                "{}: a person answers practice cases; nothing is expected of them",
                case.name
            );
            assert_eq!(
                s.pump.care_area.as_deref(),
                Some("adult-icu"),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn a_label_caught_at_the_touchscreen_names_the_nurse() {
        let v = verdict(
            "denied (confirmation)",
            "CONCENTRATION_MISMATCH: the label does not match",
        );
        let c = judge(1, &CASES[0], &v, &[&card(&["n"])], &name);
        assert_eq!(c.outcome, outcome::CAUGHT);
        assert!(c.by.starts_with("<n>, typing the label blind"), "{}", c.by);
        assert!(c.without.contains("four times"), "{}", c.without);
    }

    #[test]
    fn a_label_typed_as_programmed_is_missed() {
        let c = judge(1, &CASES[0], &verdict("authorised", ""), &[], &name);
        assert_eq!(c.outcome, outcome::MISSED);
        assert_eq!(c.by, "nobody");
    }

    #[test]
    fn the_hsib_bolus_is_caught_by_the_library_before_anyone_is_asked() {
        let v = verdict(
            "denied (block)",
            "CONCENTRATION_NOT_IN_LIBRARY: 25 micrograms in 50 mL is not a fentaNYL syringe",
        );
        let c = judge(2, &CASES[1], &v, &[], &name);
        assert_eq!(c.outcome, outcome::CAUGHT);
        assert!(c.by.contains("before anyone was asked"), "{}", c.by);
        assert!(
            c.what
                .ends_with("25 micrograms in 50 mL is not a fentaNYL syringe"),
            "{}",
            c.what
        );
    }

    #[test]
    fn the_right_bolus_given_names_both_people_once() {
        let c = judge(
            3,
            &CASES[2],
            &verdict("authorised", ""),
            &[&card(&["n"]), &card(&["d", "n"])],
            &name,
        );
        assert_eq!(c.outcome, outcome::GIVEN);
        assert_eq!(c.by, "<n> and <d>");
    }

    #[test]
    fn a_soft_limit_declined_is_not_given_with_the_gateways_words() {
        let v = verdict(
            "denied (confirmation)",
            "DECLINED: declined at the terminal",
        );
        let c = judge(4, &CASES[3], &v, &[&card(&["n"])], &name);
        assert_eq!(c.outcome, outcome::NOT_GIVEN);
        assert_eq!(c.what, "Not given: declined at the terminal");
        let text = summary_text(&[c]);
        assert!(
            text.contains("4. a morphine infusion -- NOT GIVEN"),
            "{text}"
        );
    }

    #[test]
    fn text_folds_between_words_at_the_width_with_an_indent() {
        let text = fold("one two three four five six", 12, "  ");
        assert_eq!(text, "  one two\n  three four\n  five six");
        assert!(text.lines().all(|l| l.len() <= 12));
    }

    #[test]
    fn only_a_final_decision_ends_a_case() {
        assert!(!decided(&verdict("awaiting confirmation", "")));
        assert!(decided(&verdict("authorised", "")));
        assert!(decided(&verdict("denied (hard_limit)", "X: y")));
    }
}
