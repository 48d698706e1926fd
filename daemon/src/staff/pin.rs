//! Staff PINs: the rules a PIN must meet, and its storage as
//! PBKDF2-HMAC-SHA256 (ring) with a random per-person salt. The PIN itself
//! is never stored or logged.

use std::num::NonZeroU32;

use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The only algorithm written.
pub const ALGORITHM: &str = "pbkdf2-hmac-sha256";
/// Fewest iterations accepted in a staff file.
pub const MIN_ITERATIONS: u32 = 100_000;
/// Iterations used for new PINs.
pub const DEFAULT_ITERATIONS: u32 = 200_000;
/// Shortest PIN.
pub const MIN_DIGITS: usize = 6;
/// Longest PIN.
pub const MAX_DIGITS: usize = 12;

const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// A PIN, stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinHash {
    /// [`ALGORITHM`].
    pub algorithm: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt, hex.
    pub salt: String,
    /// Derived key, hex.
    pub hash: String,
}

/// Why a PIN or a stored PIN cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// Not 6 to 12 digits.
    #[error("PIN refused: a PIN is {MIN_DIGITS} to {MAX_DIGITS} digits (0 to 9), nothing else")]
    Shape,
    /// Too easy to guess.
    #[error("PIN refused ({0}): choose a PIN that is not a repeated digit or a run such as 123456")]
    Guessable(&'static str),
    /// The stored form is not one this gateway accepts.
    #[error("stored PIN: {0}")]
    Stored(String),
    /// The system's random source failed.
    #[error("no random salt could be drawn")]
    Random,
}

/// Checks a new PIN: 6 to 12 digits, not one digit repeated, not a run
/// up or down.
pub fn check_rules(pin: &str) -> Result<(), PinError> {
    let digits: Vec<u8> = pin.bytes().collect();
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit)
    {
        return Err(PinError::Shape);
    }
    if digits.iter().all(|d| *d == digits[0]) {
        return Err(PinError::Guessable("one digit repeated"));
    }
    let steps: Vec<i16> = digits
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1) {
        return Err(PinError::Guessable("a run of digits"));
    }
    Ok(())
}

fn derive(pin: &str, salt: &[u8], iterations: NonZeroU32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        pin.as_bytes(),
        &mut out,
    );
    out
}

impl PinHash {
    /// Stores a PIN that passed [`check_rules`], with a fresh salt.
    pub fn new(pin: &str, iterations: u32) -> Result<PinHash, PinError> {
        check_rules(pin)?;
        let n = NonZeroU32::new(iterations.max(MIN_ITERATIONS)).ok_or(PinError::Random)?;
        let mut salt = [0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| PinError::Random)?;
        Ok(PinHash {
            algorithm: ALGORITHM.to_owned(),
            iterations: n.get(),
            salt: hex::encode(salt),
            hash: hex::encode(derive(pin, &salt, n)),
        })
    }

    /// A stored PIN that no PIN matches (zero salt and hash), as slow to
    /// check as a real one: checked for an unknown staff id, so timing does
    /// not tell who exists.
    pub(crate) fn nobody() -> PinHash {
        PinHash {
            algorithm: ALGORITHM.to_owned(),
            iterations: DEFAULT_ITERATIONS,
            salt: "00".repeat(SALT_LEN),
            hash: "00".repeat(HASH_LEN),
        }
    }

    /// Checks the stored form: the algorithm, enough iterations, sizes.
    pub fn validate(&self) -> Result<(), PinError> {
        if self.algorithm != ALGORITHM {
            return Err(PinError::Stored(format!(
                "algorithm {:?} is not {ALGORITHM}",
                self.algorithm
            )));
        }
        if self.iterations < MIN_ITERATIONS {
            return Err(PinError::Stored(format!(
                "{} iterations is below the minimum of {MIN_ITERATIONS}: set the PIN again",
                self.iterations
            )));
        }
        let ok = |h: &str, n: usize| hex::decode(h).is_ok_and(|b| b.len() == n);
        if !ok(&self.salt, SALT_LEN) || !ok(&self.hash, HASH_LEN) {
            return Err(PinError::Stored(
                "salt or hash is not the right length of hex".to_owned(),
            ));
        }
        Ok(())
    }

    /// Whether `pin` is this PIN (constant time in the comparison).
    pub fn verify(&self, pin: &str) -> bool {
        let (Ok(salt), Ok(hash), Some(n)) = (
            hex::decode(&self.salt),
            hex::decode(&self.hash),
            NonZeroU32::new(self.iterations),
        ) else {
            return false;
        };
        self.algorithm == ALGORITHM
            && pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA256, n, &salt, pin.as_bytes(), &hash).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_six_to_twelve_digits_and_not_guessable() {
        assert!(check_rules("274913").is_ok());
        assert!(check_rules("274913580246").is_ok());
        for bad in ["12345", "2749135802461", "27491a", " 274913", "27 4913"] {
            assert_eq!(check_rules(bad), Err(PinError::Shape), "{bad:?}");
        }
        for bad in ["000000", "123456", "987654", "3456789"] {
            assert!(
                matches!(check_rules(bad), Err(PinError::Guessable(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_stored_pin_verifies_only_itself_and_never_holds_the_pin() {
        let h = PinHash::new("274913", MIN_ITERATIONS).unwrap();
        assert!(h.validate().is_ok());
        assert!(h.verify("274913"));
        assert!(!h.verify("274914"));
        assert!(!h.verify(""));
        let text = serde_json::to_string(&h).unwrap();
        assert!(!text.contains("274913"));
        let again = PinHash::new("274913", MIN_ITERATIONS).unwrap();
        assert_ne!(h.salt, again.salt, "a fresh salt each time");
        assert_ne!(h.hash, again.hash);
    }

    #[test]
    fn weak_or_damaged_stored_pins_are_refused() {
        let mut h = PinHash::new("274913", MIN_ITERATIONS).unwrap();
        h.iterations = 1_000;
        assert!(
            h.validate()
                .unwrap_err()
                .to_string()
                .contains("below the minimum")
        );
        let mut h = PinHash::new("274913", MIN_ITERATIONS).unwrap();
        h.salt.pop();
        assert!(h.validate().is_err());
        assert!(!h.verify("274913"));
        let mut h = PinHash::new("274913", MIN_ITERATIONS).unwrap();
        h.algorithm = "md5".into();
        assert!(h.validate().is_err());
        assert!(!h.verify("274913"));
    }
}
