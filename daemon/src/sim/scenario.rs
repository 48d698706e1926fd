//! Scenario files for `pump-sim` (TOML): who the simulated pump is, which
//! random faults it suffers, and the steps it plays, in order.
//!
//! The format is documented in `docs/pump-sim.md`; examples are in
//! `config/examples/scenarios/`.

use serde::Deserialize;

/// A whole scenario.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The pump's identity and settings.
    #[serde(default)]
    pub pump: PumpSpec,
    /// Random faults on every frame the pump sends.
    #[serde(default)]
    pub faults: RandomFaults,
    /// What the pump does, in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
}

/// `[pump]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PumpSpec {
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub firmware: String,
    /// Protocol versions offered in HELLO.
    pub versions: Vec<u8>,
    /// Care area the pump is set to.
    pub care_area: Option<String>,
    /// Patient weight ("70 kg"), sent with every programme.
    pub patient_weight: Option<String>,
    /// Battery charge in percent.
    pub battery_percent: u8,
    /// Library version the pump claims before any transfer (its hash is
    /// then a made-up one, so the gateway sees a mismatch).
    pub library_version: Option<u64>,
    /// Install libraries wrongly: report a hash that is not the file's (a
    /// pump with failing storage).
    pub corrupt_library: bool,
    /// Pull the cable this long (real time) after the first library chunk
    /// arrives, once.
    pub hang_up_during_transfer: Option<String>,
    /// What DELIVERY events say of the amount given.
    pub amount_infused: AmountReport,
    /// Send DELIVERY events whose volume is not a volume (a broken
    /// controller): the gateway refuses them and alarms.
    pub unreadable_volume: bool,
    /// The last event record number at start (default: the clock in ms, so
    /// that a restarted simulator goes on upwards). A small number plays a
    /// controller whose counter was reset.
    pub first_record: Option<u64>,
}

/// What a simulated pump says of the amount it gave (the gateway computes
/// it from the volume and compares).
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AmountReport {
    /// The volume times the programmed concentration.
    #[default]
    Given,
    /// Nothing (the key is left out).
    Omitted,
    /// Half of it, as a pump with a wrong figure would.
    Half,
}

impl Default for PumpSpec {
    fn default() -> Self {
        PumpSpec {
            manufacturer: "pumpgw".to_owned(),
            model: "pump-sim".to_owned(),
            serial: "SIM-0001".to_owned(),
            firmware: concat!("sim-", env!("CARGO_PKG_VERSION")).to_owned(),
            versions: vec![1, 2],
            care_area: None,
            patient_weight: None,
            battery_percent: 87,
            library_version: None,
            corrupt_library: false,
            hang_up_during_transfer: None,
            amount_infused: AmountReport::Given,
            unreadable_volume: false,
            first_record: None,
        }
    }
}

/// `[faults]`: per-frame probabilities in percent, from a seeded generator
/// so that a run can be repeated.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RandomFaults {
    /// Generator seed.
    pub seed: u64,
    /// Percent of frames not sent.
    pub drop_percent: u8,
    /// Percent of frames sent with one byte changed.
    pub corrupt_percent: u8,
    /// Percent of frames sent twice.
    pub duplicate_percent: u8,
    /// Percent of frames preceded by 1 to 64 random bytes.
    pub garbage_percent: u8,
}

/// What the gateway must answer to a programme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// An AUTHORISATION bound to the programme.
    Authorised,
    /// A DENIAL.
    Denied,
}

