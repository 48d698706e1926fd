//! The bed's exposure to one drug, for cumulative limits: what was given,
//! what is running, what is authorised and not yet reported, and what a new
//! request would add; and the largest amount of it that would fall inside
//! any window of the limit's length from now on (`docs/ders.md` section 9).
//!
//! This is the one model: the cross-check, the daemon's core (at the
//! request and again when a token is made), `ders check --history` and the
//! tests all call [`worst_window`]. It is a pure function of its inputs in
//! exact base units; the caller says what "now" is.

use time::OffsetDateTime;

use crate::units::{Amount, AmountKind, ArithmeticError, Exact, TimeUnit};

/// An amount given, dated at the end of its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// When the amount had been given.
    pub at: OffsetDateTime,
    /// How much.
    pub amount: Amount,
    /// For an infusion: the most it ran at, per hour. It is then counted
    /// as given at that rate up to `at`, as late as it can have been (the
    /// most it can put in any window); without it, all of it at `at`.
    pub rate: Option<Amount>,
    /// For an infusion: when it can have started at the earliest (its
    /// authorisation); it is not counted as given before.
    pub since: Option<OffsetDateTime>,
}

/// An infusion of the drug that runs now, or is authorised and will start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// When it started (for one authorised and not yet started: now).
    pub since: OffsetDateTime,
    /// The rate it was authorised at, as an amount per hour.
    pub per_hour: Amount,
    /// The most it can still give from now (what is left of its volume to
    /// be infused and of its container); `None`: no bound known.
    pub left: Option<Amount>,
    /// Where it runs, for people ("p1").
    pub source: Option<String>,
}

/// A bolus authorised and not yet reported as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its amount.
    pub amount: Amount,
    /// Where, for people.
    pub source: Option<String>,
}

/// Everything the bed has had, has running and was promised of one drug.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Amounts given, each dated at the end of its delivery.
    pub deliveries: Vec<Delivered>,
    /// Infusions running (or authorised and not yet started).
    pub running: Vec<Running>,
    /// Boluses authorised and not yet reported.
    pub pending: Vec<Pending>,
}

/// What the request under check would add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A bolus of this many base units, given now.
    Bolus(Exact),
    /// An infusion from now at this many base units per hour, giving at most
    /// `left` base units (`None`: no bound).
    Infusion {
        /// Base units per hour.
        per_hour: Exact,
        /// The most it can give.
        left: Option<Exact>,
    },
}

/// The worst window and what made it up, in base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worst {
    /// The largest total in any window from now on.
    pub total: Exact,
    /// Of it: amounts already given.
    pub given: Exact,
    /// Of it: running infusions (their past and their future).
    pub running: Exact,
    /// Of it: boluses authorised and not yet reported.
    pub pending: Exact,
    /// Of it: the request itself.
    pub request: Exact,
    /// Where the running infusions that count are.
    pub running_on: Vec<String>,
    /// Where the pending boluses that count are.
    pub pending_on: Vec<String>,
}

/// An entry counted in another kind of amount than the drug's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindMismatch {
    /// The kind found.
    pub found: AmountKind,
}

/// Why the worst window cannot be worked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExposureError {
    /// Something is counted in another kind of amount.
    Kind(KindMismatch),
    /// Out of exact range.
    Arithmetic(ArithmeticError),
}

impl From<ArithmeticError> for ExposureError {
    fn from(e: ArithmeticError) -> Self {
        ExposureError::Arithmetic(e)
    }
}

/// A flow: from `start` to `end` (ms from now; `end` `None` is never) at
/// `rate` base units per ms, counted in `part`.
struct Flow {
    start: Exact,
    end: Option<Exact>,
    rate: Exact,
    part: Part,
}

impl Flow {
    /// What it gives between `from` and `to` (ms from now).
    fn between(&self, from: Exact, to: Exact) -> Result<Exact, ArithmeticError> {
        let lo = from.max(self.start);
        let hi = match self.end {
            Some(end) if end < to => end,
            _ => to,
        };
        if hi <= lo {
            return Ok(Exact::ZERO);
        }
        hi.sub(lo)?.mul(self.rate)
    }
}

