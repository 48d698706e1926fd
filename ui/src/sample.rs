//! Realistic daemon messages for the screenshots and the screen tests: a
//! bed of six pumps and the confirmations of the HSIB fentanyl cases, in
//! the words and numbers the daemon sends (`docs/terminal-protocol.md`).

use pumpgw::terminal::protocol::ToTerminal;
use serde_json::{Value, json};

fn message(v: Value) -> ToTerminal {
    serde_json::from_value(v).expect("the samples are protocol messages")
}

/// The greeting.
pub fn welcome() -> ToTerminal {
    message(
        json!({"type": "welcome", "protocol": 1, "gateway": "ward7-bed12", "care_area": "adult-icu"}),
    )
}

/// Six pumps: infusing, an alarm, a library mismatch, a lost link.
pub fn status() -> ToTerminal {
    let pump = |pump: &str, state: &str, drug: &str, rate: &str, left: &str| {
        json!({"pump": pump, "link": "online", "offline_reason": null, "state": state,
               "drug": drug, "rate": rate, "volume_remaining": left,
               "library_matches": true, "alarms": []})
    };
    let mut alarm = pump(
        "pump-2",
        "alarm",
        "noradrenaline",
        "0.1 micrograms/kg/min",
        "31.4 mL",
    );
    alarm["alarms"] = json!([{"priority": "high", "text": "Occlusion downstream"}]);
    let mut low = pump("pump-5", "infusing", "propofol", "2 mg/kg/h", "6.2 mL");
    low["alarms"] = json!([{"priority": "medium", "text": "Syringe nearly empty"}]);
    let mut mismatch = pump("pump-4", "idle", "morphine", "", "50 mL");
    mismatch["library_matches"] = json!(false);
    mismatch["rate"] = Value::Null;
    let mut stopped = pump("pump-1", "idle", "fentaNYL", "", "12 mL");
    stopped["rate"] = Value::Null;
    stopped["last_decision"] = json!("denied (hard_limit)");
    stopped["last_reason"] = json!(
        "BOLUS_DOSE_LIMIT: Bolus dose 150 micrograms is over the HARD maximum of 100 micrograms by 50 micrograms, 1.5 times the limit."
    );
    message(
        json!({"type": "status", "at": "2026-11-22T03:00:00.000Z", "library": "version 12",
        "pumps": [
            stopped,
            alarm,
            pump("pump-3", "awaiting_authorisation", "fentaNYL", "", "50 mL"),
            mismatch,
            low,
            {"pump": "pump-6", "link": "offline", "offline_reason": "no heartbeat for 3 s",
             "state": null, "drug": null, "rate": null, "volume_remaining": null,
             "library_matches": null, "alarms": []}
        ]}),
    )
}

fn staff() -> Value {
    json!([{"id": "n.okafor", "name": "Nkechi Okafor", "role": "nurse"},
           {"id": "d.patel", "name": "Dev Patel", "role": "doctor"},
           {"id": "d.wright", "name": "Sam Wright", "role": "doctor"}])
}

