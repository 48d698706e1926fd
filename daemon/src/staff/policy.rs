//! Who may confirm what, decided by the library and its policy:
//!
//! - a container's concentration (blind re-entry at every load): a nurse
//!   or a doctor;
//! - a bolus: for a high-alert medicine, doctors only; otherwise a nurse or
//!   a doctor; as many different people as the drug's `bolus.confirmations`
//!   (1 or 2);
//! - a soft-limit override: a role the library's policy names, with one of
//!   the policy's reasons, word for word.
//!
//! Pharmacists and biomedical engineers confirm nothing at the bedside.

use crate::library::{Drug, Policy, Role};

use super::roster::Member;

/// A confirmation that the signers may not give, in words for the screen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn role_words(r: Role) -> &'static str {
    match r {
        Role::Nurse => "a nurse",
        Role::Doctor => "a doctor",
        Role::Pharmacist => "a pharmacist",
        Role::BiomedicalEngineer => "a biomedical engineer",
    }
}

fn any_of(roles: &[Role]) -> String {
    let words: Vec<&str> = roles.iter().map(|r| role_words(*r)).collect();
    match words.as_slice() {
        [] => "nobody".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Roles that may confirm a concentration.
pub const CONCENTRATION_ROLES: &[Role] = &[Role::Nurse, Role::Doctor];

/// Checks that `who` may confirm a container's concentration.
pub fn concentration(who: &Member) -> Result<(), Refusal> {
    if CONCENTRATION_ROLES.contains(&who.role) {
        Ok(())
    } else {
        Err(Refusal(format!(
            "{} ({}) cannot confirm a concentration: {} must",
            who.name,
            role_words(who.role),
            any_of(CONCENTRATION_ROLES)
        )))
    }
}

/// What a bolus of a drug needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BolusRule {
    /// Roles allowed to confirm.
    pub roles: Vec<Role>,
    /// How many different people.
    pub people: u8,
}

/// The rule for a bolus of `drug`.
pub fn bolus_rule(drug: &Drug) -> BolusRule {
    BolusRule {
        roles: if drug.high_alert {
            vec![Role::Doctor]
        } else {
            vec![Role::Nurse, Role::Doctor]
        },
        people: drug
            .bolus
            .as_ref()
            .map_or(1, |b| b.confirmations)
            .clamp(1, 2),
    }
}

/// The rule in words: "a doctor's confirmation", "confirmation by a nurse
/// or a doctor", "confirmation by 2 different doctors".
pub fn who_confirms(rule: &BolusRule) -> String {
    let doctors_only = rule.roles == [Role::Doctor];
    match (rule.people, doctors_only) {
        (1, true) => "a doctor's confirmation".to_owned(),
        (1, false) => format!("confirmation by {}", any_of(&rule.roles)),
        (n, true) => format!("confirmation by {n} different doctors"),
        (n, false) => format!(
            "confirmation by {n} different people, each {}",
            any_of(&rule.roles)
        ),
    }
}

/// Checks the people who confirmed a bolus of `drug` (in the order they
/// signed): enough, each allowed, none twice.
pub fn bolus(drug: &Drug, signers: &[&Member]) -> Result<(), Refusal> {
    bolus_signers(
        &drug.display_name,
        drug.high_alert,
        &bolus_rule(drug),
        signers,
    )
}

/// [`bolus`] with the drug's name, high-alert flag and rule given.
pub fn bolus_signers(
    drug: &str,
    high_alert: bool,
    rule: &BolusRule,
    signers: &[&Member],
) -> Result<(), Refusal> {
    for (i, s) in signers.iter().enumerate() {
        if !rule.roles.contains(&s.role) {
            let why = if high_alert {
                format!(", a high-alert medicine: {} must", any_of(&rule.roles))
            } else {
                format!(": {} must", any_of(&rule.roles))
            };
            return Err(Refusal(format!(
                "{} ({}) cannot confirm a bolus of {drug}{why}",
                s.name,
                role_words(s.role),
            )));
        }
        if signers[..i].iter().any(|o| o.id == s.id) {
            return Err(Refusal(format!(
                "{} has confirmed this bolus already: the second confirmation must come from another person",
                s.name
            )));
        }
    }
    let need = usize::from(rule.people);
    if signers.len() < need {
        return Err(Refusal(format!(
            "a bolus of {drug} needs {need} confirmations by {} (different people); {} given",
            any_of(&rule.roles),
            signers.len()
        )));
    }
    Ok(())
}

/// Checks a soft-limit override by `who` for `reason`.
pub fn soft_override(policy: &Policy, who: &Member, reason: &str) -> Result<(), Refusal> {
    if !policy.soft_override_roles.contains(&who.role) {
        return Err(Refusal(format!(
            "{} ({}) cannot override a soft limit: {} must",
            who.name,
            role_words(who.role),
            any_of(&policy.soft_override_roles)
        )));
    }
    if !policy.override_reasons.iter().any(|r| r == reason) {
        return Err(Refusal(format!(
            "{reason:?} is not one of the library's override reasons"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staff::roster::test_member as member;

    fn drug(high_alert: bool, confirmations: u8) -> Drug {
        let lib = crate::library::parse(
            include_str!("../../../config/drug-library.example.json").as_bytes(),
        )
        .unwrap()
        .0;
        let mut d = lib.care_areas[0]
            .drugs
            .iter()
            .find(|d| d.bolus.is_some())
            .unwrap()
            .clone();
        d.high_alert = high_alert;
        if let Some(b) = &mut d.bolus {
            b.confirmations = confirmations;
        }
        d
    }

    #[test]
    fn concentration_by_nurse_or_doctor_only() {
        assert!(concentration(&member("n", Role::Nurse)).is_ok());
        assert!(concentration(&member("d", Role::Doctor)).is_ok());
        let e = concentration(&member("p", Role::Pharmacist)).unwrap_err();
        assert!(e.0.contains("a nurse or a doctor must"), "{e}");
    }

    #[test]
    fn a_high_alert_bolus_needs_doctors_and_two_different_people_when_asked() {
        let (n, d1, d2) = (
            member("n", Role::Nurse),
            member("d1", Role::Doctor),
            member("d2", Role::Doctor),
        );
        let one = drug(true, 1);
        assert!(bolus(&one, &[&d1]).is_ok());
        let e = bolus(&one, &[&n]).unwrap_err();
        assert!(e.0.contains("a high-alert medicine: a doctor must"), "{e}");
        let two = drug(true, 2);
        assert!(bolus(&two, &[&d1, &d2]).is_ok());
        assert!(
            bolus(&two, &[&d1])
                .unwrap_err()
                .0
                .contains("needs 2 confirmations")
        );
        assert!(
            bolus(&two, &[&d1, &d1])
                .unwrap_err()
                .0
                .contains("another person")
        );
        assert!(bolus(&drug(false, 1), &[&n]).is_ok());
        assert_eq!(who_confirms(&bolus_rule(&one)), "a doctor's confirmation");
        assert_eq!(
            who_confirms(&bolus_rule(&two)),
            "confirmation by 2 different doctors"
        );
        assert_eq!(
            who_confirms(&bolus_rule(&drug(false, 1))),
            "confirmation by a nurse or a doctor"
        );
    }

    #[test]
    fn an_override_needs_a_named_role_and_a_listed_reason() {
        let p = Policy::default();
        let n = member("n", Role::Nurse);
        assert!(soft_override(&p, &n, &p.override_reasons[0]).is_ok());
        assert!(
            soft_override(&p, &n, "because")
                .unwrap_err()
                .0
                .contains("not one of")
        );
        let e = soft_override(
            &p,
            &member("b", Role::BiomedicalEngineer),
            &p.override_reasons[0],
        )
        .unwrap_err();
        assert!(e.0.contains("cannot override"), "{e}");
    }
}