/// The largest total of the drug that would fall in any window of
/// `window_ms` milliseconds ending at or after `now`, with the request.
///
/// With `t` measured in ms from now and `L` the window, the total in the
/// window ending at `t` is
///
/// ```text
/// W(t) = Σ m_k [t − τ_k < L] + Σ ρ_i · |[max(σ_i, t − L), min(t, e_i)]|
/// ```
///
/// over amounts `m_k` given at `τ_k ≤ 0` (pending boluses and a requested
/// bolus at 0) and flows at `ρ_i` from `σ_i` to `e_i` (running infusions
/// from their start, a requested infusion from 0; `e_i` = now + left ÷
/// `ρ_i`). `W` is piecewise linear between the instants where an amount
/// leaves the window (`τ_k + L`), a flow ends (`e_i`) or a flow's start
/// leaves (`σ_i + L`); after `L` only future flows count and their sum never
/// rises, so the largest total is at one of those instants in `[0, L]` (just
/// before an amount leaves) or at 0 or `L`. Every candidate is evaluated
/// exactly (`docs/ders.md` section 9).
pub fn worst_window(
    history: &History,
    kind: AmountKind,
    now: OffsetDateTime,
    window_ms: i128,
    request: Request,
) -> Result<Worst, ExposureError> {
    let check = |a: Amount| {
        if a.kind() == kind {
            Ok(())
        } else {
            Err(ExposureError::Kind(KindMismatch { found: a.kind() }))
        }
    };
    let window = Exact::int(window_ms);
    let hour = TimeUnit::Hour.millis();
    // Amounts, as (ms from now ≤ 0, base, which part).
    let mut points: Vec<(Exact, Exact, Part)> = Vec::new();
    let mut flows = Vec::new();
    let since = |t: OffsetDateTime| Exact::int(-(now - t).whole_milliseconds().max(0));
    for d in &history.deliveries {
        check(d.amount)?;
        // Dated after now (clocks that disagree): given just now, never
        // not given.
        let end = since(d.at);
        match given_over(d, end, since, hour)? {
            Some(flow) => flows.push(flow),
            None => points.push((end, d.amount.base(), Part::Given)),
        }
    }
    let mut pending_on = Vec::new();
    for p in &history.pending {
        check(p.amount)?;
        points.push((Exact::ZERO, p.amount.base(), Part::Pending));
        pending_on.extend(p.source.clone());
    }
    let mut running_on = Vec::new();
    for r in &history.running {
        check(r.per_hour)?;
        if let Some(left) = r.left {
            check(left)?;
        }
        let age = (now - r.since).whole_milliseconds().max(0);
        let rate = r.per_hour.base().div_int(hour)?;
        flows.push(Flow {
            start: Exact::int(-age),
            end: end_of(rate, r.left.map(Amount::base))?,
            rate,
            part: Part::Running,
        });
        running_on.extend(r.source.clone());
    }
    match request {
        Request::Bolus(amount) => points.push((Exact::ZERO, amount, Part::Request)),
        Request::Infusion { per_hour, left } => {
            let rate = per_hour.div_int(hour)?;
            flows.push(Flow {
                start: Exact::ZERO,
                end: end_of(rate, left)?,
                rate,
                part: Part::Request,
            });
        }
    }
    // Amounts that have left the window already never come back.
    points.retain(|(at, _, _)| Exact::ZERO.sub(*at).is_ok_and(|age| age < window));
    points.sort_by_key(|p| p.0);

    let mut worst = largest(&points, &flows, window)?;
    for on in [&mut running_on, &mut pending_on] {
        on.sort();
        on.dedup();
    }
    worst.running_on = running_on;
    worst.pending_on = pending_on;
    Ok(worst)
}

