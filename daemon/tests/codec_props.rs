//! Property tests of the pump-link codec over arbitrary byte streams: it
//! never panics or errors on any input, never yields a frame that was not
//! sent, and finds every intact frame that follows a delimiter, whatever
//! garbage surrounds it and however the stream is cut into reads.
//!
//! The coverage-guided fuzzer (`daemon/fuzz`, cargo-fuzz) runs the same
//! decoder on inputs it breeds; CI runs both.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use pumpgw::link::frame::MAX_PAYLOAD_LEN;
use pumpgw::link::{Frame, Header, LinkCodec, Packet};
use tokio_util::codec::Decoder;

fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> (Vec<Packet>, LinkCodec) {
    let mut codec = LinkCodec::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    for cut in cuts {
        buf.extend_from_slice(&bytes[at..cut.max(at)]);
        at = cut.max(at);
        while let Some(p) = codec
            .decode(&mut buf)
            .expect("the codec never fails on input")
        {
            out.push(p);
        }
    }
    while let Some(p) = codec
        .decode_eof(&mut buf)
        .expect("the codec never fails at EOF")
    {
        out.push(p);
    }
    (out, codec)
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        any::<u8>(),
        1u16..,
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(kind, seq, ack, payload)| Frame {
            header: Header {
                version: 1,
                kind,
                seq,
                ack,
            },
            payload: Bytes::from(payload),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096),
                                   cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let (packets, codec) = decode_in_pieces(&bytes, &cuts);
        let s = codec.stats().snapshot();
        prop_assert_eq!(s.frames_in, packets.len() as u64);
        prop_assert_eq!(s.bytes_in, bytes.len() as u64);
    }

    #[test]
    fn frames_are_found_in_garbage(garbage in proptest::collection::vec(
                                       proptest::collection::vec(any::<u8>(), 0..200), 1..5),
                                   frames in proptest::collection::vec(frame(), 1..5),
                                   cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        // garbage, 0x00, frame, garbage, 0x00, frame, ...: each frame follows
        // a delimiter, so whatever the garbage, it must come through intact.
        let mut stream = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            stream.extend_from_slice(&garbage[i % garbage.len()]);
            stream.push(0);
            stream.extend(f.to_wire().expect("payloads are under the limit"));
        }
        let (packets, _) = decode_in_pieces(&stream, &cuts);
        let headers: Vec<Header> = packets.iter().map(|p| p.header).collect();
        for f in &frames {
            prop_assert!(headers.contains(&f.header), "lost {:?}", f.header);
        }
    }

    #[test]
    fn oversize_runs_are_dropped_and_counted(len in MAX_PAYLOAD_LEN + 100..8000usize,
                                             fill in 1u8..) {
        let mut stream = vec![fill; len];
        stream.push(0);
        let good = Frame {
            header: Header { version: 1, kind: 4, seq: 1, ack: 0 },
            payload: Bytes::new(),
        };
        stream.extend(good.to_wire().expect("empty payload"));
        let (packets, codec) = decode_in_pieces(&stream, &[]);
        prop_assert_eq!(packets.len(), 1);
        prop_assert_eq!(packets[0].header, good.header);
        prop_assert_eq!(codec.stats().snapshot().oversize, 1);
    }
}
