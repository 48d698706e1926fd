//! One daemon per data folder. Two daemons on one event log would both
//! write their starts and stops into it and fight over the terminal socket;
//! the second is refused before it touches anything, by an exclusive
//! `flock` on `pumpgw.lock` in the data folder, which the kernel releases
//! however the first one ends (a crash, SIGKILL, a power cut leave no
//! stale lock). The file holds the holder's process id, for the message.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::StartError;

/// The lock file's name in the data folder.
pub const LOCK_FILE: &str = "pumpgw.lock";

/// The claim on a data folder; released when dropped.
#[derive(Debug)]
pub struct Instance(#[allow(dead_code, reason = "held for its lock")] Flock<std::fs::File>);

/// Claims `data_dir` for this process (creating the folder if needed), or
/// says who holds it.
pub fn claim(data_dir: &Path) -> Result<Instance, StartError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let path = data_dir.join(LOCK_FILE);
    let io = |source| StartError::DataDir {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, errno)) if errno != nix::errno::Errno::EWOULDBLOCK => {
            // Not "held by another" (a file system without locks, say).
            return Err(io(std::io::Error::from(errno)));
        }
        Err((mut file, _)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another pumpgwd".to_owned()
            } else {
                format!("another pumpgwd (process {holder})")
            };
            return Err(StartError::InUse(format!(
                "data folder {} is in use by {who}: one daemon per data folder (stop the other one, or give this one its own data_dir)",
                data_dir.display()
            )));
        }
    };
    lock.set_len(0).map_err(io)?;
    lock.rewind().map_err(io)?;
    write!(lock, "{}", std::process::id()).map_err(io)?;
    Ok(Instance(lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_and_names_the_first_then_free_once_dropped() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let first = claim(dir.path()).expect("the folder is free");
        let Err(StartError::InUse(said)) = claim(dir.path()) else {
            panic!("a second claim must be refused")
        };
        assert!(said.contains(&std::process::id().to_string()), "{said}");
        assert!(said.contains("one daemon per data folder"), "{said}");
        drop(first);
        claim(dir.path()).expect("free again");
    }
}