/// The largest window total over the candidate instants (see
/// [`worst_window`]); `points` sorted oldest first.
fn largest(
    points: &[(Exact, Exact, Part)],
    flows: &[Flow],
    window: Exact,
) -> Result<Worst, ArithmeticError> {
    let mut candidates = vec![Exact::ZERO, window];
    for (at, _, _) in points {
        candidates.push(at.add(window)?);
    }
    for f in flows {
        if let Some(end) = f.end {
            candidates.push(end);
            candidates.push(end.add(window)?);
        }
        candidates.push(f.start.add(window)?);
    }
    // Sums of each part over the amounts from index i on (they are sorted
    // oldest first), so that a candidate costs a binary search.
    let mut suffix = vec![[Exact::ZERO; 3]; points.len() + 1];
    for (i, (_, amount, part)) in points.iter().enumerate().rev() {
        let mut sums = suffix[i + 1];
        sums[*part as usize] = sums[*part as usize].add(*amount)?;
        suffix[i] = sums;
    }
    let mut worst: Option<Worst> = None;
    for t in candidates {
        if t.is_negative() || t > window {
            continue;
        }
        let from = t.sub(window)?;
        // At 0 the window is (−L, 0]; after 0 this is the total just before
        // t, so an amount leaving exactly at t is still in.
        let first = if t.is_zero() {
            points.partition_point(|(at, _, _)| *at <= from)
        } else {
            points.partition_point(|(at, _, _)| *at < from)
        };
        let mut sums = [
            suffix[first][0],
            suffix[first][1],
            suffix[first][2],
            Exact::ZERO,
        ];
        for f in flows {
            let i = f.part as usize;
            sums[i] = sums[i].add(f.between(from, t)?)?;
        }
        let [given, pending, request, running] = sums;
        let total = given.add(running)?.add(pending)?.add(request)?;
        if worst.as_ref().is_none_or(|x| total > x.total) {
            worst = Some(Worst {
                total,
                given,
                running,
                pending,
                request,
                running_on: Vec::new(),
                pending_on: Vec::new(),
            });
        }
    }
    Ok(worst.expect("0 is always a candidate"))
}

/// When a flow at `rate` with `left` to give stops, in ms from now.
fn end_of(rate: Exact, left: Option<Exact>) -> Result<Option<Exact>, ArithmeticError> {
    match left {
        None => Ok(None),
        Some(_) if rate.is_zero() => Ok(Some(Exact::ZERO)),
        Some(left) => Ok(Some(left.max(Exact::ZERO).div(rate)?)),
    }
}

/// Which part of the total an amount or a flow is (an index into the sums;
/// amounts are never `Running`).
#[derive(Debug, Clone, Copy)]
enum Part {
    Given = 0,
    Pending = 1,
    Request = 2,
    Running = 3,
}

