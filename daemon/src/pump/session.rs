//! One task per serial port: open the port, hand it to the pump's protocol
//! driver, and when the port fails or the other end hangs up, say so and
//! reopen it with a capped exponential backoff, until shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_serial::SerialPortBuilderExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::event::{Envelope, PumpEvent, PumpId};
use super::pumplink;
use crate::library::ActiveLibrary;
use crate::link::{LinkStats, Timing};

/// The protocol a port's pump speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    /// pumpgw's own serial protocol (`docs/protocol.md`).
    #[default]
    PumpgwLink,
}

/// One serial port and the pump on it.
#[derive(Debug, Clone)]
pub struct PortSpec {
    /// Name used in logs, status and events.
    pub name: PumpId,
    /// Device path (a symlink is followed at each open).
    pub path: PathBuf,
    /// Line speed.
    pub baud: u32,
    /// Protocol driver.
    pub driver: DriverKind,
}

/// Who the gateway is, as told to pumps.
#[derive(Debug, Clone)]
pub struct GatewayInfo {
    /// Gateway id.
    pub gateway_id: String,
    /// The care area the gateway serves.
    pub care_area: String,
}

/// What a session needs from the rest of the daemon.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// Which pump.
    pub pump: PumpId,
    /// Gateway identity.
    pub gateway: Arc<GatewayInfo>,
    /// Where events go (bounded).
    pub events: mpsc::Sender<Envelope>,
    /// The active library, if any.
    pub library: watch::Receiver<Option<Arc<ActiveLibrary>>>,
    /// Link timers.
    pub timing: Timing,
    /// Link counters, shared with the status view.
    pub stats: Arc<LinkStats>,
    /// Bumped by the core when the gateway's wall clock stepped: every
    /// online pump is sent `TIME_SYNC` again.
    pub time_sync: watch::Receiver<u64>,
}

/// How a driver's service of an open port ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown was asked for (or the daemon's consumer is gone).
    Shutdown,
    /// The port failed or the other end hung up.
    Disconnected(String),
}

/// Reconnect delays: doubling from `initial` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Cap.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

/// Runs one port until `shutdown`.
pub async fn run_port(
    port: PortSpec,
    ctx: SessionContext,
    backoff: Backoff,
    shutdown: CancellationToken,
) {
    let mut delay = backoff.initial;
    let mut last_error = String::new();
    let emit = |event| {
        let ctx = &ctx;
        async move {
            ctx.events
                .send(Envelope {
                    pump: ctx.pump.clone(),
                    event,
                })
                .await
                .is_ok()
        }
    };
    if !emit(PumpEvent::Connecting).await {
        return;
    }
    loop {
        match open(&port) {
            Ok(stream) => {
                info!(pump = %port.name, path = %port.path.display(), state = "port-open", "port open; waiting for HELLO");
                last_error.clear();
                delay = backoff.initial;
                if !emit(PumpEvent::PortOpen).await {
                    return;
                }
                let ended = match port.driver {
                    DriverKind::PumpgwLink => pumplink::serve(stream, &ctx, &shutdown).await,
                };
                log_counters(&ctx);
                match ended {
                    Ended::Shutdown => return,
                    Ended::Disconnected(reason) => {
                        warn!(pump = %port.name, state = "offline", reason = %reason, "port lost; reopening");
                        if !emit(PumpEvent::Offline { reason }).await {
                            return;
                        }
                    }
                }
            }
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    warn!(pump = %port.name, state = "connecting", path = %port.path.display(), error = %e, retry_ms = delay.as_millis(), "cannot open port; retrying");
                    last_error = e;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(backoff.max);
    }
}

/// The link's counters, for the log: what a noisy line cost.
fn log_counters(ctx: &SessionContext) {
    let c = ctx.stats.snapshot();
    info!(
        pump = %ctx.pump,
        frames_in = c.frames_in,
        frames_out = c.frames_out,
        crc_errors = c.crc_errors,
        framing_errors = c.framing_errors,
        oversize = c.oversize,
        parse_errors = c.parse_errors,
        duplicates = c.duplicates,
        retransmissions = c.retransmissions,
        ignored = c.ignored,
        out_of_order = c.out_of_order,
        "link counters"
    );
}

fn open(port: &PortSpec) -> Result<tokio_serial::SerialStream, tokio_serial::Error> {
    let mut stream = tokio_serial::new(port.path.to_string_lossy(), port.baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()?;
    // Two processes on one pump's port would corrupt each other's frames.
    stream.set_exclusive(true)?;
    Ok(stream)
}
