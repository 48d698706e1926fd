//! Libraries that arrive on the gateway's library topics. Each goes through
//! exactly the import path of `pumpgwd library import` (signature against
//! the trusted keys, schema, lint, no rollback; every step an event in the
//! same transaction), then is activated; the core notices the new active
//! library and pushes it to every pump.
//!
//! A retained message comes again at every reconnection: a file already in
//! the archive is not imported twice, and a refused payload is refused (and
//! logged) once per run.

use std::collections::HashSet;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::messages::LibraryMessage;
use crate::link::sha256;
use crate::store::library::{self, LibraryError};
use crate::store::{Context, Store};

/// How long the library topics stay unsubscribed, by default (`[mqtt]
/// library_pause_s`), after a message too large to read
/// ([`super::settings::MAX_PACKET`]) arrived on one. The MQTT
/// client cannot skip such a message (it ends the connection), and a
/// retained one comes again at every subscription, so the gateway
/// reconnects without the library topics and the event feed goes on; then
/// it tries them again. Libraries are published retained, so one published
/// meanwhile arrives then.
pub const OVERSIZE_PAUSE: Duration = Duration::from_secs(600);

/// The size of an incoming message the MQTT client refused for being over
/// its limit, if that is what ended the connection.
pub fn oversize(e: &rumqttc::ConnectionError) -> Option<usize> {
    match e {
        rumqttc::ConnectionError::MqttState(rumqttc::StateError::Deserialization(
            rumqttc::Error::PayloadSizeLimitExceeded(size),
        )) => Some(*size),
        _ => None,
    }
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Imported and activated.
    Activated {
        /// The new version.
        version: u64,
        /// The one it replaced.
        previous: Option<u64>,
    },
    /// Already in the archive (or already refused this run): nothing to do.
    Known,
    /// An empty payload: the retained message was cleared.
    Cleared,
    /// Refused, and the refusal logged; the active library is untouched.
    Refused(String),
}

/// Handles library messages; owns a connection to the store.
#[derive(Debug)]
pub struct LibraryInbox {
    store: Store,
    trusted: Vec<Vec<u8>>,
    approvals: u32,
    gateway: String,
    care_area: String,
    seen: HashSet<[u8; 32]>,
    /// An oversized message was refused this run.
    oversize_refused: bool,
}

impl LibraryInbox {
    /// An inbox that accepts libraries signed by `trusted` public keys
    /// with at least `approvals` approvals besides the proposal.
    pub fn new(
        store: Store,
        trusted: Vec<Vec<u8>>,
        approvals: u32,
        gateway: &str,
        care_area: &str,
    ) -> Self {
        LibraryInbox {
            store,
            trusted,
            approvals,
            gateway: gateway.to_owned(),
            care_area: care_area.to_owned(),
            seen: HashSet::new(),
            oversize_refused: false,
        }
    }

    fn context(&self) -> Context {
        Context {
            gateway: self.gateway.clone(),
            pump: None,
            care_area: self.care_area.clone(),
            library_version: library::active_version(&self.store)
                .ok()
                .flatten()
                .map(|(v, _)| v),
        }
    }

    /// Handles one message from `topic`.
    pub fn receive(&mut self, topic: &str, payload: &[u8]) -> Outcome {
        if payload.is_empty() {
            return Outcome::Cleared;
        }
        let digest = sha256(payload);
        if self.seen.contains(&digest) {
            return Outcome::Known;
        }
        let (outcome, settled) = self.handle(topic, payload);
        if settled {
            self.seen.insert(digest);
        }
        outcome
    }