/// One step. `action` names it; the other keys are its settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Wait for the handshake.
    WaitOnline,
    /// Wait until a library (of this version, if given) is installed.
    WaitLibrary {
        /// Version to wait for.
        #[serde(default)]
        version: Option<u64>,
    },
    /// Load a container.
    Load {
        /// Drug id.
        drug: String,
        /// Concentration as programmed ("2500 micrograms in 50 mL").
        concentration: String,
        /// What the container's label really says, which simulated staff
        /// type at the terminal (default: as programmed). A label that
        /// differs from `concentration` is a wrong programme caught at load.
        #[serde(default)]
        label: Option<String>,
        /// Volume in the container ("50 mL").
        volume: String,
    },
    /// Ask to start a continuous infusion, and start it if authorised.
    Infuse {
        /// Dose rate or flow rate.
        rate: String,
        /// Volume to be infused.
        #[serde(default)]
        vtbi: Option<String>,
        /// The flow rate to claim instead of the pump's own arithmetic (to
        /// simulate a pump that computes wrongly).
        #[serde(default)]
        pump_flow_rate: Option<String>,
        /// The answer required; a different one fails the scenario.
        #[serde(default)]
        expect: Option<Expect>,
        /// A reason code the denial must contain.
        #[serde(default)]
        expect_code: Option<String>,
        /// The reason simulated staff give to override a soft limit (one of
        /// the library's); without it they decline.
        #[serde(default)]
        override_reason: Option<String>,
    },
    /// Ask to give a bolus, and give it if authorised.
    Bolus {
        /// Dose ("25 micrograms" or "0.5 micrograms/kg").
        dose: String,
        /// Over how long ("60 s").
        #[serde(default)]
        duration: Option<String>,
        /// The volume to claim instead of the pump's own arithmetic.
        #[serde(default)]
        pump_volume: Option<String>,
        /// The answer required.
        #[serde(default)]
        expect: Option<Expect>,
        /// A reason code the denial must contain.
        #[serde(default)]
        expect_code: Option<String>,
        /// The reason simulated staff give to override a soft limit.
        #[serde(default)]
        override_reason: Option<String>,
    },
    /// Let time pass (simulated time: divided by `--speed`).
    Wait {
        /// How long ("30 s", "5 min").
        duration: String,
    },
    /// Wait until the running delivery ends.
    WaitDelivery,
    /// Pause the running delivery.
    Pause,
    /// Resume a paused delivery.
    Resume,
    /// Stop the running delivery.
    Stop,
    /// Raise an alarm.
    Alarm {
        /// Machine code (`occlusion_downstream`, `air_in_line`...).
        condition: String,
        /// low, medium or high.
        priority: crate::link::message::AlarmPriority,
        /// Words for people.
        text: String,
        /// Clear it after this long (simulated time); stays otherwise.
        #[serde(default)]
        clear_after: Option<String>,
    },
    /// Clear every active alarm.
    ClearAlarms,
    /// Faults on the next frames the pump sends.
    Fault {
        /// Do not send the next N frames.
        #[serde(default)]
        drop_next: u32,
        /// Change one byte in each of the next N frames.
        #[serde(default)]
        corrupt_next: u32,
        /// Send each of the next N frames twice.
        #[serde(default)]
        duplicate_next: u32,
        /// Hold the next frame back this many milliseconds.
        #[serde(default)]
        delay_next_ms: u32,
        /// Send this many random bytes now.
        #[serde(default)]
        garbage: u32,
        /// Send nothing at all, not even acknowledgements, for this many
        /// milliseconds (a frozen controller).
        #[serde(default)]
        silence_ms: u32,
    },
    /// Close the port, as when the cable is pulled, and come back after
    /// `duration` (real time) on the same path.
    HangUp {
        /// How long to stay away ("2 s").
        duration: String,
    },
}

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ScenarioError {
    /// File name or "stdin".
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

impl Scenario {
    /// Parses a scenario file's text.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(String::new(), |s| {
                let before = &text[..s.start.min(text.len())];
                format!("line {}: ", before.matches('\n').count() + 1)
            });
            ScenarioError {
                origin: origin.to_owned(),
                message: format!("{at}{}", e.message().trim()),
            }
        })
    }
}

/// Every `action`, for messages.
pub const ACTIONS: &[&str] = &[
    "wait_online",
    "wait_library",
    "load",
    "infuse",
    "bolus",
    "wait",
    "wait_delivery",
    "pause",
    "resume",
    "stop",
    "alarm",
    "clear_alarms",
    "fault",
    "hang_up",
];

impl Step {
    /// Parses one interactive command: the action, then `key = value`
    /// settings separated by commas, e.g.
    /// `bolus dose = "25 micrograms", duration = "60 s"`.
    pub fn parse_command(line: &str) -> Result<Step, ScenarioError> {
        #[derive(Deserialize)]
        struct One {
            step: Step,
        }
        let line = line.trim();
        let (action, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let refuse = |message: String| ScenarioError {
            origin: "command".to_owned(),
            message,
        };
        if !ACTIONS.contains(&action) {
            return Err(refuse(format!(
                "unknown action `{action}`; one of: {}",
                ACTIONS.join(", ")
            )));
        }
        if !rest.is_empty() && toml::from_str::<toml::Table>(&format!("t = {{ {rest} }}")).is_err()
        {
            return Err(refuse(format!(
                "`{rest}`: write settings as key = \"value\" pairs separated by commas"
            )));
        }
        let table = if rest.is_empty() {
            format!("step = {{ action = {action:?} }}")
        } else {
            format!("step = {{ action = {action:?}, {rest} }}")
        };
        toml::from_str::<One>(&table)
            .map(|o| o.step)
            .map_err(|e| ScenarioError {
                origin: "command".to_owned(),
                message: e.message().trim().to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_like_steps() {
        assert_eq!(
            Step::parse_command(r#"bolus dose = "25 micrograms", duration = "60 s""#).unwrap(),
            Step::Bolus {
                dose: "25 micrograms".to_owned(),
                duration: Some("60 s".to_owned()),
                pump_volume: None,
                expect: None,
                expect_code: None,
                override_reason: None,
            }
        );
        assert_eq!(Step::parse_command("stop").unwrap(), Step::Stop);
        let e = Step::parse_command("fly").unwrap_err().to_string();
        assert!(
            e.contains("unknown action `fly`; one of: wait_online"),
            "{e}"
        );
        let e = Step::parse_command("stop now").unwrap_err().to_string();
        assert!(e.contains("key = \"value\" pairs"), "{e}");
        assert!(Step::parse_command(r#"bolus dos = "1 mg""#).is_err());
    }

    #[test]
    fn unknown_keys_are_refused_with_the_line() {
        let e =
            Scenario::parse("[pump]\nserial = \"A\"\ncolour = \"red\"\n", "s.toml").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
