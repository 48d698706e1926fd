//! What changed between two drug libraries, for the pharmacist who
//! approves the new one (`pumpgwd library diff OLD NEW`, and before every
//! import and activation): per care area and drug, what was added,
//! removed and changed. Each limit is shown old → new in the display
//! rules' words, with its relative change; concentrations and advisories
//! too. Nothing is left out as "minor": a limit that moved is a change.

use serde::{Deserialize, Serialize};

use super::model::{BolusLimits, CareArea, ContinuousLimits, Drug, Library, Range};
use crate::format;
use crate::units::Exact;

/// Everything that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    /// The old library's version.
    pub from_version: u64,
    /// The new one's.
    pub to_version: u64,
    /// Library-wide changes (policy, format), in words.
    pub library: Vec<Change>,
    /// Per care area, in the new library's order, then the removed ones.
    pub care_areas: Vec<AreaDiff>,
}

/// How an entry changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Only in the new library.
    Added,
    /// Only in the old one.
    Removed,
    /// In both, with differences.
    Changed,
}

/// One field's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What (`continuous.hard_max`, `concentration`, `advisory`).
    pub field: String,
    /// The old value in words (none: it was not set).
    pub old: Option<String>,
    /// The new value in words (none: it is not set any more).
    pub new: Option<String>,
    /// The relative change of a number in the same unit ("+100%",
    /// "-50%", "x1,000").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<String>,
}

/// One care area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaDiff {
    /// Its id.
    pub id: String,
    /// Its name (the new one's when both have it).
    pub name: String,
    /// Added, removed or changed.
    pub kind: Kind,
    /// The area's own fields (weights, orders).
    pub changes: Vec<Change>,
    /// Its drugs that differ.
    pub drugs: Vec<DrugDiff>,
}

/// One drug in one care area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrugDiff {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Added, removed or changed.
    pub kind: Kind,
    /// Every field that differs.
    pub changes: Vec<Change>,
}

impl Diff {
    /// True when nothing differs but the version.
    pub fn is_empty(&self) -> bool {
        self.library.is_empty() && self.care_areas.is_empty()
    }

    /// The diff for people, one line per change, indented by area and
    /// drug.
    pub fn text(&self) -> String {
        let mut lines = vec![format!(
            "Drug library version {} -> {}",
            self.from_version, self.to_version
        )];
        if self.is_empty() {
            lines.push("  no differences in any limit, concentration or advisory".to_owned());
        }
        lines.extend(self.library.iter().map(|c| format!("  {}", line(c))));
        for a in &self.care_areas {
            lines.push(format!("  {} {} ({})", mark(a.kind), a.name, a.id));
            lines.extend(a.changes.iter().map(|c| format!("      {}", line(c))));
            for d in &a.drugs {
                lines.push(format!("    {} {} ({})", mark(d.kind), d.name, d.id));
                lines.extend(d.changes.iter().map(|c| format!("        {}", line(c))));
            }
        }
        lines.join("\n") + "\n"
    }
}

fn mark(kind: Kind) -> &'static str {
    match kind {
        Kind::Added => "+ added:",
        Kind::Removed => "- removed:",
        Kind::Changed => "~ changed:",
    }
}

fn line(c: &Change) -> String {
    let none = "not set";
    let relative = c
        .relative
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    format!(
        "{}: {} -> {}{relative}",
        c.field,
        c.old.as_deref().unwrap_or(none),
        c.new.as_deref().unwrap_or(none)
    )
}