    /// The outcome, and whether it is final for this payload (a store
    /// that could not be read or written is not: the next delivery of the
    /// retained message tries again).
    fn handle(&mut self, topic: &str, payload: &[u8]) -> (Outcome, bool) {
        let context = self.context();
        let message = match LibraryMessage::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                let who = format!("MQTT {topic}");
                return (self.refuse(&context, payload, &e.to_string(), &who), true);
            }
        };
        let who = format!("{} via MQTT {topic}", message.published_by);
        let file = message.library.as_bytes();
        let signature = message.signature.get().as_bytes();
        let sha = hex::encode(sha256(file));
        match library::by_hash(&self.store, &sha) {
            Ok(Some((version, state))) if state == "verified" => {
                // Imported earlier but never activated (a stop in between,
                // or an import by hand left for later): this message must
                // carry its own good signature to activate it.
                match crate::library::signature::verify(
                    file,
                    signature,
                    &self.trusted,
                    self.approvals,
                ) {
                    Ok(_) => {
                        self.activate(&context, version, file, &who, topic, &message.published_at)
                    }
                    Err(e) => {
                        let reason = format!("signature refused: {e}");
                        (self.refuse(&context, file, &reason, &who), true)
                    }
                }
            }
            Ok(Some((version, state))) => {
                debug!(version, state = %state, topic, "library already in the archive");
                (Outcome::Known, true)
            }
            Ok(None) => {
                match library::import(
                    &mut self.store,
                    &context,
                    file,
                    signature,
                    library::Trust {
                        keys: &self.trusted,
                        approvals: self.approvals,
                    },
                    &who,
                ) {
                    Ok(a) => {
                        info!(version = a.version, key = %a.key_id, topic, "library from MQTT verified and archived");
                        self.activate(
                            &context,
                            a.version,
                            file,
                            &who,
                            topic,
                            &message.published_at,
                        )
                    }
                    Err(LibraryError::Store(e)) => {
                        warn!(error = %e, topic, "library from MQTT not imported: the store failed; it will be tried again");
                        (Outcome::Refused(format!("the store failed: {e}")), false)
                    }
                    Err(e) => (self.refuse(&context, file, &e.to_string(), &who), true),
                }
            }
            Err(e) => (
                Outcome::Refused(format!("the archive cannot be read: {e}")),
                false,
            ),
        }
    }

    fn activate(
        &mut self,
        context: &Context,
        version: u64,
        file: &[u8],
        who: &str,
        topic: &str,
        published_at: &str,
    ) -> (Outcome, bool) {
        let why = format!("published on {topic} at {published_at}");
        match library::activate(&mut self.store, context, version, who, &why) {
            Ok(previous) => {
                info!(version, previous = ?previous, topic, "library from MQTT activated; pushing to every pump");
                (Outcome::Activated { version, previous }, true)
            }
            Err(e @ LibraryError::Rollback { .. }) => {
                // Archived, but a higher version became active meanwhile.
                warn!(version, error = %e, "library from MQTT archived, not activated");
                (Outcome::Refused(e.to_string()), true)
            }
            Err(LibraryError::Store(e)) => {
                // Archived as verified: the next delivery activates it.
                warn!(version, error = %e, "library from MQTT archived but not activated: the store failed; it will be tried again");
                (Outcome::Refused(format!("the store failed: {e}")), false)
            }
            Err(e) => (self.refuse(context, file, &e.to_string(), who), true),
        }
    }

    /// A message of `size` bytes, over the limit, arrived on a library
    /// topic and could not be read: refused, and logged once per run (it
    /// comes again, retained, every time the topics are subscribed).
    pub fn oversize(&mut self, size: usize, pause: Duration) -> Outcome {
        let secs = pause.as_secs();
        let left = if secs.is_multiple_of(60) {
            format!("{} minutes", secs / 60)
        } else {
            format!("{secs} s")
        };
        let reason = format!(
            "a message of {size} bytes on a library topic is over the {} MiB limit and was not read; library topics are left for {left} at a time while it stays (clear it with an empty retained message)",
            super::settings::MAX_PACKET / (1024 * 1024),
        );
        if self.oversize_refused {
            debug!(size, "oversized library message again; still refused");
            return Outcome::Known;
        }
        self.oversize_refused = true;
        let context = self.context();
        self.refuse(&context, &[], &reason, "MQTT (a library topic)")
    }

    fn refuse(&mut self, context: &Context, file: &[u8], reason: &str, who: &str) -> Outcome {
        warn!(by = %who, reason = %reason, "library from MQTT refused; the active library is unchanged");
        if let Err(e) = library::log_refusal(&mut self.store, context, file, reason, who) {
            warn!(error = %e, "the refusal could not be logged");
        }
        Outcome::Refused(reason.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::signature;
    use crate::store::log::tail;

    const LIBRARY: &str = include_str!("../../../config/drug-library.example.json");

    fn signed(text: &str, key: &[u8]) -> Vec<u8> {
        let sig = signature::sign_v1(text.as_bytes(), key, std::path::Path::new("k")).unwrap();
        serde_json::to_vec(&serde_json::json!({
            "format": "pumpgw-library-message",
            "format_version": 1,
            "library": text,
            "signature": sig,
            "published_by": "pharmacy",
            "published_at": "2026-11-21T10:00:00.000Z",
        }))
        .unwrap()
    }

    fn inbox() -> (tempfile::TempDir, LibraryInbox, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = signature::generate().unwrap();
        let store = Store::open(&Store::file_in(dir.path())).unwrap();
        (
            dir,
            LibraryInbox::new(store, vec![public], 0, "gw-1", "adult-icu"),
            key,
        )
    }

    #[test]
    fn a_signed_library_is_imported_and_activated_once() {
        let (_d, mut inbox, key) = inbox();
        let msg = signed(LIBRARY, &key);
        let out = inbox.receive("pumpgw/v1/s/library/adult-icu", &msg);
        assert!(
            matches!(out, Outcome::Activated { previous: None, .. }),
            "{out:?}"
        );
        assert_eq!(
            inbox.receive("pumpgw/v1/s/library/adult-icu", &msg),
            Outcome::Known
        );
        let types: Vec<&str> = tail(&inbox.store, 10)
            .unwrap()
            .iter()
            .map(|r| r.event.type_name())
            .collect();
        assert_eq!(
            types,
            ["library_received", "library_verified", "library_activated"]
        );
        assert_eq!(inbox.receive("t", b""), Outcome::Cleared);
    }

    #[test]
    fn a_tampered_or_malformed_library_is_refused_and_logged_once() {
        let (_d, mut inbox, key) = inbox();
        let good = signed(LIBRARY, &key);
        let tampered = String::from_utf8(good.clone())
            .unwrap()
            .replacen("fentanyl", "fentanil", 1)
            .into_bytes();
        assert_ne!(tampered, good);
        let out = inbox.receive("t", &tampered);
        assert!(
            matches!(&out, Outcome::Refused(r) if r.contains("signature")),
            "{out:?}"
        );
        assert_eq!(inbox.receive("t", &tampered), Outcome::Known);
        let out = inbox.receive("t", b"{\"format\":1}");
        assert!(
            matches!(&out, Outcome::Refused(r) if r.contains("not a library message")),
            "{out:?}"
        );
        let refused = tail(&inbox.store, 10)
            .unwrap()
            .iter()
            .filter(|r| r.event.type_name() == "library_refused")
            .count();
        assert_eq!(refused, 2);
        assert_eq!(library::active_version(&inbox.store).unwrap(), None);
    }

    #[test]
    fn a_library_imported_by_hand_is_not_activated_by_a_message_with_a_bad_signature() {
        let (_d, mut inbox, key) = inbox();
        // Imported (verified) but left inactive on purpose.
        let good = signature::sign_v1(LIBRARY.as_bytes(), &key, std::path::Path::new("k")).unwrap();
        let trusted = inbox.trusted.clone();
        let context = inbox.context();
        library::import(
            &mut inbox.store,
            &context,
            LIBRARY.as_bytes(),
            &serde_json::to_vec(&good).unwrap(),
            library::Trust {
                keys: &trusted,
                approvals: 0,
            },
            "pharmacist",
        )
        .unwrap();
        // The same file on the topic, with a forged signature.
        let mut forged = good;
        forged.signature = hex::encode([7u8; 64]);
        let msg = serde_json::to_vec(&serde_json::json!({
            "format": "pumpgw-library-message",
            "format_version": 1,
            "library": LIBRARY,
            "signature": forged,
            "published_by": "mallory",
            "published_at": "2026-11-21T10:00:00.000Z",
        }))
        .unwrap();
        let out = inbox.receive("t", &msg);
        assert!(
            matches!(&out, Outcome::Refused(r) if r.contains("does not verify")),
            "{out:?}"
        );
        assert_eq!(library::active_version(&inbox.store).unwrap(), None);
        // With its good signature it is activated.
        let out = inbox.receive("t", &signed(LIBRARY, &key));
        assert!(matches!(out, Outcome::Activated { .. }), "{out:?}");
    }

    #[test]
    fn a_proposal_without_the_approvals_needed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_pub) = signature::generate().unwrap();
        let (b, b_pub) = signature::generate().unwrap();
        let store = Store::open(&Store::file_in(dir.path())).unwrap();
        let mut inbox = LibraryInbox::new(store, vec![a_pub, b_pub], 1, "gw-1", "adult-icu");
        let at = "2026-12-04T10:00:00Z";
        let path = std::path::Path::new("k");
        let mut sig = signature::propose(LIBRARY.as_bytes(), &a, path, "Ann", at).unwrap();
        let message = |sig: &signature::SignatureFile| {
            serde_json::to_vec(&serde_json::json!({
                "format": "pumpgw-library-message",
                "format_version": 1,
                "library": LIBRARY,
                "signature": sig,
                "published_by": "pharmacy",
                "published_at": "2026-11-21T10:00:00.000Z",
            }))
            .unwrap()
        };
        let out = inbox.receive("t", &message(&sig));
        assert!(
            matches!(&out, Outcome::Refused(r) if r.contains("needs 1 approval(s)") && r.contains("proposed by Ann")),
            "{out:?}"
        );
        assert_eq!(library::active_version(&inbox.store).unwrap(), None);
        signature::approve(LIBRARY.as_bytes(), &mut sig, &b, path, "Bob", at).unwrap();
        let out = inbox.receive("t", &message(&sig));
        assert!(matches!(out, Outcome::Activated { .. }), "{out:?}");
        let archived = library::list(&inbox.store).unwrap();
        let signed = archived[0]
            .signed
            .as_ref()
            .expect("its signature reads back");
        assert_eq!(signed.approvers[0].person.as_deref(), Some("Bob"));
    }
}
