//! How an error is told to a person: its message and then each cause, once.
//!
//! Many errors here name their cause in their own message ("cannot read
//! FILE: No such file") and also return it as their `source()`, so that
//! logs and machines keep the chain; printing the whole chain would then
//! say the cause twice.

use std::error::Error;

/// `e`'s message, then each cause not already said, joined by ": ".
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut said = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !said.contains(&text) {
            said.push_str(": ");
            said.push_str(&text);
        }
        cause = c.source();
    }
    said
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Read {
        path: String,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("drug library refused")]
    struct Refused(#[source] Read);

    #[test]
    fn each_cause_is_said_once() {
        let e = Refused(Read {
            path: "lib.json".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert_eq!(
            chain(&e),
            "drug library refused: cannot read lib.json: entity not found"
        );
    }

    #[test]
    fn a_cause_not_in_the_message_is_added() {
        let e = Read {
            path: "lib.json".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let wrapped = anyhow::Error::new(e).context("importing");
        assert_eq!(
            chain(wrapped.as_ref()),
            "importing: cannot read lib.json: entity not found"
        );
    }
}
