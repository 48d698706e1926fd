//! The EHR's way in (`[ehr] listen`): an MLLP listener on TCP for IHE
//! PCD-03 orders. One task per connection; each message gets its answers
//! on the same connection, in order: `ACK^O15` at once, then `RRG^O16`
//! with the gateway core's result (the pump is one of this bed's, the
//! order is within the library, it is logged and open: `super::intake`).
//! A message that cannot be read is answered with a precise refusal and
//! the connection goes on; one past the size limit ends the connection
//! (the stream cannot be trusted after it). Nothing is kept of a refused
//! order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt as _, StreamExt as _};
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::answer::{self, Answering, Refusal};
use super::er7::{Message, Separators};
use super::intake::OrderIn;
use super::mllp::{Mllp, MllpError};
use super::order::{Order, hl7_error};

/// Where the listener sends orders, and how it answers.
#[derive(Clone)]
pub struct Ehr {
    /// This gateway's id (MSH-3 of the answers).
    pub gateway: String,
    /// The bed's care area.
    pub care_area: String,
    /// The gateway's core: it takes (logs and opens) or refuses each order.
    pub core: mpsc::Sender<OrderIn>,
    /// The longest message taken.
    pub max_message: usize,
    /// Numbers the answers (MSH-10).
    pub answers: Arc<AtomicU64>,
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the listener until `cancel`, then lets each connection finish
/// the message it is answering. With `tls`, every connection must first
/// complete a handshake with a client certificate the configured CA
/// signed; one that does not is closed, and the gateway goes on.
pub async fn serve(
    listener: TcpListener,
    ehr: Ehr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    cancel: CancellationToken,
) {
    info!(address = ?listener.local_addr().ok(), tls = tls.is_some(), "EHR listener (MLLP) up");
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    info!(peer = %peer, "EHR connected");
                    // Answers go out as soon as written: with Nagle's
                    // algorithm the second answer waited for the engine's
                    // delayed ACK (about 40 ms).
                    if let Err(e) = stream.set_nodelay(true) {
                        warn!(peer = %peer, error = %e, "cannot set TCP_NODELAY; answers may wait");
                    }
                    let (ehr, cancel) = (ehr.clone(), cancel.clone());
                    match tls.clone() {
                        None => connections.spawn(connection(stream, peer, ehr, cancel)),
                        Some(acceptor) => connections.spawn(async move {
                            match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => connection(stream, peer, ehr, cancel).await,
                                Ok(Err(e)) => warn!(peer = %peer, error = %e, "EHR TLS handshake refused"),
                                Err(_) => warn!(peer = %peer, "EHR TLS handshake not finished in time"),
                            }
                        }),
                    };
                }
                Err(e) => {
                    warn!(error = %e, "EHR accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    while connections.join_next().await.is_some() {}
    info!("EHR listener stopped");
}

async fn connection<S>(stream: S, peer: SocketAddr, ehr: Ehr, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = Framed::new(stream, Mllp::new(ehr.max_message));
    loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => break,
            frame = framed.next() => frame,
        };
        let answers = match frame {
            None => break,
            Some(Err(MllpError::Io(e))) => {
                warn!(peer = %peer, error = %e, "EHR connection failed");
                break;
            }
            Some(Err(MllpError::TooLong { limit })) => {
                warn!(peer = %peer, limit, "EHR message too long; closing the connection");
                let refusal = Refusal {
                    location: None,
                    hl7: 207,
                    piv: None,
                    message: format!("the message is longer than {limit} bytes"),
                };
                let _ = framed
                    .send(
                        answer::accept(&empty(), &answering(&ehr), Some(&refusal))
                            .to_er7()
                            .as_bytes(),
                    )
                    .await;
                // Closed gently, so that the refusal is not lost to a reset:
                // no more from us, and the rest of theirs read and dropped.
                drain(framed.into_inner()).await;
                return;
            }
            Some(Ok(bytes)) => answers_to(&bytes, &ehr).await,
        };
        // Both answers in one write.
        for a in answers {
            if let Err(e) = framed.feed(a.to_er7().as_bytes()).await {
                warn!(peer = %peer, error = %e, "cannot answer the EHR");
                return;
            }
        }
        if let Err(e) = framed.flush().await {
            warn!(peer = %peer, error = %e, "cannot answer the EHR");
            return;
        }
    }
    if framed.codec().stray > 0 {
        warn!(peer = %peer, bytes = framed.codec().stray, "EHR sent bytes outside MLLP frames; dropped");
    }
}

/// Says no more, then reads and drops what the peer still sends (at most
/// 5 s), then closes.
async fn drain<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let _ = stream.shutdown().await;
    let mut sink = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

fn empty() -> Message {
    Message {
        separators: Separators::default(),
        segments: Vec::new(),
    }
}

fn answering(ehr: &Ehr) -> Answering {
    let n = ehr.answers.fetch_add(1, Ordering::Relaxed) + 1;
    Answering {
        application: ehr.gateway.clone(),
        facility: ehr.care_area.clone(),
        control_id: format!("{}-{n}", ehr.gateway),
        at: time::OffsetDateTime::now_utc(),
    }
}

/// The answers to one message, in the order they are sent.
pub async fn answers_to(bytes: &[u8], ehr: &Ehr) -> Vec<Message> {
    let message = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "EHR message refused: not readable as HL7");
            let refusal = Refusal {
                location: None,
                hl7: hl7_error::SEGMENT_SEQUENCE,
                piv: None,
                message: e.to_string(),
            };
            return vec![answer::accept(&empty(), &answering(ehr), Some(&refusal))];
        }
    };
    match Order::read(&message) {
        // Not an order this gateway takes at all: refused on receipt.
        Err(e) if e.code >= hl7_error::UNSUPPORTED_MESSAGE_TYPE => {
            warn!(error = %e, "EHR message refused");
            vec![answer::accept(
                &message,
                &answering(ehr),
                Some(&Refusal::from(&e)),
            )]
        }
        Err(e) => {
            warn!(error = %e, "EHR order refused");
            vec![
                answer::accept(&message, &answering(ehr), None),
                answer::result(&message, &answering(ehr), Some(&Refusal::from(&e))),
            ]
        }
        Ok(order) => {
            let refusal = take(order, &message, bytes, ehr).await;
            if let Some(r) = &refusal {
                warn!(reason = %r.message, "EHR order refused");
            }
            vec![
                answer::accept(&message, &answering(ehr), None),
                answer::result(&message, &answering(ehr), refusal.as_ref()),
            ]
        }
    }
}

/// Hands the order to the core and waits for its word.
async fn take(order: Order, message: &Message, bytes: &[u8], ehr: &Ehr) -> Option<Refusal> {
    let (reply, answer) = oneshot::channel();
    let o = OrderIn {
        order,
        kept: super::order::minimised(message),
        hash: hex::encode(crate::link::sha256(bytes)),
        reply,
    };
    let unavailable = || Refusal {
        location: None,
        hl7: 207,
        piv: None,
        message: format!("gateway {} is stopping; send the order again", ehr.gateway),
    };
    if ehr.core.send(o).await.is_err() {
        return Some(unavailable());
    }
    answer.await.unwrap_or_else(|_| Some(unavailable()))
}
