//! A simulated EHR, for the demo, the tests and interface engineers
//! (`pumpgwd ehr send`, `pumpgwd ehr receive`): it sends PCD-03 orders to
//! a gateway's `[ehr] listen` and reads the answers, and it receives the
//! gateway's PCD-10 and PCD-01 messages on its own MLLP port,
//! acknowledging each (`AA`) once it has passed it on.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::ehr::er7::{Field, Message, Segment, Separators};
use crate::ehr::mllp::Mllp;

/// The longest message either side takes here.
const MAX: usize = 1 << 20;

/// Why the simulated EHR could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SimEhrError {
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The other side did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// What came back is not HL7.
    #[error("the answer is not HL7: {0}")]
    NotHl7(String),
}

/// Sends one message (ER7 text, segments ended by CR or newline) to
/// `to` and reads `answers` answers (an order gets two: `ACK^O15` and
/// `RRG^O16`).
pub async fn send(
    to: SocketAddr,
    text: &str,
    answers: usize,
    wait: Duration,
) -> Result<Vec<Message>, SimEhrError> {
    let stream = tokio::time::timeout(wait, TcpStream::connect(to))
        .await
        .map_err(|_| SimEhrError::Timeout(wait))??;
    let mut framed = Framed::new(stream, Mllp::new(MAX));
    let text = text.trim().replace("\r\n", "\r").replace('\n', "\r") + "\r";
    framed
        .send(text.as_bytes())
        .await
        .map_err(|e| SimEhrError::Io(std::io::Error::other(e.to_string())))?;
    let mut out = Vec::new();
    while out.len() < answers {
        let frame = tokio::time::timeout(wait, framed.next())
            .await
            .map_err(|_| SimEhrError::Timeout(wait))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| SimEhrError::Io(std::io::Error::other(e.to_string())))?;
        out.push(Message::parse(&frame).map_err(|e| SimEhrError::NotHl7(e.to_string()))?);
    }
    Ok(out)
}

/// Receives messages on `listener` until `cancel`, one connection at a
/// time: each is passed to `received`, then acknowledged `AA`.
pub async fn receive(
    listener: TcpListener,
    received: mpsc::Sender<Message>,
    cancel: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let mut framed = Framed::new(stream, Mllp::new(MAX));
        loop {
            let frame = tokio::select! {
                () = cancel.cancelled() => return,
                frame = framed.next() => frame,
            };
            let Some(Ok(frame)) = frame else { break };
            let Ok(message) = Message::parse(&frame) else {
                continue;
            };
            let ack = acknowledgement(&message);
            if received.send(message).await.is_err() {
                return;
            }
            if framed.send(ack.to_er7().as_bytes()).await.is_err() {
                break;
            }
        }
    }
}

/// `ACK` with `AA` for a message received.
pub fn acknowledgement(m: &Message) -> Message {
    let control = m.msh().map(|h| h.value(10).to_owned()).unwrap_or_default();
    let version = m.msh().map_or("2.6", |h| h.value(12)).to_owned();
    let mut msh = Segment::new("MSH");
    msh.set(1, Field::text("|"))
        .set(2, Field::text("^~\\&"))
        .set(3, Field::text("SIM-EHR"))
        .set(9, Field::components(&["ACK", "R01", "ACK"]))
        .set(10, Field::text(format!("A{control}")))
        .set(11, Field::text("P"))
        .set(12, Field::text(version));
    let mut msa = Segment::new("MSA");
    msa.set(1, Field::text("AA")).set(2, Field::text(control));
    Message {
        separators: Separators::default(),
        segments: vec![msh, msa],
    }
}

/// One line for a person about a message the gateway sent: its kind, the
/// event, the drug, the pump and the order.
pub fn describe(m: &Message) -> String {
    let kind = m
        .msh()
        .map(|h| format!("{}^{}", h.field(9).component(1), h.field(9).component(2)))
        .unwrap_or_default();
    let event = m
        .all("OBX")
        .find(|o| o.field(3).component(2) == "MDC_ATTR_EVT_COND")
        .map(|o| o.field(5).component(2).to_owned());
    let drug = m
        .segment("OBR")
        .map(|o| o.field(4).component(2).to_owned())
        .unwrap_or_default();
    let pump = m
        .all("OBX")
        .find(|o| o.value(4) == "1.0.0.0")
        .map(|o| o.field(18).component(1).to_owned())
        .unwrap_or_default();
    let order = m
        .segment("OBR")
        .map(|o| o.field(2).component(1).to_owned())
        .filter(|o| !o.is_empty())
        .map(|o| format!(", order {o}"))
        .unwrap_or_default();
    let what = match (kind.as_str(), event) {
        ("ORU^R42", Some(e)) => format!("PCD-10 {e}"),
        ("ORU^R01", _) => "PCD-01 status".to_owned(),
        (k, _) => k.to_owned(),
    };
    format!("{what}: {drug} on pump {pump}{order}")
}

/// One line for a person about a gateway's answers to an order: the
/// result, and the refusal's words.
pub fn result_words(answers: &[Message]) -> String {
    let Some(result) = answers
        .iter()
        .find(|a| a.msh().is_some_and(|h| h.field(9).component(1) == "RRG"))
    else {
        return answers.first().and_then(|a| a.segment("MSA")).map_or_else(
            || "no answer".to_owned(),
            |m| format!("{} (refused on receipt)", m.value(1)),
        );
    };
    let code = result
        .segment("MSA")
        .map(|m| m.value(1))
        .unwrap_or_default();
    match result.segment("ERR") {
        Some(err) => format!("{code}: {} ({})", err.value(8), err.field(5).component(2)),
        None => code.to_owned(),
    }
}
