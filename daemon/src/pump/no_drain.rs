//! Writing to a serial port without waiting for the bytes to leave it.
//!
//! `tokio_serial`'s `poll_flush` calls `tcdrain`, which blocks the calling
//! thread until the UART has sent everything queued: up to 89 ms for the
//! largest frame at 115200 baud. A session flushes after every turn of its
//! loop, and the daemon's tasks share one thread, so every other pump, the
//! core and the watchdog would wait on each port's transmission. The bytes
//! are the kernel's once `write` returns and go out in order; nothing here
//! needs to know when they have left, so [`NoDrain`] makes flushing a no-op.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A port whose flush returns at once (see the module).
#[derive(Debug)]
pub struct NoDrain<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for NoDrain<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for NoDrain<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A stream whose flush never finishes, as `tcdrain` on a port whose
    /// line is held would not.
    struct HeldLine(tokio::io::DuplexStream);

    impl AsyncWrite for HeldLine {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn written_bytes_arrive_and_a_flush_never_waits_for_the_line() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut port = NoDrain(HeldLine(ours));
        port.write_all(b"frame\0").await.expect("written");
        tokio::time::timeout(std::time::Duration::from_secs(1), port.flush())
            .await
            .expect("the flush does not wait for the line")
            .expect("and does not fail");
        let mut got = [0u8; 6];
        theirs.read_exact(&mut got).await.expect("the bytes arrive");
        assert_eq!(&got, b"frame\0");
    }
}
