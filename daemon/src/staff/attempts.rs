//! Checking a PIN at the terminal: the lockout after repeated wrong PINs
//! (kept in the store, so a restart does not reset it), and an event in the
//! log for every attempt, whatever its result, in the same transaction as
//! the lockout's change.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use super::pin::PinHash;
use super::roster::{Member, Roster};
use crate::store::log::append_in;
use crate::store::record::time_text;
use crate::store::{Context, Event, Store, StoreError};

/// When wrong PINs lock someone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Wrong PINs in a row that lock.
    pub after: u32,
    /// For how long.
    pub duration: time::Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            after: 5,
            duration: time::Duration::minutes(5),
        }
    }
}

/// What a PIN attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinOutcome {
    /// The right PIN: this person.
    Accepted(Member),
    /// A wrong PIN; `left` more before the lockout.
    Wrong {
        /// Wrong PINs in a row now.
        failures: u32,
        /// Attempts left before the lockout.
        left: u32,
    },
    /// Locked out until then (the PIN was not checked).
    LockedOut {
        /// Until when.
        until: OffsetDateTime,
    },
    /// No such staff id.
    Unknown,
}

impl PinOutcome {
    /// The `result` word in the log.
    pub fn word(&self) -> &'static str {
        match self {
            PinOutcome::Accepted(_) => "accepted",
            PinOutcome::Wrong { .. } => "wrong_pin",
            PinOutcome::LockedOut { .. } => "locked_out",
            PinOutcome::Unknown => "unknown_staff",
        }
    }
}

fn parse_time(t: Option<String>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok())
}

/// Wrong PINs in a row and the lock, as stored.
fn state(
    conn: &rusqlite::Connection,
    id: &str,
) -> Result<(u32, Option<OffsetDateTime>), rusqlite::Error> {
    let row: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT failures, locked_until FROM pin_attempts WHERE staff_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map_or((0, None), |(f, l)| {
        (u32::try_from(f).unwrap_or(u32::MAX), parse_time(l))
    }))
}

/// Who is locked out now, and until when.
pub fn locked(
    store: &Store,
    now: OffsetDateTime,
) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
    let mut st = store
        .conn
        .prepare("SELECT staff_id, locked_until FROM pin_attempts WHERE locked_until IS NOT NULL")
        .map_err(store.err())?;
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .map_err(store.err())?;
    let mut out = Vec::new();
    for row in rows {
        let (id, until) = row.map_err(store.err())?;
        if let Some(u) = parse_time(until).filter(|u| *u > now) {
            out.push((id, u));
        }
    }
    Ok(out)
}

/// Clears someone's wrong PINs and lock (a new PIN was set).
pub fn clear(store: &Store, id: &str) -> Result<(), StoreError> {
    store
        .conn
        .execute("DELETE FROM pin_attempts WHERE staff_id = ?1", [id])
        .map(drop)
        .map_err(store.err())
}

/// One PIN entered.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The staff id given.
    pub staff_id: &'a str,
    /// The PIN typed.
    pub pin: &'a str,
    /// What for, e.g. "bolus confirmation".
    pub purpose: &'a str,
}

