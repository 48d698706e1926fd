//! `pumpgwd staff add|remove|list|set-pin`: the staff file of a gateway,
//! with every change an event in its log. PINs are read from the terminal
//! with echo off (twice), or from standard input with `--pin-stdin` for
//! provisioning scripts; they are never printed or logged.

use std::io::{BufRead as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::Path;

use anyhow::{Context as _, anyhow};
use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
use pumpgw::library::Role;
use pumpgw::staff::{Roster, attempts};
use pumpgw::store::{Event, log::Log};

use crate::{EXIT_SOFTWARE, EXIT_USAGE};

/// A role from the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum RoleArg {
    /// Confirms concentrations and boluses of drugs that are not high-alert
    /// (and soft overrides where the library's policy allows nurses).
    Nurse,
    /// Confirms concentrations and every bolus (and soft overrides where
    /// the library's policy allows doctors).
    Doctor,
    /// Confirms nothing at the bedside.
    Pharmacist,
    /// Confirms nothing at the bedside.
    #[value(name = "biomedical_engineer")]
    BiomedicalEngineer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Nurse => Role::Nurse,
            RoleArg::Doctor => Role::Doctor,
            RoleArg::Pharmacist => Role::Pharmacist,
            RoleArg::BiomedicalEngineer => Role::BiomedicalEngineer,
        }
    }
}

/// Reads a PIN: one line of stdin, or twice from the terminal, unechoed.
fn read_pin(from_stdin: bool, whose: &str) -> Result<String, (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (EXIT_USAGE, e);
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the PIN from standard input")
            .map_err(usage)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            usage(anyhow!(
                "no terminal to ask for the PIN ({e}): give it on standard input with --pin-stdin"
            ))
        })?;
    let ask = |prompt: &str| -> Result<String, (u8, anyhow::Error)> {
        let before = tcgetattr(tty.as_fd())
            .map_err(|e| usage(anyhow!("the terminal cannot hide the PIN: {e}")))?;
        let mut quiet = before.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        tcsetattr(tty.as_fd(), SetArg::TCSANOW, &quiet)
            .map_err(|e| usage(anyhow!("the terminal cannot hide the PIN: {e}")))?;
        let mut out = &tty;
        let _ = write!(out, "{prompt}");
        let _ = out.flush();
        let mut line = String::new();
        let read = std::io::BufReader::new(&tty).read_line(&mut line);
        // Echo comes back whatever happened.
        let _ = tcsetattr(tty.as_fd(), SetArg::TCSANOW, &before);
        read.context("cannot read the PIN").map_err(usage)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let first = ask(&format!("New PIN for {whose} (6 to 12 digits): "))?;
    let second = ask("The same PIN again: ")?;
    if first != second {
        return Err(usage(anyhow!("the two PINs differ; nothing was changed")));
    }
    Ok(first)
}

fn load(config: &Path) -> Result<(crate::pharmacy::Gateway, Roster), (u8, anyhow::Error)> {
    let gw = crate::pharmacy::open(config)?;
    let roster = Roster::load(&gw.config.staff_file())
        .map_err(|e| (crate::EXIT_CONFIG, anyhow::Error::new(e)))?;
    Ok((gw, roster))
}

/// Saves the roster, then logs the change.
fn commit(
    gw: crate::pharmacy::Gateway,
    roster: &Roster,
    event: Event,
) -> Result<(), (u8, anyhow::Error)> {
    let file = gw.config.staff_file();
    roster
        .save(&file)
        .map_err(|e| (EXIT_SOFTWARE, anyhow::Error::new(e)))?;
    let context = gw.context();
    let mut log = Log::new(gw.store).map_err(|e| (EXIT_SOFTWARE, anyhow::Error::new(e)))?;
    if let Err(e) = log.append(vec![(context, event)], time::OffsetDateTime::now_utc()) {
        eprintln!(
            "pumpgwd: warning: {} was changed but the change could not be logged: {e}",
            file.display()
        );
    }
    Ok(())
}

fn refused(e: &impl std::fmt::Display) -> u8 {
    eprintln!("pumpgwd: {e}; nothing was changed");
    1
}

/// What `staff add` adds.
pub(crate) struct Add<'a> {
    pub(crate) config: &'a Path,
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) role: RoleArg,
    pub(crate) pin_stdin: bool,
    pub(crate) by: Option<String>,
}

