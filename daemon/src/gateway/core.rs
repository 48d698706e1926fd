//! The gateway's core task: it consumes every pump session's events through
//! one bounded channel, answers programme requests, keeps the authorisations
//! it issued and the delivery history the cumulative limits need, and
//! publishes a snapshot of every pump for status views.
//!
//! It owns all this state alone, so nothing here is locked.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::authorise::{self, Request};
use super::view::{LinkState, PumpView, Snapshot, VerdictSummary};
use crate::ders::{Delivered, History};
use crate::library::ActiveLibrary;
use crate::link::LinkStats;
use crate::pump::event::{DeliveryEventKind, DeliveryReport, ProgrammeAsk};
use crate::pump::{Decision, Envelope, GatewayInfo, PumpEvent, PumpId};
use crate::units::parse_amount;

/// How long delivered amounts are kept for cumulative limits.
const HISTORY_KEPT: time::Duration = time::Duration::hours(48);

#[derive(Debug)]
struct Issued {
    pump: PumpId,
    request: u32,
    drug: String,
    expires: OffsetDateTime,
    started: bool,
}

/// The core's state.
pub struct Core {
    gateway: Arc<GatewayInfo>,
    library: watch::Receiver<Option<Arc<ActiveLibrary>>>,
    validity: time::Duration,
    pumps: BTreeMap<PumpId, PumpView>,
    stats: HashMap<PumpId, Arc<LinkStats>>,
    issued: HashMap<[u8; 16], Issued>,
    /// Deliveries per drug at this bed, for cumulative limits.
    history: HashMap<String, Vec<Delivered>>,
    /// Last event record number seen per pump serial, to drop resent events.
    last_record: HashMap<String, u64>,
    view: watch::Sender<Snapshot>,
    rng: SystemRandom,
}

impl Core {
    /// A core for these pumps.
    pub fn new(
        gateway: Arc<GatewayInfo>,
        library: watch::Receiver<Option<Arc<ActiveLibrary>>>,
        validity: time::Duration,
        pumps: &[(PumpId, Arc<LinkStats>)],
        view: watch::Sender<Snapshot>,
    ) -> Self {
        let mut core = Core {
            gateway,
            library,
            validity,
            pumps: pumps
                .iter()
                .map(|(id, _)| (id.clone(), PumpView::new(id.clone())))
                .collect(),
            stats: pumps.iter().cloned().collect(),
            issued: HashMap::new(),
            history: HashMap::new(),
            last_record: HashMap::new(),
            view,
            rng: SystemRandom::new(),
        };
        core.publish();
        core
    }

