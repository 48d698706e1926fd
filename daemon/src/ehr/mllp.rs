//! MLLP framing (HL7's Minimal Lower Layer Protocol, as IHE PCD uses it
//! over TCP): each message is sent as `0x0B`, the message, `0x1C 0x0D`.
//! A `tokio_util` codec that takes one frame per call (several in one read
//! are each returned), refuses a frame past its limit without buffering
//! it, and drops bytes outside frames (counted, so they can be logged).

use bytes::{Buf as _, BufMut as _, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Starts a frame.
pub const START: u8 = 0x0B;
/// Ends a frame, followed by [`CR`].
pub const END: u8 = 0x1C;
/// After [`END`].
pub const CR: u8 = 0x0D;

/// Why the stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    /// A frame ran past the limit before it ended.
    #[error("an MLLP frame is longer than {limit} bytes")]
    TooLong {
        /// The limit.
        limit: usize,
    },
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The codec.
#[derive(Debug, Clone)]
pub struct Mllp {
    limit: usize,
    /// Bytes seen outside any frame, dropped.
    pub stray: u64,
    /// How far the current frame has been searched for its end.
    searched: usize,
}

impl Mllp {
    /// A codec taking frames of at most `limit` bytes (the message alone).
    pub fn new(limit: usize) -> Mllp {
        Mllp {
            limit,
            stray: 0,
            searched: 0,
        }
    }
}

impl Decoder for Mllp {
    type Item = BytesMut;
    type Error = MllpError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, MllpError> {
        // Anything before a start byte is outside a frame.
        match src.iter().position(|b| *b == START) {
            Some(0) => {}
            Some(at) => {
                self.stray += at as u64;
                src.advance(at);
                self.searched = 0;
            }
            None => {
                self.stray += src.len() as u64;
                src.clear();
                self.searched = 0;
                return Ok(None);
            }
        }
        // Search forward from where the last call stopped, so that a slow
        // frame is not rescanned and two frames in one read stay two.
        let from = self.searched.max(1);
        let end = src
            .get(from..)
            .unwrap_or_default()
            .windows(2)
            .position(|w| w == [END, CR])
            .map(|i| i + from);
        let Some(end) = end else {
            if src.len() - 1 > self.limit + 1 {
                return Err(MllpError::TooLong { limit: self.limit });
            }
            // The last byte may be the END of an END CR pair.
            self.searched = src.len().saturating_sub(1).max(1);
            src.reserve(4096.min(self.limit));
            return Ok(None);
        };
        self.searched = 0;
        let mut frame = src.split_to(end + 2);
        frame.advance(1);
        frame.truncate(frame.len() - 2);
        if frame.len() > self.limit {
            return Err(MllpError::TooLong { limit: self.limit });
        }
        Ok(Some(frame))
    }
}

impl Encoder<&[u8]> for Mllp {
    type Error = MllpError;

    fn encode(&mut self, message: &[u8], dst: &mut BytesMut) -> Result<(), MllpError> {
        dst.reserve(message.len() + 3);
        dst.put_u8(START);
        dst.put_slice(message);
        dst.put_u8(END);
        dst.put_u8(CR);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(m: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        Mllp::new(100).encode(m, &mut b).unwrap();
        b.to_vec()
    }

    #[test]
    fn two_frames_in_one_read_are_two_messages() {
        let mut c = Mllp::new(100);
        let mut src = BytesMut::from(&[framed(b"MSH|one"), framed(b"MSH|two")].concat()[..]);
        assert_eq!(&c.decode(&mut src).unwrap().unwrap()[..], b"MSH|one");
        assert_eq!(&c.decode(&mut src).unwrap().unwrap()[..], b"MSH|two");
        assert!(c.decode(&mut src).unwrap().is_none());
        assert_eq!(c.stray, 0);
    }

    #[test]
    fn a_frame_split_anywhere_arrives_whole() {
        let whole = framed(b"MSH|^~\\&|A\rPID|1\r");
        for cut in 0..=whole.len() {
            let mut c = Mllp::new(100);
            let mut src = BytesMut::from(&whole[..cut]);
            let first = c.decode(&mut src).unwrap();
            src.extend_from_slice(&whole[cut..]);
            let got = match first {
                Some(f) => f,
                None => c.decode(&mut src).unwrap().expect("whole now"),
            };
            assert_eq!(&got[..], b"MSH|^~\\&|A\rPID|1\r", "cut at {cut}");
        }
    }

    #[test]
    fn bytes_outside_frames_are_dropped_and_counted() {
        let mut c = Mllp::new(100);
        let mut src =
            BytesMut::from(&[b"junk".to_vec(), framed(b"MSH|x"), b"\r\n".to_vec()].concat()[..]);
        assert_eq!(&c.decode(&mut src).unwrap().unwrap()[..], b"MSH|x");
        assert!(c.decode(&mut src).unwrap().is_none());
        assert_eq!(c.stray, 6);
    }

    #[test]
    fn a_frame_past_the_limit_is_refused_before_it_ends() {
        let mut c = Mllp::new(10);
        let mut src = BytesMut::from(&[START][..]);
        src.extend_from_slice(&[b'a'; 20]);
        assert!(matches!(
            c.decode(&mut src),
            Err(MllpError::TooLong { limit: 10 })
        ));
        let mut c = Mllp::new(10);
        let mut src = BytesMut::from(&framed(b"0123456789")[..]);
        assert_eq!(c.decode(&mut src).unwrap().unwrap().len(), 10);
        let mut src = BytesMut::from(&framed(b"0123456789x")[..]);
        assert!(c.decode(&mut src).is_err());
    }
}
