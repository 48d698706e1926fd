//! `pumpgwd check-config`: what a biomedical engineer and systemd's
//! `ExecStartPre=` run before a start.

use std::path::Path;

use anyhow::anyhow;
use pumpgw::gateway::Config;
use pumpgw::gateway::check::{self, Level};

use crate::EXIT_CONFIG;

/// Prints every finding; 0 when the gateway can start, 78 when not.
pub(crate) fn check_config(file: &Path, json: bool) -> Result<u8, (u8, anyhow::Error)> {
    let config =
        Config::load(file).map_err(|e| (EXIT_CONFIG, anyhow!(pumpgw::report::chain(&e))))?;
    let findings = check::check(&config);
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    if json {
        let out = serde_json::json!({
            "file": file.display().to_string(),
            "gateway_id": config.gateway_id,
            "care_area": config.care_area,
            "ok": errors == 0,
            "findings": findings,
        });
        println!("{out:#}");
    } else {
        println!(
            "{}: gateway {} in {}, {} pump port(s)",
            file.display(),
            config.gateway_id,
            config.care_area,
            config.ports.len()
        );
        for f in &findings {
            let level = match f.level {
                Level::Note => "ok",
                Level::Warning => "warning",
                Level::Error => "ERROR",
            };
            println!("  {level:<7} {}: {}", f.key, f.message);
        }
        println!(
            "{}: {errors} error(s), {warnings} warning(s)",
            if errors == 0 {
                "the gateway can start"
            } else {
                "the gateway cannot start"
            }
        );
    }
    Ok(if errors == 0 { 0 } else { EXIT_CONFIG })
}
