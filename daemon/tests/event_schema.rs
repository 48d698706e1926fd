//! One record of every type, checked against
//! `config/schema/event-v1.schema.json`, and the examples of
//! `docs/event-log.md` checked to be exactly such records.
//! (`PRINT_EVENTS=1 cargo test --test event_schema -- --nocapture` prints
//! them for the document.)

use pumpgw::library::signature::{Role, Signatory};
use pumpgw::store::record::{
    Context, Event, FORMAT, FORMAT_VERSION, GENESIS, LoggedReason, Record, hash,
};
use time::macros::datetime;

#[allow(clippy::too_many_lines, reason = "one literal example per record type")]
fn every_type() -> Vec<(Option<&'static str>, Event)> {
    let token = "5f0c1e7a9b2d4c6e8f1a3b5c7d9e0f21".to_owned();
    let programme_hash =
        "2f011541f9bc7b721fd52c6d441e357b1607435ed11310032e1e75673a3017af".to_owned();
    vec![
        (None, Event::GatewayStarted { software: "0.1.0".to_owned() }),
        (
            Some("pump-a"),
            Event::LinkUp {
                manufacturer: "Acme".to_owned(),
                model: "SP-1".to_owned(),
                serial: "A1234".to_owned(),
                firmware: "2.4.1".to_owned(),
                protocol: "pumpgw-link/1".to_owned(),
                pump_library_version: None,
                pump_library_hash: None,
            },
        ),
        (
            Some("pump-a"),
            Event::LibraryInstalledOnPump {
                version: 12,
                hash: "0cc8b75327319704d6a1a7c5f0b1f3e2a4c6d8e0f1a2b3c4d5e6f708192a3b4c".to_owned(),
                matches: true,
            },
        ),
        (
            Some("pump-a"),
            Event::ProgrammeRequested {
                request: 7,
                programme_hash: programme_hash.clone(),
                programme: serde_json::json!({
                    "drug": "fentanyl", "library_version": 12,
                    "requested_at": "2026-11-21T03:00:00Z", "care_area": "adult-icu",
                    "patient_weight": "70 kg",
                    "container": {"concentration": "25 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "12 mL"},
                    "delivery": {"kind": "bolus", "dose": "25 micrograms", "duration": "60 s", "pump_volume": "50 mL"}
                }),
            },
        ),
        (
            Some("pump-a"),
            Event::Verdict {
                request: 7,
                outcome: "block".to_owned(),
                reasons: serde_json::json!([{
                    "outcome": "block", "code": "CONCENTRATION_NOT_IN_LIBRARY", "ihe_code": 9018,
                    "programmed": "25 micrograms in 50 mL (0.5 micrograms/mL)",
                    "message": "25 micrograms in 50 mL (0.5 micrograms/mL) is not a concentration of fentaNYL allowed here."
                }]),
                computed: vec![("bolus volume".to_owned(), "50 mL".to_owned())],
                order: None,
            },
        ),
        (
            Some("pump-a"),
            Event::Denied {
                request: 7,
                programme_hash,
                outcome: "block".to_owned(),
                reasons: vec![LoggedReason {
                    code: "CONCENTRATION_NOT_IN_LIBRARY".to_owned(),
                    ihe: Some(9018),
                    message: "25 micrograms in 50 mL (0.5 micrograms/mL) is not a concentration of fentaNYL allowed here.".to_owned(),
                }],
            },
        ),
        (
            Some("pump-b"),
            Event::Authorised {
                request: 3,
                programme_hash: "9a3c5e7f0b2d4f6a8c0e2a4c6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a".to_owned(),
                token: token.clone(),
                expires: datetime!(2026-11-21 03:02:00.250 UTC),
            },
        ),
        (
            Some("pump-b"),
            Event::Delivery {
                event: "completed".to_owned(),
                request: 3,
                token,
                pump_serial: "B7781".to_owned(),
                pump_record: 1_795_230_000_412,
                pump_at: datetime!(2026-11-21 04:00:00.000 UTC),
                volume_infused: "1 mL".to_owned(),
                amount_infused: Some("50 micrograms".to_owned()),
            },
        ),
        (
            Some("pump-b"),
            Event::Alarm {
                alarm: 4,
                priority: "high".to_owned(),
                condition: "occlusion_downstream".to_owned(),
                text: "Downstream occlusion: check the line and the clamp".to_owned(),
                active: true,
                pump_serial: "B7781".to_owned(),
                pump_record: 1_795_230_000_413,
                pump_at: datetime!(2026-11-21 04:01:10.500 UTC),
            },
        ),
        (Some("pump-b"), Event::LinkDown { reason: "the other end hung up".to_owned() }),
        (None, Event::GatewayStopped { reason: "shutdown requested".to_owned() }),
        (
            None,
            Event::LibraryReceived {
                version: 13,
                library_id: "example-trust".to_owned(),
                sha256: "7d1e3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d".to_owned(),
                by: "pharmacist".to_owned(),
            },
        ),
        (
            None,
            Event::LibraryVerified {
                version: 13,
                key_id: "4f2a9c0e61b7d385".to_owned(),
                signers: vec![
                    Signatory {
                        role: Role::Proposed,
                        key_id: "4f2a9c0e61b7d385".to_owned(),
                        person: Some("Ann Pharmacist".to_owned()),
                        signed_at: Some("2026-11-20T16:02:11.000Z".to_owned()),
                    },
                    Signatory {
                        role: Role::Approved,
                        key_id: "9b17e4c2d05a3f68".to_owned(),
                        person: Some("Bob Pharmacist".to_owned()),
                        signed_at: Some("2026-11-21T08:40:37.000Z".to_owned()),
                    },
                ],
            },
        ),
        (
            None,
            Event::LibraryRefused {
                sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
                reason: "signature refused: the signature is by key 0a1b2c3d4e5f6071, which this gateway does not trust".to_owned(),
                by: "pharmacist".to_owned(),
            },
        ),
        (
            None,
            Event::LibraryActivated {
                version: 13,
                previous: Some(12),
                by: "biomed".to_owned(),
                reason: "pharmacy release 2026-11-21".to_owned(),
            },
        ),
        (
            Some("pump-a"),
            Event::LibraryPushed {
                version: 13,
                hash: "7d1e3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d".to_owned(),
            },
        ),
        (
            Some("pump-a"),
            Event::PinChecked {
                staff_id: "d.patel".to_owned(),
                role: Some("doctor".to_owned()),
                purpose: "bolus confirmation".to_owned(),
                result: "wrong_pin".to_owned(),
                failures: 2,
                locked_until: None,
            },
        ),
        (
            None,
            Event::StaffChanged {
                action: "added".to_owned(),
                staff_id: "n.okafor".to_owned(),
                role: "nurse".to_owned(),
                by: "biomed".to_owned(),
            },
        ),
        (
            Some("pump-a"),
            Event::ConfirmationRequested {
                request: 8,
                confirmation: 3,
                stage: "concentration".to_owned(),
                screen_hash: "9a4c2e7f1b3d5a7c9e1f3b5d7a9c1e3f5b7d9a1c3e5f7b9d1a3c5e7f9b1d3a5c"
                    .to_owned(),
                expires: datetime!(2026-11-21 03:02:21.000 UTC),
            },
        ),
        (
            Some("pump-a"),
            Event::ConfirmationRefused {
                request: 8,
                confirmation: 3,
                code: "CONCENTRATION_MISMATCH".to_owned(),
                message: "the concentration typed from the label (2,500 micrograms in 50 mL (50 micrograms/mL)) is not the one programmed (25 micrograms in 50 mL (0.5 micrograms/mL)): do not start; check the container and programme again".to_owned(),
                closed: true,
                by: vec!["n.okafor".to_owned()],
                terminal: Some("bed-12-screen".to_owned()),
            },
        ),
        (
            Some("pump-a"),
            Event::Confirmed {
                request: 9,
                confirmation: 5,
                stage: "bolus".to_owned(),
                by: vec!["d.patel".to_owned()],
                reason: None,
                terminal: "bed-12-screen".to_owned(),
                entered: None,
            },
        ),
        (
            Some("pump-b"),
            Event::Confirmed {
                request: 3,
                confirmation: 6,
                stage: "concentration".to_owned(),
                by: vec!["n.okafor".to_owned()],
                reason: None,
                terminal: "bed-12-screen".to_owned(),
                entered: Some("2,500 micrograms in 50 mL (50 micrograms/mL)".to_owned()),
            },
        ),
        (
            Some("pump-b"),
            Event::AmountMismatch {
                request: 4,
                token: "8e2a4c6e0b1d3f5a7c9e2b4d6f8a0c1e".to_owned(),
                volume_infused: "1 mL".to_owned(),
                amount_infused: "60 micrograms".to_owned(),
                computed: "50 micrograms".to_owned(),
                message: "The pump says 60 micrograms of fentaNYL was given, but 1 mL at the authorised concentration is 50 micrograms; the larger is counted. Check the pump and the container.".to_owned(),
            },
        ),
        (None, Event::ClockStepped { step_ms: -3_600_000 }),
        (
            Some("pump-b"),
            Event::RecordConflict {
                pump_serial: "SN-88412".to_owned(),
                pump_record: 4108,
                logged: 1,
                message: "Pump SN-88412 sent event number 4108 again with different content: its event counter went back. The new event is logged and counted; check the pump.".to_owned(),
            },
        ),
        // Filled in by `records`: it signs the record before it.
        (
            None,
            Event::Checkpoint {
                reason: "periodic".to_owned(),
                signed_seq: 0,
                signed_hash: String::new(),
                signed_at: String::new(),
                key: String::new(),
                signature: String::new(),
            },
        ),
        (
            Some("pump-a"),
            Event::OrderReceived {
                control_id: "MSG-20261121-0042".to_owned(),
                sender: "EPIC-PHARM".to_owned(),
                placer: "F-2001".to_owned(),
                pump_serial: "A1234".to_owned(),
                drug_code: "fentanyl".to_owned(),
                drug: "Fentanyl".to_owned(),
                drug_id: "fentanyl".to_owned(),
                bolus: false,
                rate: Some("50 micrograms/h".to_owned()),
                dose: None,
                concentration: Some("2,500 micrograms in 50 mL (50 micrograms/mL)".to_owned()),
                vtbi: Some("50 mL".to_owned()),
                weight: Some("70 kg".to_owned()),
                message_hash: "5f0c3e2a9b7d4c6e8f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70".to_owned(),
                message: "MSH|^~\\&|EPIC-PHARM|IOP|GW|GW|20261121030035||RGV^O15^RGV_O15|MSG-20261121-0042|P|2.5\rPID|||98765^^^IHE^PI\rORC|RE|F-2001\rRXG|1|||fentanyl^Fentanyl|50|mL^mL^UCUM||||||||50|ug/h^ug/h^UCUM|2500|ug^ug^UCUM|||||50|mL^mL^UCUM\rRXR|IV\rOBX|1||69986^MDC_DEV_PUMP_INFUS_VMD^MDC||||||||X|||||||^^A1234^PUMPVENDOR\rOBX|2|NM|68063^MDC_ATTR_PT_WEIGHT^MDC||70|kg^kg^UCUM\r".to_owned(),
            },
        ),
    ]
}

/// The documented example's checkpoint key: a fixed seed, so that the
/// example's signature is real and stays the same.
fn example_key() -> ring::signature::Ed25519KeyPair {
    ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("any 32 bytes are a seed")
}

fn records() -> Vec<Record> {
    let mut prev = GENESIS;
    let mut at = datetime!(2026-11-21 03:00:00.120 UTC);
    every_type()
        .into_iter()
        .enumerate()
        .map(|(i, (pump, mut event))| {
            if let Event::Checkpoint {
                signed_seq,
                signed_hash,
                signed_at,
                key,
                signature,
                ..
            } = &mut event
            {
                use ring::signature::KeyPair as _;
                let pair = example_key();
                *signed_seq = i as u64;
                *signed_hash = hex::encode(prev);
                *signed_at = pumpgw::store::record::time_text(at);
                *key = hex::encode(pair.public_key().as_ref());
                let text = pumpgw::store::checkpoint::signed_text(
                    "ward7-bed12",
                    *signed_seq,
                    signed_hash,
                    signed_at,
                );
                *signature = hex::encode(pair.sign(text.as_bytes()).as_ref());
            }
            let r = Record {
                format: FORMAT.to_owned(),
                format_version: FORMAT_VERSION,
                seq: i as u64 + 1,
                at,
                context: Context {
                    gateway: "ward7-bed12".to_owned(),
                    pump: pump.map(str::to_owned),
                    care_area: "adult-icu".to_owned(),
                    library_version: Some(12),
                },
                practice: false,
                event,
                prev_hash: hex::encode(prev),
            };
            prev = hash(&r.to_bytes());
            at += time::Duration::milliseconds(1_375);
            r
        })
        .collect()
}

#[test]
fn every_record_type_matches_the_schema_and_the_document() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../config/schema/event-v1.schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/event-log.md"))
        .unwrap_or_default();
    let print = std::env::var_os("PRINT_EVENTS").is_some();
    let mut types = std::collections::BTreeSet::new();
    for r in records() {
        let line = String::from_utf8(r.to_bytes()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", r.event.type_name());
        types.insert(r.event.type_name());
        if print {
            println!("{line}");
        } else {
            assert!(
                doc.contains(&line),
                "docs/event-log.md lacks the {} example:\n{line}",
                r.event.type_name()
            );
        }
    }
    assert_eq!(types.len(), 26, "an example of every type");
    let checkpoint = records()
        .iter()
        .find_map(pumpgw::store::checkpoint::Held::from_record)
        .expect("the example has a checkpoint");
    assert!(
        checkpoint.signature_holds(),
        "the example's signature is real"
    );
}

#[test]
fn the_schema_refuses_unknown_keys_and_wrong_types() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../config/schema/event-v1.schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let good: serde_json::Value = serde_json::from_slice(&records()[9].to_bytes()).unwrap();
    assert!(validator.is_valid(&good));
    let mut extra = good.clone();
    extra["colour"] = "red".into();
    assert!(!validator.is_valid(&extra));
    let mut wrong = good;
    wrong["seq"] = "ten".into();
    assert!(!validator.is_valid(&wrong));
}

#[test]
fn a_practice_gateways_records_of_every_type_match_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../config/schema/event-v1.schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    for mut r in records() {
        r.practice = true;
        let value: serde_json::Value = serde_json::from_slice(&r.to_bytes()).unwrap();
        assert_eq!(value["practice"], true);
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", r.event.type_name());
        // Only ever written as true: false is not a record's.
        let mut wrong = value.clone();
        wrong["practice"] = serde_json::Value::Bool(false);
        assert!(!validator.is_valid(&wrong), "{}", r.event.type_name());
    }
}