/// What changed from `old` to `new`.
pub fn diff(old: &Library, new: &Library) -> Diff {
    let mut library = Vec::new();
    if old.format_version != new.format_version {
        library.push(text_change(
            "format_version",
            Some(old.format_version.to_string()),
            Some(new.format_version.to_string()),
        ));
    }
    let roles = |l: &Library| {
        l.policy
            .soft_override_roles
            .iter()
            .map(format::name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    push_text(
        &mut library,
        "policy.soft_override_roles",
        roles(old),
        roles(new),
    );
    push_text(
        &mut library,
        "policy.override_reasons",
        old.policy.override_reasons.join("; "),
        new.policy.override_reasons.join("; "),
    );
    let mut care_areas = Vec::new();
    for area in &new.care_areas {
        match old.care_area(&area.id) {
            None => care_areas.push(AreaDiff {
                id: area.id.clone(),
                name: area.name.clone(),
                kind: Kind::Added,
                changes: Vec::new(),
                drugs: area.drugs.iter().map(|d| whole(d, Kind::Added)).collect(),
            }),
            Some(before) => {
                let a = area_diff(before, area);
                if !a.changes.is_empty() || !a.drugs.is_empty() {
                    care_areas.push(a);
                }
            }
        }
    }
    for area in &old.care_areas {
        if new.care_area(&area.id).is_none() {
            care_areas.push(AreaDiff {
                id: area.id.clone(),
                name: area.name.clone(),
                kind: Kind::Removed,
                changes: Vec::new(),
                drugs: area.drugs.iter().map(|d| whole(d, Kind::Removed)).collect(),
            });
        }
    }
    Diff {
        from_version: old.version,
        to_version: new.version,
        library,
        care_areas,
    }
}

fn area_diff(old: &CareArea, new: &CareArea) -> AreaDiff {
    let mut changes = Vec::new();
    push_text(&mut changes, "name", old.name.clone(), new.name.clone());
    push_text(
        &mut changes,
        "orders",
        old.orders.name().to_owned(),
        new.orders.name().to_owned(),
    );
    range(
        &mut changes,
        "patient_weight_kg",
        "kg",
        old.patient_weight_kg,
        new.patient_weight_kg,
    );
    let mut drugs = Vec::new();
    for d in &new.drugs {
        match old.drug(&d.id) {
            None => drugs.push(whole(d, Kind::Added)),
            Some(before) => {
                let changes = drug_changes(before, d);
                if !changes.is_empty() {
                    drugs.push(DrugDiff {
                        id: d.id.clone(),
                        name: d.display_name.clone(),
                        kind: Kind::Changed,
                        changes,
                    });
                }
            }
        }
    }
    for d in &old.drugs {
        if new.drug(&d.id).is_none() {
            drugs.push(whole(d, Kind::Removed));
        }
    }
    AreaDiff {
        id: new.id.clone(),
        name: new.name.clone(),
        kind: Kind::Changed,
        changes,
        drugs,
    }
}

/// A drug added or removed whole: its concentrations and limits listed.
fn whole(d: &Drug, kind: Kind) -> DrugDiff {
    let empty = Drug {
        concentrations: Vec::new(),
        custom_concentration: None,
        continuous: None,
        bolus: None,
        cumulative: None,
        advisory: None,
        high_alert: false,
        ..d.clone()
    };
    let changes = match kind {
        Kind::Removed => drug_changes(d, &empty),
        _ => drug_changes(&empty, d),
    };
    DrugDiff {
        id: d.id.clone(),
        name: d.display_name.clone(),
        kind,
        changes,
    }
}

fn drug_changes(old: &Drug, new: &Drug) -> Vec<Change> {
    let mut c = Vec::new();
    push_text(
        &mut c,
        "display_name",
        old.display_name.clone(),
        new.display_name.clone(),
    );
    push_text(
        &mut c,
        "generic_name",
        old.generic_name.clone(),
        new.generic_name.clone(),
    );
    push_text(
        &mut c,
        "high_alert",
        old.high_alert.to_string(),
        new.high_alert.to_string(),
    );
    concentrations(&mut c, old, new);
    let custom = |d: &Drug| {
        d.custom_concentration.map(|r| {
            let unit = format!("{}/mL", r.unit.symbol());
            format!(
                "{} to {}",
                format::with_unit(r.min_per_ml, &unit),
                format::with_unit(r.max_per_ml, &unit)
            )
        })
    };
    push_opt(&mut c, "custom_concentration", custom(old), custom(new));
    continuous(&mut c, old.continuous.as_ref(), new.continuous.as_ref());
    bolus(&mut c, old.bolus.as_ref(), new.bolus.as_ref());
    let cumulative = |d: &Drug| {
        d.cumulative.map(|l| {
            format!(
                "{} in {} min",
                format::with_unit(l.max, l.unit.symbol()),
                format::count(u64::from(l.window_minutes))
            )
        })
    };
    push_opt(&mut c, "cumulative", cumulative(old), cumulative(new));
    push_opt(
        &mut c,
        "advisory",
        old.advisory.clone(),
        new.advisory.clone(),
    );
    c
}

/// Concentrations are a set: each one added or removed, and a change of
/// `standard` on one in both.
fn concentrations(c: &mut Vec<Change>, old: &Drug, new: &Drug) {
    let words = |x: &super::model::LibraryConcentration| {
        let volume = crate::units::Volume::from_ml(x.volume_ml)
            .ok()
            .and_then(|v| crate::units::Concentration::new(x.amount, x.unit, v).ok());
        volume.map_or_else(
            || {
                format!(
                    "{} {} in {} mL",
                    format::number(x.amount),
                    x.unit.symbol(),
                    format::number(x.volume_ml)
                )
            },
            format::concentration,
        )
    };
    let same = |a: &super::model::LibraryConcentration, b: &super::model::LibraryConcentration| {
        a.amount == b.amount && a.unit == b.unit && a.volume_ml == b.volume_ml
    };
    for x in &new.concentrations {
        match old.concentrations.iter().find(|o| same(o, x)) {
            None => c.push(text_change(
                "concentration",
                None,
                Some(standard(&words(x), x.standard)),
            )),
            Some(o) if o.standard != x.standard => c.push(text_change(
                "concentration",
                Some(standard(&words(o), o.standard)),
                Some(standard(&words(x), x.standard)),
            )),
            Some(_) => {}
        }
    }
    for o in &old.concentrations {
        if !new.concentrations.iter().any(|x| same(o, x)) {
            c.push(text_change(
                "concentration",
                Some(standard(&words(o), o.standard)),
                None,
            ));
        }
    }
}

fn standard(words: &str, standard: bool) -> String {
    if standard {
        words.to_owned()
    } else {
        format!("{words}, not standard")
    }
}

/// One optional limit of a limits section.
type Field<T> = fn(&T) -> Option<Exact>;

fn continuous(c: &mut Vec<Change>, old: Option<&ContinuousLimits>, new: Option<&ContinuousLimits>) {
    let unit = |l: Option<&ContinuousLimits>| l.map(|l| l.dose_unit.to_string());
    let (ou, nu) = (unit(old), unit(new));
    push_opt(c, "continuous.dose_unit", ou.clone(), nu.clone());
    let get =
        |l: Option<&ContinuousLimits>, f: fn(&ContinuousLimits) -> Option<Exact>| l.and_then(f);
    let limits: [(&str, Field<ContinuousLimits>); 4] = [
        ("continuous.hard_min", |l| l.hard_min),
        ("continuous.soft_min", |l| l.soft_min),
        ("continuous.soft_max", |l| l.soft_max),
        ("continuous.hard_max", |l| l.hard_max),
    ];
    for (field, f) in limits {
        number(
            c,
            field,
            (get(old, f), ou.as_deref()),
            (get(new, f), nu.as_deref()),
        );
    }
}

fn bolus(c: &mut Vec<Change>, old: Option<&BolusLimits>, new: Option<&BolusLimits>) {
    let allowed = |b: Option<&BolusLimits>| {
        b.map(|b| if b.allowed { "allowed" } else { "not allowed" }.to_owned())
    };
    push_opt(c, "bolus", allowed(old), allowed(new));
    let unit = |b: Option<&BolusLimits>| b.and_then(|b| b.dose_unit).map(|u| u.to_string());
    let (ou, nu) = (unit(old), unit(new));
    push_opt(c, "bolus.dose_unit", ou.clone(), nu.clone());
    let get = |b: Option<&BolusLimits>, f: Field<BolusLimits>| b.and_then(f);
    let dose: [(&str, Field<BolusLimits>); 2] = [
        ("bolus.soft_max", |b| b.soft_max),
        ("bolus.hard_max", |b| b.hard_max),
    ];
    for (field, f) in dose {
        number(
            c,
            field,
            (get(old, f), ou.as_deref()),
            (get(new, f), nu.as_deref()),
        );
    }
    let fixed: [(&str, &str, Field<BolusLimits>); 4] = [
        ("bolus.min_duration_s", "s", |b| b.min_duration_s),
        ("bolus.max_rate_ml_per_h", "mL/h", |b| b.max_rate_ml_per_h),
        ("bolus.max_volume_ml", "mL", |b| b.max_volume_ml),
        ("bolus.max_share_of_remaining_percent", "%", |b| {
            b.max_share_of_remaining_percent
        }),
    ];
    for (field, u, f) in fixed {
        number(c, field, (get(old, f), Some(u)), (get(new, f), Some(u)));
    }
    let people = |b: Option<&BolusLimits>| b.map(|b| b.confirmations.to_string());
    push_opt(c, "bolus.confirmations", people(old), people(new));
}

fn range(c: &mut Vec<Change>, field: &str, unit: &str, old: Range, new: Range) {
    number(
        c,
        &format!("{field}.min"),
        (old.min, Some(unit)),
        (new.min, Some(unit)),
    );
    number(
        c,
        &format!("{field}.max"),
        (old.max, Some(unit)),
        (new.max, Some(unit)),
    );
}

/// A number with its unit; the relative change when both are set in the
/// same unit.
fn number(
    c: &mut Vec<Change>,
    field: &str,
    (old, old_unit): (Option<Exact>, Option<&str>),
    (new, new_unit): (Option<Exact>, Option<&str>),
) {
    if old == new && old_unit == new_unit {
        return;
    }
    if old.is_none() && new.is_none() {
        return;
    }
    let words = |x: Option<Exact>, unit: Option<&str>| {
        x.map(|x| format::with_unit(x, unit.unwrap_or_default()))
    };
    let relative = match (old, new) {
        (Some(o), Some(n)) if old_unit == new_unit && !o.is_zero() => relative(o, n),
        _ => None,
    };
    c.push(Change {
        field: field.to_owned(),
        old: words(old, old_unit),
        new: words(new, new_unit),
        relative,
    });
}

/// "+100%", "-50%"; a factor where it is 10 or more either way ("x1,000",
/// "/1,000"): the signature of micrograms typed for milligrams.
fn relative(old: Exact, new: Exact) -> Option<String> {
    let ratio = new.div(old).ok()?;
    let ten = Exact::int(10);
    if ratio >= ten {
        return Some(format!("x{}", format::number(ratio)));
    }
    if !ratio.is_zero() && ten.mul(ratio).ok()? <= Exact::int(1) {
        return Some(format!(
            "/{}",
            format::number(Exact::int(1).div(ratio).ok()?)
        ));
    }
    let change = ratio.sub(Exact::int(1)).ok()?;
    let shown = format::percent(change);
    Some(if change.is_negative() {
        shown
    } else {
        format!("+{shown}")
    })
}

fn text_change(field: &str, old: Option<String>, new: Option<String>) -> Change {
    Change {
        field: field.to_owned(),
        old,
        new,
        relative: None,
    }
}

fn push_text(c: &mut Vec<Change>, field: &str, old: String, new: String) {
    if old != new {
        c.push(text_change(field, Some(old), Some(new)));
    }
}

fn push_opt(c: &mut Vec<Change>, field: &str, old: Option<String>, new: Option<String>) {
    if old != new {
        c.push(text_change(field, old, new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn example() -> Value {
        serde_json::from_str(include_str!("../../../config/drug-library.example.json"))
            .expect("the example is JSON")
    }

    fn read(v: &Value) -> Library {
        super::super::parse(&serde_json::to_vec(v).expect("serialises"))
            .expect("a valid library")
            .0
    }

    #[test]
    fn the_same_library_has_no_differences() {
        let l = read(&example());
        let d = diff(&l, &l);
        assert!(d.is_empty(), "{d:#?}");
        assert!(d.text().contains("no differences"), "{}", d.text());
    }

    #[test]
    fn each_limit_shows_old_new_and_the_relative_change_micrograms_for_mg_stand_out() {
        let old = example();
        let mut new = example();
        new["version"] = json!(13);
        let fentanyl = &mut new["care_areas"][0]["drugs"][0];
        fentanyl["continuous"]["hard_max"] = json!("800");
        fentanyl["continuous"]["soft_max"] = json!("100");
        fentanyl["advisory"] = json!("Check the syringe label twice.");
        fentanyl["concentrations"]
            .as_array_mut()
            .expect("concentrations")
            .push(json!({"amount": "1000", "unit": "micrograms", "volume_ml": "20", "standard": false}));
        let d = diff(&read(&old), &read(&new));
        assert_eq!((d.from_version, d.to_version), (12, 13));
        let area = &d.care_areas[0];
        assert_eq!(area.id, "adult-icu");
        let drug = &area.drugs[0];
        assert_eq!((drug.id.as_str(), drug.kind), ("fentanyl", Kind::Changed));
        let field = |f: &str| {
            drug.changes
                .iter()
                .find(|c| c.field == f)
                .unwrap_or_else(|| panic!("{f} in {drug:#?}"))
        };
        let hard = field("continuous.hard_max");
        assert_eq!(hard.old.as_deref(), Some("400 micrograms/h"));
        assert_eq!(hard.new.as_deref(), Some("800 micrograms/h"));
        assert_eq!(hard.relative.as_deref(), Some("+100%"));
        assert_eq!(
            field("continuous.soft_max").relative.as_deref(),
            Some("-50%")
        );
        assert_eq!(
            field("concentration").new.as_deref(),
            Some("1,000 micrograms in 20 mL (50 micrograms/mL), not standard")
        );
        assert_eq!(
            field("advisory").new.as_deref(),
            Some("Check the syringe label twice.")
        );
        let text = d.text();
        assert!(
            text.contains("continuous.hard_max: 400 micrograms/h -> 800 micrograms/h (+100%)"),
            "{text}"
        );
        // A limit typed 1,000 times too large says so.
        let mut typo = example();
        typo["care_areas"][0]["drugs"][0]["continuous"]["hard_max"] = json!("400000");
        typo["care_areas"][0]["drugs"][0]["continuous"]["soft_max"] = json!("200000");
        let d = diff(&read(&old), &read(&typo));
        let c = &d.care_areas[0].drugs[0].changes;
        assert!(
            c.iter().any(
                |c| c.field == "continuous.hard_max" && c.relative.as_deref() == Some("x1,000")
            ),
            "{c:#?}"
        );
    }

    #[test]
    fn drugs_and_care_areas_added_and_removed_are_listed_whole() {
        let old = example();
        let mut new = example();
        let areas = new["care_areas"].as_array_mut().expect("areas");
        let theatres = areas.pop().expect("theatres");
        let drugs = areas[0]["drugs"].as_array_mut().expect("drugs");
        let removed = drugs.remove(1);
        let d = diff(&read(&old), &read(&new));
        let kinds: Vec<(&str, Kind)> = d
            .care_areas
            .iter()
            .map(|a| (a.id.as_str(), a.kind))
            .collect();
        assert!(kinds.contains(&("theatres", Kind::Removed)), "{kinds:?}");
        let icu = d
            .care_areas
            .iter()
            .find(|a| a.id == "adult-icu")
            .expect("changed");
        let gone = icu
            .drugs
            .iter()
            .find(|x| x.id == removed["id"].as_str().expect("id"))
            .expect("the removed drug");
        assert_eq!(gone.kind, Kind::Removed);
        assert!(
            gone.changes
                .iter()
                .any(|c| c.field == "concentration" && c.new.is_none())
        );
        // And back again: added.
        let d = diff(&read(&new), &read(&old));
        assert!(
            d.care_areas
                .iter()
                .any(|a| a.id == "theatres" && a.kind == Kind::Added)
        );
        assert_eq!(theatres["id"], "theatres");
        let json = serde_json::to_value(&d).expect("serialises");
        assert_eq!(json["care_areas"][0]["kind"], "changed");
    }
}