    /// Handles events until every sender is gone, then returns.
    pub async fn run(mut self, mut events: mpsc::Receiver<Envelope>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => self.handle(ev),
                    None => break,
                },
                // Link counters change without events; refresh the view.
                _ = tick.tick() => {}
            }
            self.publish();
        }
        self.publish();
        info!("core stopped: every pump session has ended");
    }

    fn handle(&mut self, Envelope { pump, event }: Envelope) {
        let now = OffsetDateTime::now_utc();
        let active = self.library.borrow().clone();
        let Some(view) = self.pumps.get_mut(&pump) else {
            error!(pump = %pump, "event from a pump that is not configured");
            return;
        };
        match event {
            PumpEvent::Connecting => view.set_link(LinkState::Connecting, now, None),
            PumpEvent::PortOpen => view.set_link(LinkState::PortOpen, now, None),
            PumpEvent::Offline { reason } => {
                view.set_link(LinkState::Offline, now, Some(reason));
                view.status = None;
            }
            PumpEvent::Online(identity) => {
                view.set_link(LinkState::Online, now, None);
                view.identity = Some(identity);
                view.library_match = matches(view, active.as_deref());
                view.alarms.clear();
            }
            PumpEvent::LibraryInstalled { version, hash } => {
                if let Some(id) = &mut view.identity {
                    id.library_version = Some(version);
                    id.library_hash = Some(hash);
                }
                view.library_match = matches(view, active.as_deref());
                let ok = view.library_match == Some(true);
                info!(pump = %pump, version, hash = %hex::encode(&hash[..8]), matches = ok, "pump installed a library");
            }
            PumpEvent::Status(s) => view.status = Some(s),
            PumpEvent::Alarm(a) => {
                if !fresh(&mut self.last_record, view, a.record) {
                    return;
                }
                if a.active {
                    warn!(pump = %pump, alarm = a.id, priority = ?a.priority, condition = %a.condition, "alarm raised");
                    view.alarms.retain(|x| x.id != a.id);
                    view.alarms.push(a);
                    view.alarms.sort_by_key(|x| std::cmp::Reverse(x.priority));
                } else {
                    info!(pump = %pump, alarm = a.id, condition = %a.condition, "alarm cleared");
                    view.alarms.retain(|x| x.id != a.id);
                }
            }
            PumpEvent::Delivery(d) => {
                if !fresh(&mut self.last_record, view, d.record) {
                    return;
                }
                self.delivery(&pump, d, now);
            }
            PumpEvent::Programme(ask) => self.programme(&pump, ask, active.as_deref(), now),
        }
    }

    fn programme(
        &mut self,
        pump: &PumpId,
        ask: ProgrammeAsk,
        active: Option<&ActiveLibrary>,
        now: OffsetDateTime,
    ) {
        let identity = self.pumps.get(pump).and_then(|v| v.identity.clone());
        let drug = ask
            .programme
            .as_ref()
            .map_or_else(|_| "?".to_owned(), |p| p.drug.clone());
        let history = History {
            deliveries: self.history.get(&drug).cloned().unwrap_or_default(),
        };
        let rng = &self.rng;
        let answer = authorise::decide(
            &Request {
                library: active,
                care_area: &self.gateway.care_area,
                pump: identity.as_ref(),
                programme: &ask.programme,
                history: &history,
            },
            now,
            self.validity,
            || {
                let mut t = [0u8; 16];
                rng.fill(&mut t).ok().map(|()| t)
            },
        );
        // Authorisations never used lapse; they must not pile up.
        self.issued.retain(|_, i| i.started || now <= i.expires);
        let (verdict, first) = match &answer.decision {
            Decision::Authorise { token, expires } => {
                self.issued.insert(
                    *token,
                    Issued {
                        pump: pump.clone(),
                        request: ask.request,
                        drug: drug.clone(),
                        expires: *expires,
                        started: false,
                    },
                );
                ("authorised".to_owned(), String::new())
            }
            Decision::Deny { outcome, reasons } => (
                format!("denied ({outcome})"),
                reasons
                    .first()
                    .map(|r| format!("{}: {}", r.code, r.message))
                    .unwrap_or_default(),
            ),
        };
        let outcome = answer.verdict.as_ref().map_or_else(
            || "not checked".to_owned(),
            |v| authorise::outcome_name(v.outcome),
        );
        info!(
            pump = %pump,
            drug = %drug,
            request = ask.request,
            programme_hash = %hex::encode(&ask.hash[..8]),
            verdict = %outcome,
            decision = %verdict,
            reason = %first,
            "programme checked"
        );
        let shown = active
            .and_then(|l| l.library.care_area(&self.gateway.care_area))
            .and_then(|a| a.drug(&drug))
            .map_or(drug, |d| d.display_name.clone());
        let summary = Some(VerdictSummary {
            at: now,
            request: ask.request,
            drug: shown,
            decision: verdict,
            reason: first,
        });
        if let Some(view) = self.pumps.get_mut(pump) {
            view.last_verdict = summary;
        }
        // A pump gone before the answer simply gets none.
        let _ = ask.reply.send(answer.decision);
    }

    fn delivery(&mut self, pump: &PumpId, d: DeliveryReport, now: OffsetDateTime) {
        let Some(issued) = self.issued.get_mut(&d.token) else {
            error!(pump = %pump, request = d.request, event = ?d.event, "delivery under a token this gateway never issued");
            return;
        };
        if issued.pump != *pump || issued.request != d.request {
            error!(pump = %pump, request = d.request, issued_to = %issued.pump, "delivery quotes another pump's or request's token");
            return;
        }
        match d.event {
            DeliveryEventKind::Started => {
                if issued.started {
                    error!(pump = %pump, request = d.request, "second start under a single-use token");
                } else if now > issued.expires {
                    error!(pump = %pump, request = d.request, "start after the authorisation expired");
                }
                issued.started = true;
            }
            DeliveryEventKind::Completed
            | DeliveryEventKind::Stopped
            | DeliveryEventKind::BolusDelivered => {
                let amount = d.amount_infused.as_deref().map(parse_amount);
                match amount {
                    Some(Ok((amount, _))) => {
                        let given = self.history.entry(issued.drug.clone()).or_default();
                        given.push(Delivered { at: d.at, amount });
                        // Cumulative windows are at most a day; keep two.
                        given.retain(|g| now - g.at <= HISTORY_KEPT);
                    }
                    Some(Err(e)) => {
                        warn!(pump = %pump, error = %e, "delivered amount unreadable; cumulative limits will miss it");
                    }
                    None => {}
                }
            }
            DeliveryEventKind::Paused | DeliveryEventKind::Resumed => {}
        }
        info!(pump = %pump, drug = %issued.drug, request = d.request, event = ?d.event, volume = %d.volume_infused, "delivery");
        if matches!(
            d.event,
            DeliveryEventKind::Completed
                | DeliveryEventKind::Stopped
                | DeliveryEventKind::BolusDelivered
        ) {
            // The token's delivery is over; any later event under it is an error.
            self.issued.remove(&d.token);
        }
        if let Some(view) = self.pumps.get_mut(pump) {
            view.last_delivery = Some(d);
        }
    }

    fn publish(&mut self) {
        let library = self.library.borrow().clone();
        for (id, view) in &mut self.pumps {
            if let Some(s) = self.stats.get(id) {
                view.link_counters = s.snapshot();
            }
            view.library_match = matches(view, library.as_deref());
            view.drug_name = view
                .status
                .as_ref()
                .and_then(|s| s.drug.as_deref())
                .and_then(|id| {
                    let l = library.as_deref()?;
                    let area = l.library.care_area(&self.gateway.care_area)?;
                    Some(area.drug(id)?.display_name.clone())
                });
        }
        let snapshot = Snapshot {
            gateway_id: self.gateway.gateway_id.clone(),
            care_area: self.gateway.care_area.clone(),
            library_version: library.as_ref().map(|l| l.version()),
            library_hash: library.as_ref().map(|l| l.short_hash()),
            pumps: self.pumps.values().cloned().collect(),
        };
        self.view.send_replace(snapshot);
    }
}

fn matches(view: &PumpView, library: Option<&ActiveLibrary>) -> Option<bool> {
    let id = view.identity.as_ref()?;
    Some(library.is_some_and(|l| id.library_hash == Some(l.hash)))
}

/// True the first time a pump's event record number is seen.
fn fresh(last: &mut HashMap<String, u64>, view: &PumpView, record: u64) -> bool {
    let serial = view
        .identity
        .as_ref()
        .map_or_else(|| view.name.to_string(), |i| i.serial.clone());
    match last.get(&serial) {
        Some(&seen) if record <= seen => {
            info!(pump = %view.name, record, "event already received; dropped");
            false
        }
        _ => {
            last.insert(serial, record);
            true
        }
    }
}