/// `staff add`: 0 added, 1 refused.
pub(crate) fn add(a: &Add<'_>) -> Result<u8, (u8, anyhow::Error)> {
    let (gw, mut roster) = load(a.config)?;
    if roster.find(a.id).is_some() {
        return Ok(refused(&format!(
            "staff id {} exists already (use set-pin to change the PIN)",
            a.id
        )));
    }
    let pin = read_pin(a.pin_stdin, a.id)?;
    let role = Role::from(a.role);
    if let Err(e) = roster.add(a.id, a.name, role, &pin) {
        return Ok(refused(&e));
    }
    let file = gw.config.staff_file();
    commit(
        gw,
        &roster,
        Event::StaffChanged {
            action: "added".to_owned(),
            staff_id: a.id.to_owned(),
            role: attempts::role_text(role),
            by: crate::pharmacy::who(a.by.clone()),
        },
    )?;
    say!(
        "{} ({}, {}) added to {}",
        a.id,
        a.name.trim(),
        attempts::role_text(role),
        file.display()
    );
    Ok(0)
}

/// `staff remove`: 0 removed, 1 no such id.
pub(crate) fn remove(
    config: &Path,
    id: &str,
    by: Option<String>,
) -> Result<u8, (u8, anyhow::Error)> {
    let (gw, mut roster) = load(config)?;
    let member = match roster.remove(id) {
        Ok(m) => m,
        Err(e) => return Ok(refused(&e)),
    };
    commit(
        gw,
        &roster,
        Event::StaffChanged {
            action: "removed".to_owned(),
            staff_id: id.to_owned(),
            role: attempts::role_text(member.role),
            by: crate::pharmacy::who(by),
        },
    )?;
    say!("{id} ({}) removed", member.name);
    Ok(0)
}

/// `staff set-pin`: 0 set (and any lockout cleared), 1 refused.
pub(crate) fn set_pin(
    config: &Path,
    id: &str,
    pin_stdin: bool,
    by: Option<String>,
) -> Result<u8, (u8, anyhow::Error)> {
    let (gw, mut roster) = load(config)?;
    if roster.find(id).is_none() {
        return Ok(refused(&format!("no staff id {id}")));
    }
    let pin = read_pin(pin_stdin, id)?;
    let role = match roster.set_pin(id, &pin) {
        Ok(m) => m.role,
        Err(e) => return Ok(refused(&e)),
    };
    attempts::clear(&gw.store, id).map_err(|e| (EXIT_SOFTWARE, anyhow::Error::new(e)))?;
    commit(
        gw,
        &roster,
        Event::StaffChanged {
            action: "pin_set".to_owned(),
            staff_id: id.to_owned(),
            role: attempts::role_text(role),
            by: crate::pharmacy::who(by),
        },
    )?;
    say!("new PIN set for {id}; any lockout is lifted");
    Ok(0)
}

/// `staff list`.
pub(crate) fn list(config: &Path, json: bool) -> Result<u8, (u8, anyhow::Error)> {
    let (gw, roster) = load(config)?;
    let now = time::OffsetDateTime::now_utc();
    let locked =
        attempts::locked(&gw.store, now).map_err(|e| (EXIT_SOFTWARE, anyhow::Error::new(e)))?;
    let lock_of = |id: &str| {
        locked
            .iter()
            .find(|(l, _)| l == id)
            .map(|(_, u)| pumpgw::store::record::time_text(*u))
    };
    if json {
        let rows: Vec<serde_json::Value> = roster
            .staff
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id,
                    "name": m.name,
                    "role": attempts::role_text(m.role),
                    "locked_until": lock_of(&m.id),
                })
            })
            .collect();
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "staff": rows }))
                .map_err(|e| (EXIT_SOFTWARE, e.into()))?
        );
        return Ok(0);
    }
    if roster.staff.is_empty() {
        say!(
            "no staff in {}: nobody can confirm anything at this gateway's terminal",
            gw.config.staff_file().display()
        );
        return Ok(0);
    }
    say!("{:<24} {:<20} {:<30} PIN", "ID", "ROLE", "NAME");
    for m in &roster.staff {
        say!(
            "{:<24} {:<20} {:<30} {}",
            m.id,
            attempts::role_text(m.role),
            m.name,
            lock_of(&m.id).map_or_else(|| "set".to_owned(), |u| format!("LOCKED OUT until {u}"))
        );
    }
    Ok(0)
}
