//! The byte-stream side of the pump link: a `tokio_util` codec that cuts the
//! stream at 0x00 delimiters, unstuffs, checks the CRC and decodes the
//! message, counting everything it throws away.
//!
//! It never fails the stream for bad input: garbage, oversize runs, bad
//! stuffing, bad CRCs are counted and skipped, and decoding resumes at the
//! next delimiter. Only I/O errors end a stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::frame::{DELIMITER, Frame, FrameError, Header, MAX_ENCODED_LEN};
use super::message::{Message, MessageError};

/// A frame that passed its CRC, with its payload decoded (or why not).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The header.
    pub header: Header,
    /// The message, or why the payload is not one.
    pub message: Result<Message, MessageError>,
    /// The payload bytes as received (a programme's hash is over these).
    pub payload: bytes::Bytes,
}

/// Counters of one link, shared with whoever reports on it.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Frames decoded with a good CRC.
    pub frames_in: AtomicU64,
    /// Frames written.
    pub frames_out: AtomicU64,
    /// Bytes read.
    pub bytes_in: AtomicU64,
    /// Bytes written.
    pub bytes_out: AtomicU64,
    /// Frames whose CRC did not match.
    pub crc_errors: AtomicU64,
    /// Frames with bad stuffing or shorter than a header.
    pub framing_errors: AtomicU64,
    /// Runs of bytes longer than the largest frame.
    pub oversize: AtomicU64,
    /// Intact frames whose payload did not parse or whose type is unknown.
    pub parse_errors: AtomicU64,
    /// Sequenced frames received twice (counted by the endpoint).
    pub duplicates: AtomicU64,
    /// Frames sent again for want of an acknowledgement (by the endpoint).
    pub retransmissions: AtomicU64,
    /// Sequenced frames not acknowledged because the link was not up
    /// (before the handshake or after it was declared down).
    pub ignored: AtomicU64,
    /// Version 2: frames dropped unacknowledged because one before them
    /// was missing (the sender resends them in order).
    pub out_of_order: AtomicU64,
}

/// A point-in-time copy of [`LinkStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    /// See [`LinkStats::frames_in`].
    pub frames_in: u64,
    /// See [`LinkStats::frames_out`].
    pub frames_out: u64,
    /// See [`LinkStats::bytes_in`].
    pub bytes_in: u64,
    /// See [`LinkStats::bytes_out`].
    pub bytes_out: u64,
    /// See [`LinkStats::crc_errors`].
    pub crc_errors: u64,
    /// See [`LinkStats::framing_errors`].
    pub framing_errors: u64,
    /// See [`LinkStats::oversize`].
    pub oversize: u64,
    /// See [`LinkStats::parse_errors`].
    pub parse_errors: u64,
    /// See [`LinkStats::duplicates`].
    pub duplicates: u64,
    /// See [`LinkStats::retransmissions`].
    pub retransmissions: u64,
    /// See [`LinkStats::ignored`].
    pub ignored: u64,
    /// See [`LinkStats::out_of_order`].
    pub out_of_order: u64,
}

impl LinkStats {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> LinkCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkCounters {
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            crc_errors: get(&self.crc_errors),
            framing_errors: get(&self.framing_errors),
            oversize: get(&self.oversize),
            parse_errors: get(&self.parse_errors),
            duplicates: get(&self.duplicates),
            retransmissions: get(&self.retransmissions),
            ignored: get(&self.ignored),
            out_of_order: get(&self.out_of_order),
        }
    }
}

impl LinkCounters {
    /// Everything thrown away on receive.
    pub fn rejected(&self) -> u64 {
        self.crc_errors + self.framing_errors + self.oversize + self.parse_errors
    }
}

/// The pump-link codec.
#[derive(Debug, Default)]
pub struct LinkCodec {
    stats: Arc<LinkStats>,
    /// Inside a run longer than any frame: drop bytes until a delimiter.
    discarding: bool,
    /// How far `src` has been searched for a delimiter already.
    scanned: usize,
}

