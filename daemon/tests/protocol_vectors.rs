//! The byte-level worked examples of `docs/protocol.md`, checked both ways:
//! our encoder produces exactly the bytes the document shows, and our
//! decoder reads them back to the same message.

use bytes::BytesMut;
use pumpgw::link::message::{
    Authorisation, Denial, DenialReason, Hello, LibraryChunk, ProgrammeRequest, PumpState, Status,
};
use pumpgw::link::{Frame, Header, LinkCodec, Message, sha256};
use tokio_util::codec::Decoder;

/// The vectors, in document order: name, header (type comes from the
/// message), message.
fn vectors() -> Vec<(&'static str, u16, u16, Message)> {
    let programme = ciborium::Value::Map(vec![
        ("drug".into(), "fentanyl".into()),
        ("library_version".into(), 12.into()),
        ("requested_at".into(), "2026-11-21T03:00:00Z".into()),
        ("care_area".into(), "adult-icu".into()),
        ("patient_weight".into(), "70 kg".into()),
        (
            "container".into(),
            ciborium::Value::Map(vec![
                ("concentration".into(), "25 micrograms in 50 mL".into()),
                ("volume_loaded".into(), "50 mL".into()),
                ("volume_remaining".into(), "12 mL".into()),
            ]),
        ),
        (
            "delivery".into(),
            ciborium::Value::Map(vec![
                ("kind".into(), "bolus".into()),
                ("dose".into(), "25 micrograms".into()),
                ("duration".into(), "60 s".into()),
                ("pump_volume".into(), "50 mL".into()),
            ]),
        ),
    ]);
    vec![
        ("ack", 0, 1, Message::Ack),
        ("heartbeat", 7, 3, Message::Heartbeat),
        (
            "hello",
            1,
            0,
            Message::Hello(Hello {
                versions: vec![1],
                manufacturer: "Acme".to_owned(),
                model: "SP-1".to_owned(),
                serial: "A1234".to_owned(),
                firmware: "2.4.1".to_owned(),
                care_area: Some("adult-icu".to_owned()),
                library_version: None,
                library_hash: None,
            }),
        ),
        (
            "status",
            5,
            2,
            Message::Status(Status {
                state: PumpState::Infusing,
                drug: Some("fentanyl".to_owned()),
                flow_rate: Some("1 mL/h".to_owned()),
                dose_rate: Some("50 micrograms/h".to_owned()),
                volume_infused: Some("0.25 mL".to_owned()),
                volume_remaining: Some("49.75 mL".to_owned()),
                battery_percent: 87,
                on_mains: true,
                alarms: vec![],
            }),
        ),
        (
            "programme-request",
            9,
            4,
            Message::ProgrammeRequest(ProgrammeRequest {
                request: 7,
                programme,
            }),
        ),
    ]
}

fn programme_hash() -> [u8; 32] {
    let (_, _, _, m) = vectors().pop().expect("the programme request is last");
    sha256(&m.payload())
}

fn answers() -> Vec<(&'static str, u16, u16, Message)> {
    vec![
        (
            "denial",
            6,
            9,
            Message::Denial(Denial {
                request: 7,
                programme_hash: programme_hash(),
                outcome: "block".to_owned(),
                reasons: vec![DenialReason {
                    code: "CONCENTRATION_NOT_IN_LIBRARY".to_owned(),
                    ihe: Some(9037),
                    message: "Check the container label.".to_owned(),
                }],
            }),
        ),
        (
            "authorisation",
            8,
            11,
            Message::Authorisation(Authorisation {
                request: 8,
                programme_hash: [0x11; 32],
                token: [0xA5; 16],
                expires_ms: 1_795_230_120_000,
            }),
        ),
        (
            "library-chunk",
            12,
            20,
            Message::LibraryChunk(LibraryChunk {
                hash: [0x22; 32],
                offset: 512,
                data: b"{\"format\"".to_vec(),
            }),
        ),
    ]
}

fn wire(seq: u16, ack: u16, m: &Message) -> Vec<u8> {
    Frame {
        header: Header {
            version: 1,
            kind: m.kind() as u8,
            seq,
            ack,
        },
        payload: m.payload(),
    }
    .to_wire()
    .expect("vectors fit in a frame")
}

/// The hex block after `<!-- vector: NAME -->` in the document.
fn documented(doc: &str, name: &str) -> Vec<u8> {
    let marker = format!("<!-- vector: {name} -->");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/protocol.md has no {marker}"));
    let block = &doc[start + marker.len()..];
    let open = block.find("```").expect("a code block follows the marker");
    let body = &block[open + 3..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    let close = body.find("```").expect("the code block closes");
    let hex: String = body[..close]
        .lines()
        .map(|l| l.split_once(':').map_or(l, |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect();
    hex::decode(hex).unwrap_or_else(|e| panic!("{name}: bad hex in the document: {e}"))
}

#[test]
fn the_document_shows_exactly_the_bytes_we_send_and_read() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"))
        .expect("docs/protocol.md exists");
    let print = std::env::var_os("PRINT_VECTORS").is_some();
    for (name, seq, ack, m) in vectors().into_iter().chain(answers()) {
        let ours = wire(seq, ack, &m);
        if print {
            println!("{name}:");
            for (i, chunk) in ours.chunks(16).enumerate() {
                let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                println!("{:04x}: {}", i * 16, hex.join(" "));
            }
            continue;
        }
        assert_eq!(
            documented(&doc, name),
            ours,
            "{name}: document and encoder differ"
        );
        let mut codec = LinkCodec::default();
        let mut buf = BytesMut::from(&ours[..]);
        let packet = codec.decode(&mut buf).unwrap().expect("one frame");
        assert_eq!(packet.header.seq, seq);
        assert_eq!(packet.header.ack, ack);
        assert_eq!(packet.message.as_ref().ok(), Some(&m), "{name}");
    }
}
