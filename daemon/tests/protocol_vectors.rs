//! The byte-level worked examples of `docs/protocol.md`, checked both ways:
//! our encoder produces exactly the bytes the document shows, and our
//! decoder reads them back to the same message.

use bytes::BytesMut;
use pumpgw::link::message::{
    Alarm, AlarmPriority, Authorisation, Denial, DenialReason, Hello, LibraryChunk,
    ProgrammeRequest, PumpState, Status, Welcome,
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
                    ihe: Some(9018),
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

/// A frame whose stuffed form ends on a full 254-byte block, so that COBS
/// writes a final `01` block (section 3.3): a library chunk from offset 0
/// (whose CBOR `0` is the frame's last zero) with 243 bytes of data.
fn full_block_chunk() -> (&'static str, u16, u16, Message) {
    (
        "full-block",
        13,
        21,
        Message::LibraryChunk(LibraryChunk {
            hash: [0x33; 32],
            offset: 0,
            data: (0u8..243).map(|i| b'a' + i % 26).collect(),
        }),
    )
}

/// Section 7.10: a version 2 session (WELCOME itself framed in version 1).
fn version_2() -> Vec<(&'static str, u8, u16, u16, Message)> {
    vec![
        (
            "welcome-v2",
            1,
            1,
            1,
            Message::Welcome(Welcome {
                version: 2,
                gateway: "gw-bed-12".to_owned(),
                care_area: "adult-icu".to_owned(),
                library_version: None,
                library_hash: None,
                time_ms: 1_795_230_000_000,
                heartbeat_ms: 1000,
                supervision_ms: 3000,
                window: Some(8),
            }),
        ),
        (
            "alarm-v2",
            2,
            20,
            2,
            Message::Alarm(Alarm {
                record: 4711,
                id: 3,
                priority: AlarmPriority::High,
                condition: "occlusion".to_owned(),
                text: "Downstream occlusion".to_owned(),
                active: true,
                at_ms: 1_795_230_060_000,
            }),
        ),
        ("ack-v2", 2, 0, 20, Message::Ack),
    ]
}

fn frame(seq: u16, ack: u16, m: &Message) -> Frame {
    versioned(1, seq, ack, m)
}

fn versioned(version: u8, seq: u16, ack: u16, m: &Message) -> Frame {
    Frame {
        header: Header {
            version,
            kind: m.kind() as u8,
            seq,
            ack,
        },
        payload: m.payload(),
    }
}

fn wire(version: u8, seq: u16, ack: u16, m: &Message) -> Vec<u8> {
    versioned(version, seq, ack, m)
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
    for (name, version, seq, ack, m) in vectors()
        .into_iter()
        .chain(answers())
        .chain([full_block_chunk()])
        .map(|(name, seq, ack, m)| (name, 1, seq, ack, m))
        .chain(version_2())
    {
        let ours = wire(version, seq, ack, &m);
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
        assert_eq!(packet.header.version, version);
        assert_eq!(packet.header.seq, seq);
        assert_eq!(packet.header.ack, ack);
        assert_eq!(packet.message.as_ref().ok(), Some(&m), "{name}");
    }
}

/// COBS encoding exactly as Cheshire and Baker's paper gives it
/// (`StuffData`, IEEE/ACM Transactions on Networking 7(2), 1999, fig. 2),
/// transcribed here apart from our encoder, so the two can be compared.
fn paper_stuff(data: &[u8]) -> Vec<u8> {
    let mut dst = vec![0u8];
    let mut code_at = 0;
    let mut code = 1u8;
    let finish = |dst: &mut Vec<u8>, code: &mut u8, code_at: &mut usize| {
        dst[*code_at] = *code;
        *code_at = dst.len();
        dst.push(0);
        *code = 1;
    };
    for &b in data {
        if b == 0 {
            finish(&mut dst, &mut code, &mut code_at);
        } else {
            dst.push(b);
            code += 1;
            if code == 0xFF {
                finish(&mut dst, &mut code, &mut code_at);
            }
        }
    }
    // The paper's FinishBlock also opens a new block; the last one is not
    // written, so its placeholder goes.
    dst[code_at] = code;
    dst
}

/// The paper's `UnStuffData`: it writes the zero that every block shorter
/// than 254 bytes stands for, the last one included, so its output has one
/// byte more than the frame (the phantom zero), which the caller drops, as
/// a controller written from the paper does.
fn paper_unstuff(stuffed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < stuffed.len() {
        let code = stuffed[at];
        at += 1;
        for _ in 1..code {
            out.push(stuffed[at]);
            at += 1;
        }
        if code < 0xFF {
            out.push(0);
        }
    }
    out.pop();
    out
}

#[test]
fn frames_are_stuffed_exactly_as_the_paper_does_and_read_back_by_its_decoder() {
    let mut full_blocks = 0;
    let mut check = |frame: Frame| {
        let raw = frame.to_raw().expect("the frame fits");
        let ours = frame.to_wire().expect("the frame fits");
        let (stuffed, delimiter) = ours.split_at(ours.len() - 1);
        assert_eq!(delimiter, [0]);
        assert_eq!(stuffed, paper_stuff(&raw), "stuffed {} bytes", raw.len());
        assert_eq!(paper_unstuff(stuffed), raw, "unstuffed {} bytes", raw.len());
        // Our decoder takes both forms: with the final block and without
        // it (as the `cobs` crate and earlier gateways write it).
        let run = raw.iter().rev().take_while(|&&b| b != 0).count();
        if run > 0 && run % 254 == 0 {
            full_blocks += 1;
            assert_eq!(stuffed.last(), Some(&0x01));
            for form in [stuffed, &stuffed[..stuffed.len() - 1]] {
                assert_eq!(Frame::from_stuffed(form).expect("it decodes"), frame);
            }
        } else {
            assert_eq!(Frame::from_stuffed(stuffed).expect("it decodes"), frame);
        }
    };
    for (_, seq, ack, m) in vectors()
        .into_iter()
        .chain(answers())
        .chain([full_block_chunk()])
    {
        check(frame(seq, ack, &m));
    }
    // Every payload length, with a header that holds no zero: the runs
    // of 254, 508, 762 and 1016 bytes end on a full block.
    for len in 0..=pumpgw::link::frame::MAX_PAYLOAD_LEN {
        for fill in [0xABu8, 0x01] {
            check(Frame {
                header: Header {
                    version: 1,
                    kind: 0x22,
                    seq: 0x0101,
                    ack: 0x0101,
                },
                payload: vec![fill; len].into(),
            });
        }
    }
    assert!(
        full_blocks >= 5,
        "only {full_blocks} frames ended on a full block"
    );
}