/// Checks an attempt. It is logged whatever its result; a locked-out
/// person's PIN is not even checked.
pub fn check_pin(
    store: &mut Store,
    context: &Context,
    roster: &Roster,
    attempt: Attempt<'_>,
    lockout: Lockout,
    now: OffsetDateTime,
) -> Result<PinOutcome, StoreError> {
    let Attempt {
        staff_id,
        pin,
        purpose,
    } = attempt;
    let (_, locked_until) = state(&store.conn, staff_id).map_err(store.err())?;
    let member = roster.find(staff_id);
    // The slow derivation happens outside the write lock.
    let matched = match (locked_until.filter(|u| *u > now), member) {
        (Some(_), _) => None,
        (None, Some(m)) => Some(m.pin.verify(pin)),
        (None, None) => {
            // As slow as a real check, so timing does not tell who exists.
            let _ = PinHash::nobody().verify(pin);
            Some(false)
        }
    };
    let path = store.path.clone();
    let err = |source| StoreError::Sqlite {
        path: path.clone(),
        source,
    };
    let tx = store
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    // Again under the lock: another attempt may have locked meanwhile.
    let (failures, locked_until) = state(&tx, staff_id).map_err(err)?;
    let outcome = match (locked_until.filter(|u| *u > now), member, matched) {
        (Some(until), _, _) => PinOutcome::LockedOut { until },
        // Locked at the first look and cleared since: the PIN was not
        // checked, so it is not accepted.
        (None, _, None) => PinOutcome::LockedOut { until: now },
        (None, None, Some(_)) => PinOutcome::Unknown,
        (None, Some(m), Some(true)) => {
            tx.execute("DELETE FROM pin_attempts WHERE staff_id = ?1", [staff_id])
                .map_err(err)?;
            PinOutcome::Accepted(m.clone())
        }
        (None, Some(_), Some(false)) => {
            // An expired lock starts the count again.
            let failures = if locked_until.is_some() {
                1
            } else {
                failures + 1
            };
            let lock = (failures >= lockout.after).then(|| now + lockout.duration);
            tx.execute(
                "INSERT INTO pin_attempts (staff_id, failures, locked_until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (staff_id) DO UPDATE SET failures = ?2, locked_until = ?3",
                params![staff_id, i64::from(failures), lock.map(time_text)],
            )
            .map_err(err)?;
            match lock {
                Some(until) => PinOutcome::LockedOut { until },
                None => PinOutcome::Wrong {
                    failures,
                    left: lockout.after - failures,
                },
            }
        }
    };
    let (failures_now, until_now) = match &outcome {
        PinOutcome::Wrong { failures, .. } => (*failures, None),
        PinOutcome::LockedOut { until } => (lockout.after, Some(time_text(*until))),
        _ => (0, None),
    };
    append_in(
        &tx,
        vec![(
            context.clone(),
            Event::PinChecked {
                staff_id: staff_id.to_owned(),
                role: member.map(|m| role_text(m.role)),
                purpose: purpose.to_owned(),
                result: outcome.word().to_owned(),
                failures: failures_now,
                locked_until: until_now,
            },
        )],
        now,
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(outcome)
}

/// A role as the log writes it.
pub fn role_text(role: crate::library::Role) -> String {
    crate::format::name(&role)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::Role;
    use crate::store::log::tail;

    fn setup() -> (tempfile::TempDir, Store, Roster, Context) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::file_in(dir.path())).unwrap();
        let mut roster = Roster::default();
        roster
            .add("d.patel", "Dev Patel", Role::Doctor, "508162")
            .unwrap();
        let ctx = Context {
            gateway: "bed-1".into(),
            pump: Some("pump-a".into()),
            care_area: "adult-icu".into(),
            library_version: Some(12),
        };
        (dir, store, roster, ctx)
    }

    #[test]
    fn five_wrong_pins_lock_out_even_the_right_one_until_the_time_is_up() {
        let (_d, mut store, roster, ctx) = setup();
        let t0 = time::macros::datetime!(2026-11-21 03:00 UTC);
        let lock = Lockout::default();
        let try_pin = |store: &mut Store, pin: &str, at| {
            let a = Attempt {
                staff_id: "d.patel",
                pin,
                purpose: "bolus confirmation",
            };
            check_pin(store, &ctx, &roster, a, lock, at).unwrap()
        };
        for i in 1..=4u32 {
            assert_eq!(
                try_pin(&mut store, "111111", t0),
                PinOutcome::Wrong {
                    failures: i,
                    left: 5 - i
                }
            );
        }
        let until = t0 + time::Duration::minutes(5);
        assert_eq!(
            try_pin(&mut store, "111111", t0),
            PinOutcome::LockedOut { until }
        );
        // The right PIN during the lockout: still locked, not checked.
        assert_eq!(
            try_pin(&mut store, "508162", t0 + time::Duration::minutes(4)),
            PinOutcome::LockedOut { until }
        );
        assert_eq!(
            locked(&store, t0).unwrap(),
            vec![("d.patel".to_owned(), until)]
        );
        // After it: accepted, and the count is clear.
        let later = until + time::Duration::seconds(1);
        assert!(
            matches!(try_pin(&mut store, "508162", later), PinOutcome::Accepted(m) if m.id == "d.patel")
        );
        assert!(locked(&store, later).unwrap().is_empty());
        let log = tail(&store, 10).unwrap();
        assert_eq!(log.len(), 7, "every attempt is an event");
        let results: Vec<String> = log
            .iter()
            .map(|r| match &r.event {
                Event::PinChecked { result, .. } => result.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            results,
            [
                "wrong_pin",
                "wrong_pin",
                "wrong_pin",
                "wrong_pin",
                "locked_out",
                "locked_out",
                "accepted"
            ]
        );
    }

    #[test]
    fn an_unknown_id_is_logged_and_a_cleared_count_starts_again() {
        let (_d, mut store, roster, ctx) = setup();
        let now = time::macros::datetime!(2026-11-21 03:00 UTC);
        let try_pin = |store: &mut Store, staff_id: &str, pin: &str| {
            let a = Attempt {
                staff_id,
                pin,
                purpose: "concentration confirmation",
            };
            check_pin(store, &ctx, &roster, a, Lockout::default(), now).unwrap()
        };
        assert_eq!(try_pin(&mut store, "nobody", "508162"), PinOutcome::Unknown);
        try_pin(&mut store, "d.patel", "000001");
        clear(&store, "d.patel").unwrap();
        let out = try_pin(&mut store, "d.patel", "000001");
        assert_eq!(
            out,
            PinOutcome::Wrong {
                failures: 1,
                left: 4
            }
        );
    }
}