impl LinkCodec {
    /// A codec counting into `stats`.
    pub fn new(stats: Arc<LinkStats>) -> Self {
        LinkCodec {
            stats,
            discarding: false,
            scanned: 0,
        }
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<LinkStats> {
        &self.stats
    }
}

impl Decoder for LinkCodec {
    type Item = Packet;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, std::io::Error> {
        loop {
            let found = src[self.scanned..]
                .iter()
                .position(|&b| b == DELIMITER)
                .map(|p| p + self.scanned);
            let Some(end) = found else {
                self.scanned = src.len();
                if !self.discarding && src.len() > MAX_ENCODED_LEN {
                    LinkStats::bump(&self.stats.oversize);
                    self.discarding = true;
                }
                if self.discarding {
                    self.stats
                        .bytes_in
                        .fetch_add(src.len() as u64, Ordering::Relaxed);
                    src.clear();
                    self.scanned = 0;
                }
                return Ok(None);
            };
            let chunk = src.split_to(end);
            src.advance(1);
            self.scanned = 0;
            self.stats
                .bytes_in
                .fetch_add(chunk.len() as u64 + 1, Ordering::Relaxed);
            if std::mem::take(&mut self.discarding) || chunk.is_empty() {
                // The tail of an oversize run, or an idle delimiter.
                continue;
            }
            match Frame::from_stuffed(&chunk) {
                Ok(frame) => {
                    LinkStats::bump(&self.stats.frames_in);
                    let message = Message::decode(frame.header.kind, &frame.payload);
                    if message.is_err() {
                        LinkStats::bump(&self.stats.parse_errors);
                    }
                    return Ok(Some(Packet {
                        header: frame.header,
                        message,
                        payload: frame.payload,
                    }));
                }
                Err(FrameError::Crc { .. }) => LinkStats::bump(&self.stats.crc_errors),
                Err(FrameError::Oversize) => LinkStats::bump(&self.stats.oversize),
                Err(FrameError::Stuffing | FrameError::Short(_)) => {
                    LinkStats::bump(&self.stats.framing_errors);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, std::io::Error> {
        // A partial frame at hang-up is lost, like any frame cut by noise.
        let packet = self.decode(buf)?;
        if packet.is_none() && !buf.is_empty() {
            LinkStats::bump(&self.stats.framing_errors);
            self.stats
                .bytes_in
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            buf.clear();
            self.scanned = 0;
        }
        Ok(packet)
    }
}

impl Encoder<&Frame> for LinkCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        let before = dst.len();
        frame
            .encode_into(dst)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        LinkStats::bump(&self.stats.frames_out);
        self.stats
            .bytes_out
            .fetch_add((dst.len() - before) as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::message::TimeSync;

    fn frame(seq: u16) -> Frame {
        let m = Message::TimeSync(TimeSync { time_ms: 1 });
        Frame {
            header: Header {
                version: 1,
                kind: m.kind() as u8,
                seq,
                ack: 0,
            },
            payload: m.payload(),
        }
    }

    fn decode_all(codec: &mut LinkCodec, bytes: &[u8]) -> Vec<Packet> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(p) = codec.decode(&mut buf).unwrap() {
            out.push(p);
        }
        out
    }

    #[test]
    fn garbage_before_a_delimiter_costs_one_framing_error() {
        let mut codec = LinkCodec::default();
        let mut bytes = vec![0x55, 0x12, 0x34, 0x00];
        bytes.extend(frame(1).to_wire().unwrap());
        let got = decode_all(&mut codec, &bytes);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header.seq, 1);
        assert_eq!(codec.stats().snapshot().rejected(), 1);
    }

    #[test]
    fn oversize_run_is_dropped_and_decoding_resumes() {
        let mut codec = LinkCodec::default();
        let mut bytes = vec![0x41; MAX_ENCODED_LEN * 3];
        bytes.push(0);
        bytes.extend(frame(2).to_wire().unwrap());
        // Feed in small pieces, as a serial port would.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in bytes.chunks(17) {
            buf.extend_from_slice(piece);
            while let Some(p) = codec.decode(&mut buf).unwrap() {
                got.push(p);
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(codec.stats().snapshot().oversize, 1);
        assert!(buf.len() < MAX_ENCODED_LEN);
    }

    #[test]
    fn a_corrupted_frame_is_counted_and_the_next_one_decodes() {
        let mut codec = LinkCodec::default();
        let mut bad = frame(3).to_wire().unwrap();
        bad[4] ^= 0x10;
        if bad[4] == 0 {
            bad[4] = 0x99;
        }
        let mut bytes = bad;
        bytes.extend(frame(4).to_wire().unwrap());
        let got = decode_all(&mut codec, &bytes);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header.seq, 4);
        let s = codec.stats().snapshot();
        assert_eq!(s.crc_errors + s.framing_errors, 1);
    }

    #[test]
    fn unknown_type_is_a_parse_error_with_its_header() {
        let mut codec = LinkCodec::default();
        let f = Frame {
            header: Header {
                version: 1,
                kind: 0x7F,
                seq: 5,
                ack: 0,
            },
            payload: bytes::Bytes::new(),
        };
        let got = decode_all(&mut codec, &f.to_wire().unwrap());
        assert_eq!(got[0].header.seq, 5);
        assert_eq!(got[0].message, Err(MessageError::UnknownType(0x7F)));
        assert_eq!(codec.stats().snapshot().parse_errors, 1);
    }
}
