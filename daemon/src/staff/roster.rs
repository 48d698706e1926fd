//! The staff file provisioned on a gateway (`docs/staff.md`): who may sign
//! at its terminal, with which role, and their PIN as PBKDF2 hashes. JSON,
//! read whole, checked whole, and written atomically (a temporary file,
//! fsync, rename), never readable by others.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::pin::{PinError, PinHash};
use crate::library::Role;

/// The `format` of a staff file.
pub const FORMAT: &str = "pumpgw-staff";

/// One person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Their id (badge or login): 1 to 64 of `a-z 0-9 . _ -`.
    pub id: String,
    /// Their name as the terminal shows it.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Their PIN, hashed.
    pub pin: PinHash,
}

/// The staff file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// [`FORMAT`].
    pub format: String,
    /// 1.
    pub format_version: u32,
    /// Everyone, in the order added.
    pub staff: Vec<Member>,
}

/// Why a staff file cannot be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a staff file.
    #[error("{path}: {detail}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// Others can read it.
    #[error(
        "{path} is readable by others (mode {mode:04o}); it holds PIN hashes: chmod 640 or 600 it"
    )]
    Exposed {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// A change that cannot be made.
    #[error("{0}")]
    Change(String),
    /// A PIN that cannot be used.
    #[error(transparent)]
    Pin(#[from] PinError),
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

impl Default for Roster {
    fn default() -> Self {
        Roster {
            format: FORMAT.to_owned(),
            format_version: 1,
            staff: Vec::new(),
        }
    }
}

impl Roster {
    /// Reads and checks a staff file; a file that does not exist is an
    /// empty roster (nobody can confirm anything: fail safe).
    pub fn load(path: &Path) -> Result<Roster, RosterError> {
        let shown = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Roster::default()),
            Err(source) => {
                return Err(RosterError::Io {
                    path: shown,
                    source,
                });
            }
        };
        let mode = std::fs::metadata(path)
            .map_err(|source| RosterError::Io {
                path: shown.clone(),
                source,
            })?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o007 != 0 {
            return Err(RosterError::Exposed { path: shown, mode });
        }
        let roster: Roster = serde_json::from_slice(&bytes).map_err(|e| RosterError::Invalid {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        roster.validate().map_err(|detail| RosterError::Invalid {
            path: shown,
            detail,
        })?;
        Ok(roster)
    }

    fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT || self.format_version != 1 {
            return Err(format!(
                "format {:?} version {} is not {FORMAT} version 1",
                self.format, self.format_version
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.staff {
            if !id_ok(&m.id) {
                return Err(format!(
                    "staff id {:?} must be 1 to 64 of a-z, 0-9, '.', '_', '-'",
                    m.id
                ));
            }
            if !seen.insert(m.id.as_str()) {
                return Err(format!("staff id {:?} appears twice", m.id));
            }
            if m.name.trim().is_empty() {
                return Err(format!("staff {} has no name", m.id));
            }
            m.pin
                .validate()
                .map_err(|e| format!("staff {}: {e}", m.id))?;
        }
        Ok(())
    }

    /// Writes the roster to `path` atomically, mode 0640.
    pub fn save(&self, path: &Path) -> Result<(), RosterError> {
        self.validate().map_err(RosterError::Change)?;
        let shown = path.display().to_string();
        let io = |source| RosterError::Io {
            path: shown.clone(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| RosterError::Change(e.to_string()))?;
        bytes.push(b'\n');
        tmp.write_all(&bytes).map_err(io)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o640))
            .map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        // The rename is durable once the folder is.
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }

    /// The member with this id.
    pub fn find(&self, id: &str) -> Option<&Member> {
        self.staff.iter().find(|m| m.id == id)
    }

    /// How a person is named on screens and in notices: "Nkechi Okafor
    /// (nurse)"; the id itself when nobody has it.
    pub fn named(&self, id: &str) -> String {
        self.find(id).map_or_else(
            || id.to_owned(),
            |m| format!("{} ({})", m.name, crate::format::name(&m.role)),
        )
    }

    /// Adds someone.
    pub fn add(&mut self, id: &str, name: &str, role: Role, pin: &str) -> Result<(), RosterError> {
        if !id_ok(id) {
            return Err(RosterError::Change(format!(
                "staff id {id:?} must be 1 to 64 of a-z, 0-9, '.', '_', '-'"
            )));
        }
        if name.trim().is_empty() {
            return Err(RosterError::Change("a name is needed".to_owned()));
        }
        if self.find(id).is_some() {
            return Err(RosterError::Change(format!(
                "staff id {id} exists already (use set-pin to change the PIN)"
            )));
        }
        let pin = PinHash::new(pin, super::pin::DEFAULT_ITERATIONS)?;
        self.staff.push(Member {
            id: id.to_owned(),
            name: name.trim().to_owned(),
            role,
            pin,
        });
        Ok(())
    }

    /// Removes someone; returns them.
    pub fn remove(&mut self, id: &str) -> Result<Member, RosterError> {
        let at = self
            .staff
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| RosterError::Change(format!("no staff id {id}")))?;
        Ok(self.staff.remove(at))
    }

    /// Sets someone's PIN.
    pub fn set_pin(&mut self, id: &str, pin: &str) -> Result<&Member, RosterError> {
        let hash = PinHash::new(pin, super::pin::DEFAULT_ITERATIONS)?;
        let m = self
            .staff
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or_else(|| RosterError::Change(format!("no staff id {id}")))?;
        m.pin = hash;
        Ok(m)
    }
}

/// A member for tests of who may confirm what (their PIN matches nothing).
#[cfg(test)]
pub(crate) fn test_member(id: &str, role: Role) -> Member {
    Member {
        id: id.to_owned(),
        name: format!("Name {id}"),
        role,
        pin: PinHash::nobody(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_round_trips_atomically_and_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.json");
        assert_eq!(Roster::load(&path).unwrap(), Roster::default());
        let mut r = Roster::default();
        r.add("n.okafor", "Nkechi Okafor", Role::Nurse, "274913")
            .unwrap();
        r.add("d.patel", "Dev Patel", Role::Doctor, "508162")
            .unwrap();
        r.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let back = Roster::load(&path).unwrap();
        assert_eq!(back, r);
        assert!(back.find("d.patel").unwrap().pin.verify("508162"));
        assert!(!std::fs::read_to_string(&path).unwrap().contains("508162"));
    }

    #[test]
    fn staff_are_named_with_their_role() {
        let mut r = Roster::default();
        r.add("d.patel", "Dev Patel", Role::Doctor, "508162")
            .expect("a valid entry");
        assert_eq!(r.named("d.patel"), "Dev Patel (doctor)");
        assert_eq!(r.named("someone"), "someone");
    }

    #[test]
    fn bad_changes_and_files_are_refused_with_what_is_wrong() {
        let mut r = Roster::default();
        r.add("n.okafor", "Nkechi Okafor", Role::Nurse, "274913")
            .unwrap();
        let e = r
            .add("n.okafor", "Other", Role::Doctor, "508162")
            .unwrap_err();
        assert!(e.to_string().contains("exists already"), "{e}");
        assert!(r.add("N Okafor", "x", Role::Nurse, "274913").is_err());
        assert!(r.add("x", "x", Role::Nurse, "123456").is_err());
        assert!(r.remove("nobody").is_err());
        assert!(r.set_pin("nobody", "274913").is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.json");
        r.save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Roster::load(&path).unwrap_err().to_string();
        assert!(e.contains("readable by others"), "{e}");
        std::fs::write(
            &path,
            "{\"format\":\"pumpgw-staff\",\"format_version\":1,\"staff\":[],\"x\":1}",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Roster::load(&path).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }
}
