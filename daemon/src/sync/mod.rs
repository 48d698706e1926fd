//! MQTT sync: the event log delivered at least once, in order, to the
//! broker; the gateway's and each pump's status as retained messages; signed
//! libraries received from the pharmacy's retained topics; and the
//! short-lived sessions of the `library publish` and `fleet status` tools.
//! docs/mqtt.md is the contract.
//!
//! - [`settings`]: the `[mqtt]` config, TLS and options;
//! - [`identity`]: the gateway's client certificate: key, dates, fingerprint;
//! - [`topic`]: the topic tree and the check on configured names;
//! - [`window`]: packet ids, acknowledgements and the cursor, without I/O;
//! - [`client`]: the connection loop (backoff, resubscribe, clean stop);
//! - [`messages`]: the status and library payloads;
//! - [`library`]: libraries arriving over MQTT, through the CLI's import;
//! - [`tools`], [`fleet`]: the command-line tools' sessions and views.
//!
//! MQTT 3.1.1, not 5: everything here (QoS 1, retained messages, a Last
//! Will, clean sessions) is in 3.1.1, which every broker a hospital runs
//! speaks, and rumqttc's 3.1.1 client is its mature one. Nothing in MQTT 5
//! (properties, reason strings, message expiry) would change what the
//! gateway guarantees, which rests on the outbox and PUBACKs.

pub mod client;
pub mod fleet;
pub mod identity;
pub mod library;
pub mod messages;
pub mod settings;
pub mod tools;
pub mod topic;
pub mod window;

pub use client::{SyncContext, run};
pub use settings::{Connection, MqttSettings};