fn card(id: u64, needs: &Value, screen: &Value, staff: &Value) -> ToTerminal {
    // Two minutes from now, so that the list counts down from there.
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::minutes(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    message(
        json!({"type": "confirmations", "at": "2026-11-22T03:00:01.000Z", "open": [{
            "id": id, "pump": "pump-3", "request": 4, "programme_hash": "6c".repeat(32),
            "needs": needs, "screen": screen, "screen_hash": "d9".repeat(32),
            "expires": expires, "staff": staff
        }]}),
    )
}

/// The blind re-entry of a new fentanyl syringe's label.
pub fn concentration() -> ToTerminal {
    card(
        7,
        &json!([{"kind": "concentration", "roles": ["nurse", "doctor"]}]),
        &json!({"stage": "concentration", "title": "Confirm the concentration of the new container",
                "pump": "pump-3", "drug": "fentaNYL", "high_alert": true,
                "facts": [["Waiting to start", "bolus"]],
                "order": ["Order F-2002: fentaNYL", "Bolus 25 micrograms"],
                "instruction": "Read the label on the syringe or bag and type what it says: the amount, its unit and the volume. The programmed value is not shown on purpose."}),
        &json!([{"id": "n.okafor", "name": "Nkechi Okafor", "role": "nurse"},
                {"id": "a.byrne", "name": "Aoife Byrne", "role": "nurse"},
                {"id": "t.mensah", "name": "Tomasz Mensah", "role": "nurse"},
                {"id": "l.nguyen", "name": "Linh Nguyen", "role": "nurse"},
                {"id": "d.patel", "name": "Dev Patel", "role": "doctor"},
                {"id": "d.wright", "name": "Sam Wright", "role": "doctor"},
                {"id": "r.osei", "name": "Ruth Osei", "role": "doctor"}]),
    )
}

/// A fentanyl bolus for a doctor to confirm.
pub fn bolus() -> ToTerminal {
    card(
        8,
        &json!([{"kind": "bolus", "roles": ["doctor"], "people": 1, "who": "a doctor's confirmation"}]),
        &json!({"stage": "bolus", "title": "Confirm a bolus", "pump": "pump-3", "drug": "fentaNYL",
                "high_alert": true,
                "facts": [["Dose", "25 micrograms"], ["Volume", "0.5 mL"],
                          ["Share of the container", "1% of the 50 mL left"], ["Over", "1 min"],
                          ["Concentration", "2,500 micrograms in 50 mL (50 micrograms/mL)"],
                          ["Left in the container", "50 mL"], ["Patient weight", "70 kg"]],
                "limits": [["Soft maximum", "50 micrograms"], ["Hard maximum", "100 micrograms"],
                           ["Largest share of the container", "25%"], ["Shortest time", "30 s"]],
                "soft_limits": [], "who": ["This bolus needs a doctor's confirmation."],
                "order": ["Order F-2002: fentaNYL",
                          "Concentration 2,500 micrograms in 50 mL (50 micrograms/mL)",
                          "Bolus 25 micrograms"],
                "instruction": "Check every line, then sign with your PIN."}),
        &json!([{"id": "d.patel", "name": "Dev Patel", "role": "doctor"},
                {"id": "d.wright", "name": "Sam Wright", "role": "doctor"}]),
    )
}

/// A soft-limit override of a continuous rate.
pub fn soft_limit() -> ToTerminal {
    card(
        9,
        &json!([{"kind": "override", "roles": ["nurse", "doctor"], "reasons": [
            "Prescribed dose confirmed with prescriber", "Patient-specific protocol",
            "Titrating to a documented clinical target", "Emergency: senior clinician present"]}]),
        &json!({"stage": "override", "title": "Override a soft limit", "pump": "pump-3", "drug": "fentaNYL",
                "high_alert": true,
                "facts": [["Rate", "250 micrograms/h"], ["Flow rate", "5 mL/h"],
                          ["Concentration", "2,500 micrograms in 50 mL (50 micrograms/mL)"],
                          ["Left in the container", "50 mL"], ["Patient weight", "70 kg"]],
                "limits": [],
                "soft_limits": [{"limit": "soft_max", "programmed": "250 micrograms/h",
                                 "limit_value": "200 micrograms/h", "by": "over by 50 micrograms/h, 1.25 times the limit",
                                 "message": "Dose rate 250 micrograms/h is over the soft maximum of 200 micrograms/h by 50 micrograms/h, 1.25 times the limit."}],
                "who": [], "instruction": "Choose why the limit is overridden, then sign with your PIN."}),
        &staff(),
    )
}

/// The HSIB wrong concentration caught at load.
pub fn mismatch() -> ToTerminal {
    message(
        json!({"type": "result", "id": 7, "result": "refused", "closed": true,
        "message": "The concentration typed from the label (2,500 micrograms in 50 mL (50 micrograms/mL)) is not the one programmed (500 micrograms in 50 mL (10 micrograms/mL)): do not start; check the container and programme again",
        "next": null,
        "entered": "2,500 micrograms in 50 mL (50 micrograms/mL)",
        "programmed": "500 micrograms in 50 mL (10 micrograms/mL)"}),
    )
}

/// A bolus confirmed by a doctor.
pub fn authorised() -> ToTerminal {
    message(
        json!({"type": "result", "id": 8, "result": "authorised", "closed": true,
        "message": "Confirmed by Dev Patel. The pump may start this programme.",
        "next": null, "entered": null, "programmed": null}),
    )
}

/// A nurse's PIN on a doctor-only bolus.
pub fn not_allowed() -> ToTerminal {
    message(
        json!({"type": "result", "id": 8, "result": "refused", "closed": false,
        "message": "Nkechi Okafor (a nurse) cannot confirm a bolus of fentaNYL: it needs a doctor's confirmation",
        "next": null, "entered": null, "programmed": null}),
    )
}

/// A practice gateway's greeting.
pub fn practice_welcome() -> ToTerminal {
    message(
        json!({"type": "welcome", "protocol": 1, "gateway": "practice-bed-1", "care_area": "adult-icu", "practice": true}),
    )
}

/// Practice mode after `played` cases, each judged as a person who caught
/// every wrong programme and gave the right ones would have it.
pub fn practice(played: usize) -> ToTerminal {
    use pumpgw::gateway::view::VerdictSummary;
    use pumpgw::sim::practice::{CASES, judge};
    use pumpgw::terminal::protocol::{ClosedCard, PracticeBoard};
    let decided = |decision: &str, reason: &str| VerdictSummary {
        at: time::OffsetDateTime::UNIX_EPOCH,
        request: 1,
        drug: String::new(),
        decision: decision.to_owned(),
        reason: reason.to_owned(),
    };
    let verdicts = [
        decided(
            "denied (confirmation)",
            "CONCENTRATION_MISMATCH: the label is not what was programmed",
        ),
        decided(
            "denied (block)",
            "CONCENTRATION_NOT_IN_LIBRARY: 25 micrograms in 50 mL (0.5 micrograms/mL) is not a concentration of fentaNYL allowed here. Allowed: 2,500 micrograms in 50 mL (50 micrograms/mL). Check the container label and reprogramme.",
        ),
        decided("authorised", ""),
        decided("authorised", ""),
    ];
    let signed = |by: &[&str]| ClosedCard {
        id: 1,
        pump: String::new(),
        drug: String::new(),
        outcome: "authorised".to_owned(),
        words: String::new(),
        by: by.iter().map(|s| (*s).to_owned()).collect(),
        terminal: None,
    };
    let people = [
        vec![signed(&["n.okafor"])],
        vec![],
        vec![signed(&["n.okafor"]), signed(&["d.patel"])],
        vec![signed(&["n.okafor"])],
    ];
    let name = |id: &str| match id {
        "d.patel" => "Dev Patel (doctor)".to_owned(),
        _ => "Nkechi Okafor (nurse)".to_owned(),
    };
    let summary = (0..played.min(CASES.len()))
        .map(|i| {
            let closed: Vec<&ClosedCard> = people[i].iter().collect();
            let number = u32::try_from(i + 1).expect("four cases");
            judge(number, &CASES[i], &verdicts[i], &closed, &name)
        })
        .collect();
    let current = (played + 1).min(CASES.len());
    ToTerminal::Practice(PracticeBoard {
        case: u32::try_from(current).expect("four cases"),
        cases: u32::try_from(CASES.len()).expect("four cases"),
        title: CASES[current - 1].title.to_owned(),
        summary,
    })
}
