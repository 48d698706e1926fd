//! Fuzz target: any byte stream, cut into reads of any sizes, through the
//! pump-link decoder, and every intact frame's payload through the message
//! decoder. It must never panic, and what it counts must add up.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pumpgw::link::{LinkCodec, Message};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut codec = LinkCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = 0u64;
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        while let Some(p) = codec.decode(&mut buf).expect("decoding never fails") {
            frames += 1;
            // Re-decoding the payload by type must agree with the codec.
            let again = Message::decode(p.header.kind, &p.payload);
            assert_eq!(again.is_ok(), p.message.is_ok());
        }
    }
    while let Some(_p) = codec.decode_eof(&mut buf).expect("EOF never fails") {
        frames += 1;
    }
    let s = codec.stats().snapshot();
    assert_eq!(s.frames_in, frames);
    assert_eq!(s.bytes_in, stream.len() as u64);
});
