//! The MQTT topic tree (docs/mqtt.md) and the check that keeps a configured
//! name from becoming a wildcard, an empty level or an extra level.
//!
//! ```text
//! pumpgw/v1/<site>/<gateway>/events                 QoS 1, event batches
//! pumpgw/v1/<site>/<gateway>/status                 retained, gateway status (+ Last Will)
//! pumpgw/v1/<site>/<gateway>/pumps/<pump>/status    retained, one pump
//! pumpgw/v1/<site>/library/<care-area or all>       retained, signed library
//! ```

/// The root of every topic.
pub const ROOT: &str = "pumpgw/v1";
/// The reserved second level of library topics.
pub const LIBRARY: &str = "library";
/// The library topic level that every care area takes.
pub const ALL_AREAS: &str = "all";

/// Checks one configured name used as a topic level: not empty, no `/`
/// (an extra level), no `+` or `#` (wildcards), no NUL, not starting with
/// `$` (broker topics), at most 64 bytes.
pub fn check_segment(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty; it names an MQTT topic level"));
    }
    if value.len() > 64 {
        return Err(format!("{what} {value:?} is longer than 64 bytes"));
    }
    if let Some(c) = value.chars().find(|c| matches!(c, '/' | '+' | '#' | '\0')) {
        return Err(format!(
            "{what} {value:?} contains {c:?}, which MQTT reads as a level separator or wildcard"
        ));
    }
    if value.starts_with('$') {
        return Err(format!(
            "{what} {value:?} starts with '$', which brokers reserve"
        ));
    }
    Ok(())
}

/// One gateway's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    site: String,
    gateway: String,
}

impl Topics {
    /// The topics of `gateway` at `site` (both already checked).
    pub fn new(site: &str, gateway: &str) -> Topics {
        Topics {
            site: site.to_owned(),
            gateway: gateway.to_owned(),
        }
    }

    /// Event batches.
    pub fn events(&self) -> String {
        format!("{ROOT}/{}/{}/events", self.site, self.gateway)
    }

    /// The gateway's retained status (and its Last Will).
    pub fn status(&self) -> String {
        format!("{ROOT}/{}/{}/status", self.site, self.gateway)
    }

    /// One pump's retained status.
    pub fn pump_status(&self, pump: &str) -> String {
        format!("{ROOT}/{}/{}/pumps/{pump}/status", self.site, self.gateway)
    }

    /// The library topics this gateway takes: its care area's and `all`.
    pub fn libraries(&self, care_area: &str) -> [String; 2] {
        [
            library(&self.site, care_area),
            library(&self.site, ALL_AREAS),
        ]
    }
}

/// A library topic.
pub fn library(site: &str, area: &str) -> String {
    format!("{ROOT}/{site}/{LIBRARY}/{area}")
}

/// Filters for every gateway and pump status at one site, or at every site.
pub fn status_filters(site: Option<&str>) -> [String; 2] {
    let site = site.unwrap_or("+");
    [
        format!("{ROOT}/{site}/+/status"),
        format!("{ROOT}/{site}/+/pumps/+/status"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_built_from_checked_segments() {
        let t = Topics::new("st-elsewhere", "icu-bed-12");
        assert_eq!(t.events(), "pumpgw/v1/st-elsewhere/icu-bed-12/events");
        assert_eq!(t.status(), "pumpgw/v1/st-elsewhere/icu-bed-12/status");
        assert_eq!(
            t.pump_status("pump-a"),
            "pumpgw/v1/st-elsewhere/icu-bed-12/pumps/pump-a/status"
        );
        assert_eq!(
            t.libraries("adult-icu"),
            [
                "pumpgw/v1/st-elsewhere/library/adult-icu".to_owned(),
                "pumpgw/v1/st-elsewhere/library/all".to_owned()
            ]
        );
        assert_eq!(status_filters(None)[1], "pumpgw/v1/+/+/pumps/+/status");
    }

    #[test]
    fn wildcards_separators_and_empty_levels_are_refused() {
        for bad in ["", "a/b", "a+", "#", "x\0", "$SYS", &"x".repeat(65)] {
            assert!(check_segment("site", bad).is_err(), "{bad:?}");
        }
        for good in ["st-elsewhere", "ICU 3", "bed_12.a", "ünï"] {
            assert!(check_segment("site", good).is_ok(), "{good:?}");
        }
        assert!(check_segment("site", "a/b").unwrap_err().contains("'/'"));
    }
}
