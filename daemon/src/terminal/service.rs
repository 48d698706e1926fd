//! The terminal service: the daemon's Unix socket that bedside terminals
//! connect to. One task accepts; one task per terminal (at most
//! `max_terminals`) checks the peer's credentials (`SO_PEERCRED`), expects
//! `hello`, then streams the pump cards: each terminal task waits on the
//! core's snapshot watch and sends only the latest state, so a slow
//! terminal skips intermediate states instead of growing a queue.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::codec::{Framed, LinesCodec};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::protocol::{self, FromTerminal, MAX_LINE, ToTerminal, VERSION};
use crate::gateway::Snapshot;

/// How long a terminal has to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Fastest status rate to one terminal.
const STATUS_EVERY: Duration = Duration::from_millis(200);

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The socket cannot be made.
    #[error("terminal socket {path}: {detail}")]
    Socket {
        /// The socket's path.
        path: String,
        /// Why.
        detail: String,
    },
}

/// Who may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The daemon's own uid (always allowed, as is root).
    pub own_uid: u32,
    /// The socket's group: members by primary group are allowed.
    pub group: Option<u32>,
}

impl Access {
    /// Whether a peer with these credentials may talk to the daemon.
    pub fn allows(&self, uid: u32, gid: u32) -> bool {
        uid == 0 || uid == self.own_uid || self.group == Some(gid)
    }
}

/// The service, ready to accept.
pub struct Service {
    listener: UnixListener,
    path: PathBuf,
    access: Access,
    max_terminals: usize,
    gateway: String,
    care_area: String,
}

impl Service {
    /// Binds the socket at `path` (replacing a stale socket, never another
    /// kind of file), mode 0660, group `group` if given.
    pub fn bind(
        path: &Path,
        group: Option<&str>,
        max_terminals: usize,
        gateway: &str,
        care_area: &str,
    ) -> Result<Service, ServiceError> {
        let fail = |detail: String| ServiceError::Socket {
            path: path.display().to_string(),
            detail,
        };
        let gid = match group {
            None => None,
            Some(name) => Some(
                nix::unistd::Group::from_name(name)
                    .map_err(|e| fail(format!("group {name}: {e}")))?
                    .ok_or_else(|| fail(format!("no group named {name}")))?
                    .gid
                    .as_raw(),
            ),
        };
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                std::fs::remove_file(path).map_err(|e| fail(format!("stale socket: {e}")))?;
            }
            Ok(_) => {
                return Err(fail(
                    "exists and is not a socket; it was left alone".to_owned(),
                ));
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| fail(e.to_string()))?;
        if let Some(g) = gid {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(g)))
                .map_err(|e| fail(format!("cannot give it to its group: {e}")))?;
        }
        Ok(Service {
            listener,
            path: path.to_path_buf(),
            access: Access {
                own_uid: nix::unistd::getuid().as_raw(),
                group: gid,
            },
            max_terminals: max_terminals.max(1),
            gateway: gateway.to_owned(),
            care_area: care_area.to_owned(),
        })
    }

    /// Serves until `cancel`; closes every terminal and removes the socket.
    pub async fn run(self, view: watch::Receiver<Snapshot>, cancel: CancellationToken) {
        info!(socket = %self.path.display(), "terminal service listening");
        let mut terminals = JoinSet::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(_) = terminals.join_next(), if !terminals.is_empty() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let full = terminals.len() >= self.max_terminals;
                        terminals.spawn(serve(stream, Ctx {
                            access: self.access,
                            full,
                            gateway: self.gateway.clone(),
                            care_area: self.care_area.clone(),
                            view: view.clone(),
                            cancel: cancel.clone(),
                        }));
                    }
                    Err(e) => {
                        warn!(error = %e, "terminal socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        while terminals.join_next().await.is_some() {}
        if let Err(e) = std::fs::remove_file(&self.path) {
            debug!(error = %e, "terminal socket already gone");
        }
        info!("terminal service stopped");
    }
}

struct Ctx {
    access: Access,
    full: bool,
    gateway: String,
    care_area: String,
    view: watch::Receiver<Snapshot>,
    cancel: CancellationToken,
}

type Lines = Framed<UnixStream, LinesCodec>;

async fn send(lines: &mut Lines, message: &ToTerminal) -> bool {
    let text = serde_json::to_string(message).expect("messages always serialise");
    lines.send(text).await.is_ok()
}

