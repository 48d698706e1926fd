//! One frame of the pump link: the fixed header, the payload and the CRC,
//! and how they are stuffed (COBS) and delimited (0x00) on the wire.
//!
//! The layout is specified byte by byte in `docs/protocol.md` section 3;
//! keep the two in step.

use bytes::{BufMut, Bytes, BytesMut};
use crc::{CRC_32_ISCSI, Crc};

/// The frame delimiter. COBS guarantees it appears nowhere else.
pub const DELIMITER: u8 = 0x00;
/// Version, type, sequence (2), acknowledgement (2).
pub const HEADER_LEN: usize = 6;
/// CRC-32C, big-endian.
pub const CRC_LEN: usize = 4;
/// Largest frame before stuffing: header + payload + CRC.
pub const MAX_FRAME_LEN: usize = 1024;
/// Largest payload.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - HEADER_LEN - CRC_LEN;
/// Largest frame after COBS, without its delimiter (one overhead byte per
/// 254 bytes, rounded up, plus the first code byte).
pub const MAX_ENCODED_LEN: usize = MAX_FRAME_LEN + MAX_FRAME_LEN.div_ceil(254) + 1;

/// Whether COBS's last block of `raw` is a full one (254 bytes with no
/// zero after them): the run after the last zero is a non-zero multiple
/// of 254 bytes.
fn ends_on_full_block(raw: &[u8]) -> bool {
    let run = raw.iter().rev().take_while(|&&b| b != 0).count();
    run > 0 && run % 254 == 0
}

/// CRC-32C (Castagnoli): poly 0x1EDC6F41, init 0xFFFFFFFF, reflected in
/// and out, xor-out 0xFFFFFFFF, check value 0xE3069283 over "123456789".
pub const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// The fixed six bytes at the front of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version the frame is written in.
    pub version: u8,
    /// Message type (`docs/protocol.md` section 6).
    pub kind: u8,
    /// Sequence number: 1..=65535 for every message but ACK; 0 for ACK.
    pub seq: u16,
    /// The last sequence number this side accepted from the other; 0 when
    /// none yet.
    pub ack: u16,
}

/// A frame: header and payload, CRC checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// The CBOR payload (empty for ACK and HEARTBEAT).
    pub payload: Bytes,
}

/// Why bytes between two delimiters are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// More bytes than the largest frame before a delimiter.
    #[error("frame longer than {MAX_ENCODED_LEN} bytes")]
    Oversize,
    /// Not valid COBS (a code byte points past the end, or a zero inside).
    #[error("invalid COBS stuffing")]
    Stuffing,
    /// Fewer bytes than a header and a CRC.
    #[error("frame of {0} bytes is shorter than header and CRC")]
    Short(usize),
    /// The CRC does not match.
    #[error("CRC mismatch: frame says {said:#010x}, bytes give {computed:#010x}")]
    Crc {
        /// The CRC in the frame.
        said: u32,
        /// The CRC computed over the frame.
        computed: u32,
    },
}

/// Why a frame cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payload of {0} bytes is over the {MAX_PAYLOAD_LEN}-byte limit")]
pub struct PayloadTooLarge(pub usize);