/// An infusion's amount given at up to its rate, ending at `end` (ms from
/// now), as a flow placed as late as it can have run: from `end` − amount ÷
/// rate (not before its `since`) to `end`. `None`: counted at `end` alone.
fn given_over(
    d: &Delivered,
    end: Exact,
    since: impl Fn(OffsetDateTime) -> Exact,
    hour: i128,
) -> Result<Option<Flow>, ExposureError> {
    let Some(rate) = d.rate else { return Ok(None) };
    if rate.kind() != d.amount.kind() {
        return Err(ExposureError::Kind(KindMismatch { found: rate.kind() }));
    }
    let per_ms = rate.base().div_int(hour)?;
    if per_ms.is_zero() || per_ms.is_negative() {
        return Ok(None);
    }
    let mut start = end.sub(d.amount.base().div(per_ms)?)?;
    if let Some(s) = d.since {
        start = start.max(since(s));
    }
    if start >= end {
        return Ok(None);
    }
    Ok(Some(Flow {
        start,
        end: Some(end),
        rate: d.amount.base().div(end.sub(start)?)?,
        part: Part::Given,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{AmountUnit, parse_amount};

    fn ug(text: &str) -> Amount {
        parse_amount(&format!("{text} micrograms"))
            .expect("an amount")
            .0
    }

    fn base_ug(n: i128) -> Exact {
        Exact::int(n * 1_000)
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-11-21 03:00 UTC);
    const HOUR: i128 = 3_600_000;

    #[test]
    fn an_amount_exactly_one_window_old_has_left_it() {
        let h = History {
            deliveries: vec![
                Delivered {
                    at: NOW - time::Duration::hours(1),
                    amount: ug("100"),
                    rate: None,
                    since: None,
                },
                Delivered {
                    at: NOW - time::Duration::minutes(59),
                    amount: ug("30"),
                    rate: None,
                    since: None,
                },
            ],
            ..History::default()
        };
        let w = worst_window(&h, AmountKind::Mass, NOW, HOUR, Request::Bolus(base_ug(5)))
            .expect("one kind of amount");
        assert_eq!(w.total, base_ug(35));
        assert_eq!(w.given, base_ug(30));
        assert_eq!(w.request, base_ug(5));
    }

    #[test]
    fn a_running_infusion_counts_its_past_and_its_future_up_to_what_is_left() {
        // Since 30 min ago at 120 micrograms/h: 60 in the past half hour,
        // 60 in the next; with only 20 left, 60 + 20.
        let running = |left: Option<&str>| History {
            running: vec![Running {
                since: NOW - time::Duration::minutes(30),
                per_hour: ug("120"),
                left: left.map(ug),
                source: Some("p2".to_owned()),
            }],
            ..History::default()
        };
        let w = worst_window(
            &running(None),
            AmountKind::Mass,
            NOW,
            HOUR,
            Request::Bolus(Exact::ZERO),
        )
        .expect("one kind of amount");
        assert_eq!(w.total, base_ug(120));
        assert_eq!(w.running_on, vec!["p2".to_owned()]);
        let w = worst_window(
            &running(Some("20")),
            AmountKind::Mass,
            NOW,
            HOUR,
            Request::Bolus(Exact::ZERO),
        )
        .expect("one kind of amount");
        assert_eq!(w.total, base_ug(80));
        // A requested infusion beside it, bounded by its container.
        let w = worst_window(
            &running(None),
            AmountKind::Mass,
            NOW,
            HOUR,
            Request::Infusion {
                per_hour: base_ug(100),
                left: Some(base_ug(25)),
            },
        )
        .expect("one kind of amount");
        assert_eq!(w.total, base_ug(145));
        assert_eq!(w.request, base_ug(25));
    }

    #[test]
    fn the_worst_instant_is_just_before_an_amount_leaves() {
        // 16 given 10 min ago; an infusion at 4 per hour from now: just
        // before the 16 leaves (50 min on) 16 + 3.333...
        let h = History {
            deliveries: vec![Delivered {
                at: NOW - time::Duration::minutes(10),
                amount: ug("16"),
                rate: None,
                since: None,
            }],
            ..History::default()
        };
        let w = worst_window(
            &h,
            AmountKind::Mass,
            NOW,
            HOUR,
            Request::Infusion {
                per_hour: base_ug(4),
                left: None,
            },
        )
        .expect("one kind of amount");
        let expected = base_ug(16)
            .add(Exact::ratio(4 * 1_000 * 50, 60).expect("exact"))
            .expect("exact");
        assert_eq!(w.total, expected);
    }

    #[test]
    fn an_infusion_that_ended_counts_as_late_as_it_can_have_run() {
        // 100 micrograms at up to 100 micrograms/h, ended 30 min ago: it ran
        // from 90 to 30 min ago at the latest, so the hour ending now holds
        // 50 of it, and the hour ending at 30 min from now none. As one lump
        // 30 min ago it would hold all 100 for another half hour.
        let ended = |rate: Option<&str>, since: Option<OffsetDateTime>| History {
            deliveries: vec![Delivered {
                at: NOW - time::Duration::minutes(30),
                amount: ug("100"),
                rate: rate.map(ug),
                since,
            }],
            ..History::default()
        };
        let w = |h: &History| {
            worst_window(h, AmountKind::Mass, NOW, HOUR, Request::Bolus(Exact::ZERO))
                .expect("exact")
                .total
        };
        assert_eq!(w(&ended(None, None)), base_ug(100));
        assert_eq!(w(&ended(Some("100"), None)), base_ug(50));
        // It cannot have started before it was authorised, 40 min ago: then
        // all 100 ran in those 10 minutes.
        let since = Some(NOW - time::Duration::minutes(40));
        assert_eq!(w(&ended(Some("100"), since)), base_ug(100));
        // A syringe change: 2,500 given at 100 per hour over a day, then a
        // new infusion at 100 per hour: the hour holds 100 at most, not 2,600.
        let day = History {
            deliveries: vec![Delivered {
                at: NOW,
                amount: ug("2500"),
                rate: Some(ug("100")),
                since: Some(NOW - time::Duration::hours(25)),
            }],
            ..History::default()
        };
        let total = worst_window(
            &day,
            AmountKind::Mass,
            NOW,
            HOUR,
            Request::Infusion {
                per_hour: base_ug(100),
                left: None,
            },
        )
        .expect("exact")
        .total;
        assert_eq!(total, base_ug(100));
    }

    #[test]
    fn another_kind_of_amount_is_refused() {
        let h = History {
            pending: vec![Pending {
                amount: Amount::new(Exact::int(2), AmountUnit::Unit).expect("exact"),
                source: None,
            }],
            ..History::default()
        };
        assert!(matches!(
            worst_window(&h, AmountKind::Mass, NOW, HOUR, Request::Bolus(Exact::ZERO)),
            Err(ExposureError::Kind(_))
        ));
    }
}