async fn serve(stream: UnixStream, mut ctx: Ctx) {
    let cred = getsockopt(&stream, PeerCredentials);
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    let (uid, gid, pid) = match cred {
        Ok(c) => (c.uid(), c.gid(), c.pid()),
        Err(e) => {
            warn!(error = %e, "terminal refused: its credentials cannot be read");
            return;
        }
    };
    if !ctx.access.allows(uid, gid) {
        warn!(
            uid,
            gid, pid, "terminal refused: not the daemon's user, root or the socket's group"
        );
        send(
            &mut lines,
            &protocol::error(
                "NOT_ALLOWED",
                "this user may not use the gateway's terminal socket",
                true,
            ),
        )
        .await;
        return;
    }
    if ctx.full {
        warn!(uid, pid, "terminal refused: too many terminals");
        send(
            &mut lines,
            &protocol::error(
                "TOO_MANY_TERMINALS",
                "the gateway serves no more terminals",
                true,
            ),
        )
        .await;
        return;
    }
    let Some(name) = hello(&mut lines, &ctx).await else {
        return;
    };
    info!(terminal = %name, uid, pid, "terminal connected");
    let mut last = tokio::time::Instant::now() - STATUS_EVERY;
    let mut dirty = true;
    // The cards last sent: the snapshot also changes for things no card
    // shows (link counters), and those are not news to a terminal.
    let mut shown: Option<(Option<u64>, Vec<protocol::PumpCard>)> = None;
    loop {
        if dirty && last.elapsed() >= STATUS_EVERY {
            let snapshot = ctx.view.borrow_and_update().clone();
            let cards = (
                snapshot.library_version,
                snapshot
                    .pumps
                    .iter()
                    .map(protocol::card)
                    .collect::<Vec<_>>(),
            );
            if shown.as_ref() != Some(&cards) {
                let status = protocol::status(&snapshot, time::OffsetDateTime::now_utc());
                if !send(&mut lines, &status).await {
                    break;
                }
                shown = Some(cards);
            }
            last = tokio::time::Instant::now();
            dirty = false;
        }
        let wait = STATUS_EVERY.saturating_sub(last.elapsed());
        tokio::select! {
            () = ctx.cancel.cancelled() => break,
            changed = ctx.view.changed(), if !dirty => {
                if changed.is_err() {
                    break; // the core has ended: the daemon is stopping
                }
                dirty = true;
            }
            () = tokio::time::sleep(wait), if dirty => {}
            line = lines.next() => match line {
                None => break,
                Some(Err(e)) => {
                    send(&mut lines, &protocol::error("BAD_LINE", e.to_string(), true)).await;
                    break;
                }
                Some(Ok(text)) => {
                    if !answer(&mut lines, &text).await {
                        break;
                    }
                }
            },
        }
    }
    info!(terminal = %name, "terminal disconnected");
}

/// Waits for `hello` and answers `welcome`; `None` ends the connection.
async fn hello(lines: &mut Lines, ctx: &Ctx) -> Option<String> {
    let first = tokio::select! {
        () = ctx.cancel.cancelled() => return None,
        r = tokio::time::timeout(HELLO_TIMEOUT, lines.next()) => r,
    };
    let text = match first {
        Err(_) => {
            send(
                lines,
                &protocol::error("TIMEOUT", "no hello within 5 s", true),
            )
            .await;
            return None;
        }
        Ok(None) => return None,
        Ok(Some(Err(e))) => {
            send(lines, &protocol::error("BAD_LINE", e.to_string(), true)).await;
            return None;
        }
        Ok(Some(Ok(t))) => t,
    };
    match serde_json::from_str::<FromTerminal>(&text) {
        Ok(FromTerminal::Hello { protocol, terminal }) if protocol == VERSION => {
            let welcome = ToTerminal::Welcome {
                protocol: VERSION,
                gateway: ctx.gateway.clone(),
                care_area: ctx.care_area.clone(),
            };
            send(lines, &welcome).await.then_some(terminal)
        }
        Ok(FromTerminal::Hello { protocol, terminal }) => {
            warn!(terminal = %terminal, protocol, "terminal refused: protocol version");
            let msg = format!("this gateway speaks terminal protocol {VERSION}, not {protocol}");
            send(lines, &protocol::error("VERSION", msg, true)).await;
            None
        }
        Ok(_) | Err(_) => {
            let msg =
                "the first line must be {\"type\":\"hello\",\"protocol\":1,\"terminal\":NAME}";
            send(lines, &protocol::error("HELLO_FIRST", msg, true)).await;
            None
        }
    }
}

/// Answers one line after `hello`; `false` ends the connection.
async fn answer(lines: &mut Lines, text: &str) -> bool {
    match serde_json::from_str::<FromTerminal>(text) {
        Ok(FromTerminal::Ping) => send(lines, &ToTerminal::Pong).await,
        Ok(FromTerminal::Hello { .. }) => {
            send(
                lines,
                &protocol::error("UNKNOWN_MESSAGE", "hello was already said", false),
            )
            .await
        }
        Err(e) => {
            debug!(error = %e, "a line that is not a message");
            let msg = "not a message of terminal protocol 1 (after hello: ping)";
            send(lines, &protocol::error("UNKNOWN_MESSAGE", msg, false)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_the_daemon_and_the_socket_group_may_connect() {
        let a = Access {
            own_uid: 990,
            group: Some(991),
        };
        assert!(a.allows(0, 0));
        assert!(a.allows(990, 5));
        assert!(a.allows(1000, 991));
        assert!(!a.allows(1000, 1000));
        let none = Access {
            own_uid: 990,
            group: None,
        };
        assert!(!none.allows(1000, 991));
    }
}