impl Frame {
    /// The frame's bytes before stuffing: header, payload, CRC.
    pub fn to_raw(&self) -> Result<Vec<u8>, PayloadTooLarge> {
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(PayloadTooLarge(self.payload.len()));
        }
        let mut raw = Vec::with_capacity(HEADER_LEN + self.payload.len() + CRC_LEN);
        raw.push(self.header.version);
        raw.push(self.header.kind);
        raw.extend_from_slice(&self.header.seq.to_be_bytes());
        raw.extend_from_slice(&self.header.ack.to_be_bytes());
        raw.extend_from_slice(&self.payload);
        let crc = CRC32C.checksum(&raw);
        raw.extend_from_slice(&crc.to_be_bytes());
        Ok(raw)
    }

    /// Stuffs the frame and appends the delimiter, ready for the wire.
    pub fn encode_into(&self, dst: &mut BytesMut) -> Result<(), PayloadTooLarge> {
        let raw = self.to_raw()?;
        let start = dst.len();
        dst.resize(start + cobs::max_encoding_length(raw.len()), 0);
        let written = cobs::encode(&raw, &mut dst[start..]);
        dst.truncate(start + written);
        if ends_on_full_block(&raw) {
            // The paper's encoder closes a frame whose last block is a full
            // 254-byte one with a final `01` block; the `cobs` crate leaves
            // it out. A decoder written from the paper needs it (it drops
            // the phantom zero the final block stands for), and ours
            // accepts both (docs/protocol.md section 3.3).
            dst.put_u8(0x01);
        }
        dst.put_u8(DELIMITER);
        Ok(())
    }

    /// The frame as wire bytes (stuffed, with its delimiter).
    pub fn to_wire(&self) -> Result<Vec<u8>, PayloadTooLarge> {
        let mut out = BytesMut::new();
        self.encode_into(&mut out)?;
        Ok(out.to_vec())
    }

    /// Parses the bytes found between two delimiters.
    pub fn from_stuffed(stuffed: &[u8]) -> Result<Frame, FrameError> {
        if stuffed.len() > MAX_ENCODED_LEN {
            return Err(FrameError::Oversize);
        }
        let mut raw = vec![0; stuffed.len()];
        let report = cobs::decode(stuffed, &mut raw).map_err(|_| FrameError::Stuffing)?;
        // The decoder stops at an embedded zero; a frame must use all its bytes.
        if report.parsed_size() < stuffed.len() {
            return Err(FrameError::Stuffing);
        }
        raw.truncate(report.frame_size());
        Frame::from_raw(&raw)
    }

    /// Parses an unstuffed frame: checks the CRC, splits the header.
    pub fn from_raw(raw: &[u8]) -> Result<Frame, FrameError> {
        if raw.len() > MAX_FRAME_LEN {
            return Err(FrameError::Oversize);
        }
        if raw.len() < HEADER_LEN + CRC_LEN {
            return Err(FrameError::Short(raw.len()));
        }
        let (body, crc) = raw.split_at(raw.len() - CRC_LEN);
        let said = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = CRC32C.checksum(body);
        if said != computed {
            return Err(FrameError::Crc { said, computed });
        }
        Ok(Frame {
            header: Header {
                version: body[0],
                kind: body[1],
                seq: u16::from_be_bytes([body[2], body[3]]),
                ack: u16::from_be_bytes([body[4], body[5]]),
            },
            payload: Bytes::copy_from_slice(&body[HEADER_LEN..]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn round_trip() {
        let frame = Frame {
            header: Header {
                version: 1,
                kind: 0x10,
                seq: 258,
                ack: 7,
            },
            payload: Bytes::from_static(&[0, 1, 0, 0, 2]),
        };
        let wire = frame.to_wire().unwrap();
        assert_eq!(wire.last(), Some(&DELIMITER));
        assert!(!wire[..wire.len() - 1].contains(&0));
        assert_eq!(Frame::from_stuffed(&wire[..wire.len() - 1]).unwrap(), frame);
    }

    #[test]
    fn largest_frame_fits_the_encoded_limit() {
        let frame = Frame {
            header: Header {
                version: 1,
                kind: 0x22,
                seq: 1,
                ack: 0,
            },
            payload: Bytes::from(vec![0xAB; MAX_PAYLOAD_LEN]),
        };
        let wire = frame.to_wire().unwrap();
        assert!(wire.len() - 1 <= MAX_ENCODED_LEN);
        let too_big = Frame {
            payload: Bytes::from(vec![0; MAX_PAYLOAD_LEN + 1]),
            ..frame
        };
        assert_eq!(too_big.to_wire(), Err(PayloadTooLarge(MAX_PAYLOAD_LEN + 1)));
    }

    #[test]
    fn one_flipped_bit_is_caught() {
        let frame = Frame {
            header: Header {
                version: 1,
                kind: 0x04,
                seq: 9,
                ack: 3,
            },
            payload: Bytes::new(),
        };
        let mut raw = frame.to_raw().unwrap();
        raw[3] ^= 0x01;
        assert!(matches!(Frame::from_raw(&raw), Err(FrameError::Crc { .. })));
    }
}
