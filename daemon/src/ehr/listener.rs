//! The EHR's way in (`[ehr] listen`): an MLLP listener on TCP for IHE
//! PCD-03 orders. One task per connection; each message gets its answers
//! on the same connection, in order: `ACK^O15` at once, then `RRG^O16`
//! with the result of the checks here (the pump is one of this bed's, the
//! drug is in the active library for the bed's care area). A message that
//! cannot be read is answered with a precise refusal and the connection
//! goes on; one past the size limit ends the connection (the stream cannot
//! be trusted after it). Nothing is kept of a refused order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::answer::{self, Answering, Refusal};
use super::er7::{Message, Separators};
use super::mllp::{Mllp, MllpError};
use super::order::{Order, hl7_error};
use crate::gateway::Snapshot;
use crate::library::ActiveLibrary;

/// What the listener checks orders against.
#[derive(Clone)]
pub struct Ehr {
    /// This gateway's id (MSH-3 of the answers).
    pub gateway: String,
    /// The bed's care area.
    pub care_area: String,
    /// The bed's pumps, as the core last published them.
    pub view: watch::Receiver<Snapshot>,
    /// The active drug library.
    pub library: watch::Receiver<Option<Arc<ActiveLibrary>>>,
    /// The longest message taken.
    pub max_message: usize,
    /// Numbers the answers (MSH-10).
    pub answers: Arc<AtomicU64>,
    /// The event log: an order is answered `AA` only once it is logged.
    pub writer: crate::store::Writer,
}

/// Serves the listener until `cancel`, then lets each connection finish
/// the message it is answering.
pub async fn serve(listener: TcpListener, ehr: Ehr, cancel: CancellationToken) {
    info!(address = ?listener.local_addr().ok(), "EHR listener (MLLP) up");
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    info!(peer = %peer, "EHR connected");
                    connections.spawn(connection(stream, ehr.clone(), cancel.clone()));
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

async fn connection(stream: TcpStream, ehr: Ehr, cancel: CancellationToken) {
    let peer = stream.peer_addr().ok();
    // Answers go out as soon as written: with Nagle's algorithm the
    // second answer waited for the engine's delayed ACK (about 40 ms).
    if let Err(e) = stream.set_nodelay(true) {
        warn!(peer = ?peer, error = %e, "cannot set TCP_NODELAY; answers may wait");
    }
    let mut framed = Framed::new(stream, Mllp::new(ehr.max_message));
    loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => break,
            frame = framed.next() => frame,
        };
        let answers = match frame {
            None => break,
            Some(Err(MllpError::Io(e))) => {
                warn!(peer = ?peer, error = %e, "EHR connection failed");
                break;
            }
            Some(Err(MllpError::TooLong { limit })) => {
                warn!(peer = ?peer, limit, "EHR message too long; closing the connection");
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
                warn!(peer = ?peer, error = %e, "cannot answer the EHR");
                return;
            }
        }
        if let Err(e) = framed.flush().await {
            warn!(peer = ?peer, error = %e, "cannot answer the EHR");
            return;
        }
    }
    if framed.codec().stray > 0 {
        warn!(peer = ?peer, bytes = framed.codec().stray, "EHR sent bytes outside MLLP frames; dropped");
    }
}

/// Says no more, then reads and drops what the peer still sends (at most
/// 5 s), then closes.
async fn drain(mut stream: TcpStream) {
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
            let refusal = match check(&order, ehr) {
                Err(refused) => Some(refused),
                Ok((port, library_version)) => log(&order, bytes, port, library_version, ehr).await,
            };
            if let Some(r) = &refusal {
                warn!(order = %order.placer, pump = %order.pump, drug = %order.drug.text, verdict = "refused", reason = %r.message, "EHR order");
            } else {
                info!(order = %order.placer, pump = %order.pump, drug = %order.drug.text, verdict = "accepted", "EHR order");
            }
            vec![
                answer::accept(&message, &answering(ehr), None),
                answer::result(&message, &answering(ehr), refusal.as_ref()),
            ]
        }
    }
}

/// Logs an order taken (`order_received`); the refusal to send instead
/// when it cannot be logged.
async fn log(
    order: &Order,
    bytes: &[u8],
    port: String,
    library_version: u64,
    ehr: &Ehr,
) -> Option<Refusal> {
    use crate::format;
    let context = crate::store::Context {
        gateway: ehr.gateway.clone(),
        pump: Some(port),
        care_area: ehr.care_area.clone(),
        library_version: Some(library_version),
    };
    let event = crate::store::Event::OrderReceived {
        control_id: order.control_id.clone(),
        sender: order.sender.clone(),
        placer: order.placer.clone(),
        pump_serial: order.pump.clone(),
        drug_code: order.drug.code.clone(),
        drug: order.drug.text.clone(),
        rate: order.rate.map(format::rate),
        concentration: order.concentration.map(format::concentration),
        vtbi: order.vtbi.map(format::volume),
        weight: order.weight.map(format::weight),
        message_hash: hex::encode(crate::link::sha256(bytes)),
    };
    match ehr.writer.append(vec![(context, event)]).await {
        Ok(_) => None,
        Err(e) => {
            warn!(order = %order.placer, error = %e, "EHR order not logged: refused");
            Some(Refusal {
                location: None,
                hl7: 207,
                piv: None,
                message: format!("the order could not be logged ({e}); send it again"),
            })
        }
    }
}

/// Whether this bed can take the order: its pump is one of the bed's (by
/// serial number) and its drug is in the active library for the bed's
/// care area. When it can: the pump's port name and the library version.
fn check(order: &Order, ehr: &Ehr) -> Result<(String, u64), Refusal> {
    let refused = |location: Option<(&str, usize)>, piv: Option<(u16, &str)>, message: String| {
        Err(Refusal {
            location: location.map(|(s, f)| (s.to_owned(), f)),
            hl7: 207,
            piv: piv.map(|(c, w)| (c, w.to_owned())),
            message,
        })
    };
    let port = ehr.view.borrow().pumps.iter().find_map(|p| {
        p.identity
            .as_ref()
            .is_some_and(|i| i.serial == order.pump)
            .then(|| p.name.to_string())
    });
    let Some(port) = port else {
        return refused(
            Some(("OBX", 18)),
            None,
            format!(
                "no pump {} at gateway {}: it is not the serial number of any of this bed's pumps",
                order.pump, ehr.gateway
            ),
        );
    };
    let library = ehr.library.borrow().clone();
    let Some(library) = library else {
        return refused(
            None,
            None,
            format!("gateway {} has no active drug library", ehr.gateway),
        );
    };
    let Some(area) = library.library.care_area(&ehr.care_area) else {
        return refused(
            None,
            Some((9021, "Care area mismatch")),
            format!("the active drug library has no care area {}", ehr.care_area),
        );
    };
    let code = order.drug.code.to_ascii_lowercase();
    let text = order.drug.text.to_ascii_lowercase();
    let found = area
        .drugs
        .iter()
        .any(|d| d.id == code || d.id == text || d.generic_name.to_ascii_lowercase() == text);
    if !found {
        return refused(
            Some(("RXG", 4)),
            Some((9010, "Unable to match medication to drug library")),
            format!(
                "{} ({}) is not in the drug library for {}",
                order.drug.text, order.drug.code, ehr.care_area
            ),
        );
    }
    Ok((port, library.library.version))
}
