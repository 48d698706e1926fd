//! The MQTT payloads match their published JSON Schemas
//! (`config/schema/mqtt-*-v1.schema.json`), and the schemas refuse what the
//! code would refuse.

use std::sync::Arc;

use pumpgw::gateway::Snapshot;
use pumpgw::gateway::view::{LinkState, PumpView};
use pumpgw::library::signature;
use pumpgw::pump::Identity;
use pumpgw::pump::event::{AlarmPriority, AlarmReport, PumpState, StatusReport};
use pumpgw::store::log::Log;
use pumpgw::store::outbox::{self, BatchLimits, Origin};
use pumpgw::store::{Context, Event, Store};
use pumpgw::sync::messages::{self, LibraryMessage, LibraryRef};
use serde_json::Value;
use time::macros::datetime;

fn schema(name: &str) -> Value {
    let path = format!(
        "{}/../config/schema/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).expect("JSON")
}

fn validator(name: &str) -> jsonschema::Validator {
    let event = schema("event-v1");
    let registry = jsonschema::Registry::new()
        .add(
            "https://example.invalid/pumpgw/schema/event-v1.schema.json",
            event,
        )
        .expect("a valid URI")
        .prepare()
        .expect("the registry prepares");
    jsonschema::options()
        .with_registry(&registry)
        .build(&schema(name))
        .expect("the schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, value: &Value) {
    let errors: Vec<String> = v.iter_errors(value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{value:#}");
}

#[test]
fn event_batches_match_their_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new(Store::open(&Store::file_in(dir.path())).unwrap()).unwrap();
    let ctx = Context {
        gateway: "icu-bed-12".into(),
        pump: None,
        care_area: "adult-icu".into(),
        library_version: Some(12),
    };
    log.append(
        vec![
            (
                ctx.clone(),
                Event::GatewayStarted {
                    software: "0.1.0".into(),
                },
            ),
            (
                ctx,
                Event::LinkDown {
                    reason: "cable".into(),
                },
            ),
        ],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let origin = Origin {
        site: "st-elsewhere".into(),
        gateway: "icu-bed-12".into(),
    };
    let limits = BatchLimits {
        max_records: 100,
        max_bytes: 1 << 20,
    };
    let batch = &outbox::batches(log.store(), &origin, 0, limits, 1).unwrap()[0];
    let v = validator("mqtt-event-batch-v1");
    let mut value: Value = serde_json::from_slice(&batch.payload).unwrap();
    assert_valid(&v, &value);
    value["records"][1]["seq"] = "two".into();
    assert!(!v.is_valid(&value), "a record is checked against event-v1");
}

#[test]
fn gateway_status_and_last_will_match_their_schema() {
    let id = messages::Identity {
        site: "st-elsewhere".into(),
        gateway: "icu-bed-12".into(),
        care_area: "adult-icu".into(),
        started_at: datetime!(2026-11-21 10:00 UTC),
    };
    let v = validator("mqtt-gateway-status-v1");
    let mut online = id.status(true, datetime!(2026-11-21 10:05 UTC));
    online.uptime_s = Some(300);
    online.backlog = Some(0);
    online.acked_seq = Some(1_234);
    online.acked_at = Some("2026-11-21T10:04:59.120Z".into());
    online.library = Some(LibraryRef {
        version: Some(13),
        sha256: Some("ab".repeat(32)),
    });
    online.pumps = Some(2);
    assert_valid(&v, &serde_json::to_value(&online).unwrap());
    let will = serde_json::to_value(id.will(datetime!(2026-11-21 10:00 UTC))).unwrap();
    assert_valid(&v, &will);
    let mut bad = will;
    bad["colour"] = "red".into();
    assert!(!v.is_valid(&bad));
}

#[test]
fn pump_status_matches_its_schema() {
    let pump = PumpView {
        name: Arc::from("pump-a"),
        link: LinkState::Online,
        since: Some(datetime!(2026-11-21 10:00 UTC)),
        offline_reason: None,
        identity: Some(Identity {
            manufacturer: "pumpgw".into(),
            model: "pump-sim".into(),
            serial: "SIM-0001".into(),
            firmware: "1.0".into(),
            protocol: "pumpgw-link/1".into(),
            care_area: Some("adult-icu".into()),
            library_version: Some(13),
            library_hash: Some([7; 32]),
        }),
        status: Some(StatusReport {
            state: PumpState::Infusing,
            drug: Some("fentanyl".into()),
            flow_rate: Some("2".into()),
            dose_rate: None,
            volume_infused: None,
            volume_remaining: Some("48".into()),
            battery_percent: 90,
            on_mains: true,
        }),
        drug_name: Some("fentaNYL".into()),
        library_match: Some(true),
        last_verdict: None,
        last_delivery: None,
        alarms: vec![AlarmReport {
            record: 1,
            id: 1,
            priority: AlarmPriority::Medium,
            condition: "near_end".into(),
            text: "Near end of infusion".into(),
            active: true,
            at: datetime!(2026-11-21 10:01 UTC),
        }],
        link_counters: pumpgw::link::LinkCounters::default(),
        last_seen: Some(datetime!(2026-11-21 10:04 UTC)),
    };
    let snapshot = Snapshot {
        gateway_id: "icu-bed-12".into(),
        care_area: "adult-icu".into(),
        library_version: Some(13),
        library_hash: Some("0707070707070707".into()),
        library_sha256: Some("07".repeat(32)),
        pumps: vec![pump.clone()],
        confirmations: Vec::new(),
        closed: Vec::new(),
        terminals: 0,
    };
    let v = validator("mqtt-pump-status-v1");
    let status = messages::pump_status("st-elsewhere", &snapshot, &pump);
    let value = serde_json::to_value(&status).unwrap();
    assert_valid(&v, &value);
    assert_eq!(value["state"], "infusing");
    assert_eq!(value["alarms"][0]["priority"], "medium");
    assert_eq!(value["library"]["sha256"], "07".repeat(32));
    // A pump that never said hello.
    let mut unknown = pump;
    unknown.identity = None;
    unknown.status = None;
    unknown.link = LinkState::Connecting;
    let value =
        serde_json::to_value(messages::pump_status("st-elsewhere", &snapshot, &unknown)).unwrap();
    assert_valid(&v, &value);
    assert_eq!(value["library_matches"], true, "as the view said");
}

#[test]
fn library_messages_match_their_schema_and_parse_back() {
    let text = include_str!("../../config/drug-library.example.json");
    let (key, _) = signature::generate().unwrap();
    let (other, _) = signature::generate().unwrap();
    let path = std::path::Path::new("k");
    let v1 = signature::sign_v1(text.as_bytes(), &key, path).unwrap();
    let v1 = serde_json::to_string(&v1).unwrap();
    let at = "2026-12-04T10:00:00Z";
    let mut v2 = signature::propose(text.as_bytes(), &key, path, "Ann", at).unwrap();
    signature::approve(text.as_bytes(), &mut v2, &other, path, "Bob", at).unwrap();
    let v2 = serde_json::to_string(&v2).unwrap();
    let message = |sig: &str| LibraryMessage {
        format: messages::LIBRARY_MESSAGE.into(),
        format_version: 1,
        library: text.into(),
        signature: serde_json::value::RawValue::from_string(sig.to_owned()).unwrap(),
        published_by: "pharmacist-a".into(),
        published_at: "2026-11-21T10:00:00.000Z".into(),
    };
    let v = validator("mqtt-library-message-v1");
    // Both signature formats are described.
    let old = serde_json::to_value(message(&v1)).unwrap();
    assert_valid(&v, &old);
    let bytes = serde_json::to_vec(&message(&v2)).unwrap();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap();
    assert_valid(&v, &value);
    let back = LibraryMessage::parse(&bytes).unwrap();
    assert_eq!(back.library.as_bytes(), text.as_bytes(), "byte for byte");
    value["format_version"] = 2.into();
    assert!(!v.is_valid(&value));
    assert!(LibraryMessage::parse(value.to_string().as_bytes()).is_err());
}
