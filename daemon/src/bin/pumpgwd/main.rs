//! `pumpgwd`: the pumpgw gateway daemon and its command-line tools.
//!
//! `run` is the daemon, `demo` the daemon with simulated pumps, `library
//! lint` and `ders check` the offline tools. Exit codes are in `--help`.

/// `println!` that does not panic when stdout is closed early (`| head`):
/// the reader has what it wanted.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod archive;
mod daemon;
mod demo;
mod ehr;
mod ehr_demo;
mod events;
mod mqtt;
mod pharmacy;
mod practice;
mod provision;
mod report;
mod staff;
mod status;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Where the gateway keeps its state unless the config says otherwise.
const DEFAULT_DATA_DIR: &str = "/var/lib/pumpgw";

/// Exit status: usage or input error (sysexits `EX_USAGE`).
const EXIT_USAGE: u8 = 64;
/// Exit status: the config cannot be used (sysexits `EX_CONFIG`).
const EXIT_CONFIG: u8 = 78;
/// Exit status: something the daemon needs failed (sysexits `EX_SOFTWARE`).
const EXIT_SOFTWARE: u8 = 70;

#[derive(Parser)]
#[command(
    name = "pumpgwd",
    version,
    about = "pumpgw bedside gateway for smart infusion pumps",
    long_about = "pumpgw bedside gateway for smart infusion pumps.\n\nIt cross-checks every infusion and bolus against the pharmacy's drug library, independently of the pump's own arithmetic.",
    after_help = "Exit status: 0 success or pass; 1 lint errors, soft limit, a refusal or a broken event chain; 2 hard limit or blocked; 64 usage or input error; 65 damaged database; 69 broker unreachable; 70 internal failure; 78 unusable config."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: one session per serial port in the config.
    ///
    /// Stops cleanly on SIGTERM or SIGINT (exit 0). Logs go to stderr; set
    /// `RUST_LOG` (e.g. `RUST_LOG=pumpgw=debug`) for more.
    Run {
        /// The gateway config (TOML; see docs/configuration.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check a gateway config without running it: syntax, unknown keys,
    /// values, then the files and devices it names (pharmacy keys, MQTT
    /// certificates and key modes, staff file, serial ports, socket group).
    ///
    /// Exit status: 0 the gateway can start (warnings may say what will
    /// not work yet); 78 it cannot, with each error and its key. systemd
    /// runs this before every start of the unit.
    CheckConfig {
        /// The gateway config (TOML; see docs/configuration.md).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// JSON for machines: every finding with its level and key.
        #[arg(long)]
        json: bool,
    },
    /// Write a new gateway's config from questions (on a terminal) or
    /// flags (for scripts), copy its certificates and keys beside it and
    /// import its staff.
    ///
    /// Everything is checked before anything is written: the ports exist,
    /// the certificate and key belong together and are in date, the
    /// pharmacy keys parse, the staff file reads. The broker is asked
    /// whether it takes this gateway; no answer is reported, not fatal.
    /// Prints a summary and the certificate's SHA-256 fingerprint.
    /// Exit status: 0 written; 1 declined at the last question; 64 usage;
    /// 70 writing failed; 78 a check failed and nothing was written.
    Provision(Box<provision::ProvisionArgs>),
    /// Serial ports a pump may be on: device, USB adapter (maker, product,
    /// serial number), stable name, group and mode; with --config, where
    /// each configured port stands. Opens no port.
    Ports {
        /// A gateway config whose ports to show too.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// A demo gateway with simulated pumps on pseudo-terminals and a live
    /// status view. Ctrl-C stops it.
    ///
    /// Uses the built-in example library (care area adult-icu), the
    /// example scenarios (a wrong-concentration fentanyl bolus and a wrong
    /// noradrenaline strength caught at load among them) and simulated
    /// staff at the terminal socket.
    Demo {
        /// How many simulated pumps (1 to 8).
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(1..=8))]
        pumps: u8,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
        speed: u32,
        /// Stop by itself after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        duration: Option<u64>,
        /// Print a status block each second instead of redrawing the screen
        /// (automatic when stdout is not a terminal).
        #[arg(long)]
        plain: bool,
        /// Also sync to this MQTT broker (site "demo"), e.g.
        /// `mqtt://127.0.0.1:1883`: events, status and libraries, as a real
        /// gateway does.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// Do not start the touchscreen (`pumpgw-terminal`), even where a
        /// display is available.
        #[arg(long)]
        no_terminal: bool,
        /// Practice mode, for clinicians never trained on the pumps: at the
        /// touchscreen you play the nurse and the doctor through the HSIB
        /// incidents and their safe counterparts (four cases, one pump
        /// each), told only what a bedside would tell you; at the end the
        /// touchscreen and the console say, case by case, what was caught,
        /// by whom, and what would have happened without the check. Needs a
        /// display. Every record the gateway logs is marked practice.
        #[arg(long, conflicts_with_all = ["no_terminal", "pumps", "plain"])]
        practice: bool,
        /// Hospital integration: a simulated EHR orders fentanyl for two
        /// pumps (IHE PCD-03); one is programmed as ordered and runs, the
        /// other is programmed at twice the order and blocked, naming it;
        /// every infusion event goes back to the EHR (PCD-10, PCD-01). The
        /// console says each step. Simulated staff confirm.
        #[arg(long, conflicts_with_all = ["practice", "pumps", "broker"])]
        ehr: bool,
    },
    /// Read the tamper-evident event log (never changes it).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Drug-library tools for pharmacists.
    #[command(subcommand)]
    Library(LibraryCommand),
    /// The dose-error-reduction cross-check.
    #[command(subcommand)]
    Ders(DersCommand),
    /// Hospital integration (IHE PCD over HL7 v2): dry runs for interface
    /// engineers (docs/interop.md).
    #[command(subcommand)]
    Ehr(EhrCommand),
    /// The gateway at a glance, the first screen to read on a board: the
    /// daemon's last start, the active library, each pump (link, serial,
    /// library match, last decision, alarms still raised), the event log,
    /// the broker connection, backlog and last acknowledged batch. As the
    /// daemon recorded them; reads the store, changes nothing.
    ///
    /// Exit status: 0 the daemon running and every pump online with the
    /// active library (as logged); 1 not;
    /// 70 the store cannot be read; 78 the config cannot be used.
    Status {
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Every gateway and pump, from the broker's retained status topics.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// The fleet archive: every gateway's event log of a site, from the
    /// broker, each gateway's hash chain checked as it is kept (a gap or
    /// a break is reported and recorded, never stored silently), in an
    /// SQLite file or PostgreSQL. Runs until SIGTERM or SIGINT.
    ///
    /// Exit status: 0 stopped cleanly; 64 usage; 69 the broker settings
    /// cannot be used; 70 the database failed.
    Archive(archive::ArchiveArgs),
    /// The CQI report: what the drug library caught over a period, from
    /// the fleet archive or from gateways' exported logs. Writes one
    /// self-contained HTML page (inline SVG plots, no script, prints on
    /// A4), or the same figures as JSON. Every figure is defined in
    /// docs/report.md.
    ///
    /// Exit status: 0 written; 64 usage or a file that cannot be read;
    /// 70 the archive or the output failed.
    Report {
        /// Exported logs (`pumpgwd events export`), any number of gateways.
        #[arg(
            long,
            value_name = "FILE",
            num_args = 1..,
            required_unless_present = "database",
            conflicts_with = "database"
        )]
        events: Vec<PathBuf>,
        /// The fleet archive (SQLite file or `postgres://` URL).
        #[arg(long, value_name = "FILE|URL")]
        database: Option<String>,
        /// One site of the archive (default: all).
        #[arg(long)]
        site: Option<String>,
        /// One care area (default: all).
        #[arg(long, value_name = "ID")]
        care_area: Option<String>,
        /// Start: a date (`2026-11-01`, midnight UTC) or an RFC 3339 time
        /// (default: 30 days before --to).
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// End, excluded (default: now).
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// The HTML file to write (replaced whole).
        #[arg(long, value_name = "FILE", default_value = "report.html")]
        out: PathBuf,
        /// Print the figures as JSON instead of writing HTML.
        #[arg(long)]
        json: bool,
    },
    /// The staff who may confirm at this gateway's terminal, and their
    /// PINs (docs/staff.md). Every change is an event in the log.
    #[command(subcommand)]
    Staff(StaffCommand),
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Add a person; asks for their PIN twice (or reads it from stdin).
    ///
    /// Exit status: 0 added; 1 refused (id taken, PIN too weak); 64 usage;
    /// 78 the config or the staff file cannot be used.
    Add {
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Their id (badge or login): a-z, 0-9, '.', '_', '-'.
        #[arg(long)]
        id: String,
        /// Their name as the terminal shows it.
        #[arg(long)]
        name: String,
        /// What they may confirm.
        #[arg(long, value_enum)]
        role: staff::RoleArg,
        /// Read the PIN from one line of standard input (for scripts).
        #[arg(long)]
        pin_stdin: bool,
        /// Who is making the change (default: the login name).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Remove a person.
    Remove {
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Their id.
        #[arg(long)]
        id: String,
        /// Who is making the change (default: the login name).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Everyone, with their role and whether they are locked out.
    List {
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// JSON for machines (never PIN hashes).
        #[arg(long)]
        json: bool,
    },
    /// Set a new PIN (this also lifts a lockout).
    SetPin {
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Their id.
        #[arg(long)]
        id: String,
        /// Read the PIN from one line of standard input (for scripts).
        #[arg(long)]
        pin_stdin: bool,
        /// Who is making the change (default: the login name).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
enum FleetCommand {
    /// One line per gateway and per pump: online, library version, whether
    /// it matches, last seen, backlog.
    ///
    /// Exit status: 0 shown; 64 usage; 69 broker unreachable.
    Status {
        #[command(flatten)]
        broker: mqtt::BrokerArgs,
        /// Only this site.
        #[arg(long)]
        site: Option<String>,
        /// JSON for machines.
        #[arg(long)]
        json: bool,
        /// Seconds to gather statuses at most once subscribed (it stops
        /// earlier when the retained ones have all arrived).
        #[arg(long, value_name = "SECONDS", default_value_t = 5)]
        wait: u64,
    },
}

/// Which gateway's log.
#[derive(clap::Args)]
struct Where {
    /// The gateway config; its `data_dir` holds the log.
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    config: Option<PathBuf>,
    /// The gateway's data directory (default /var/lib/pumpgw).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// The last records, one line each.
    Tail {
        #[command(flatten)]
        at: Where,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        /// Print the records themselves (JSON lines, the open format).
        #[arg(long)]
        json: bool,
    },
    /// Export records as JSON lines (docs/event-log.md), oldest first,
    /// streaming in constant memory; or, with --format fhir, as one FHIR R4
    /// Bundle (docs/interop.md).
    Export {
        #[command(flatten)]
        at: Where,
        /// From this time (RFC 3339, e.g. 2026-11-21T00:00:00Z), inclusive.
        #[arg(long)]
        since: Option<String>,
        /// Up to this time, exclusive.
        #[arg(long)]
        until: Option<String>,
        /// Only this pump (port name).
        #[arg(long)]
        pump: Option<String>,
        /// Only this record type (e.g. denied, delivery, alarm).
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
    /// Walk the hash chain from the first record to the last, and check
    /// the log against the gateway's signed checkpoints.
    ///
    /// The chain shows records edited, moved or deleted in the middle. A
    /// log cut short, or edited and re-chained, shows only against
    /// checkpoints kept elsewhere: give them with --checkpoints (the
    /// broker's copy of the event batches, or an earlier export).
    ///
    /// Exit status: 0 the chain holds and every checkpoint matches; 1 it is
    /// broken, or a checkpoint shows truncation or a change (each printed);
    /// 65 the database is damaged; 64 the checkpoints file cannot be read.
    Verify {
        #[command(flatten)]
        at: Where,
        /// JSON lines holding checkpoint records: `events export` output,
        /// or MQTT event batches as a consumer stored them (one payload per
        /// line, or `mosquitto_sub -v` lines).
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
        /// The gateway's checkpoint key (hex, the `key` of its checkpoint
        /// records): checkpoints by any other key are refused.
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// One JSON record per line, exactly as stored and hashed.
    Jsonl,
    /// One FHIR R4 Bundle (JSON): a device per pump, a medication
    /// administration per infusion and bolus, the provenance of each
    /// (docs/interop.md). Not with --type.
    Fhir,
}

#[derive(Subcommand)]
enum LibraryCommand {
    /// Make a pharmacy signing key: KEY (Ed25519, PKCS#8, mode 0600) and
    /// KEY.pub (its public half, for the gateways to trust).
    Keygen {
        /// Where to write the private key (never overwritten).
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
    },
    /// Lint and propose a library: writes FILE.sig, a detached signature
    /// file naming the key and the person. Refuses a library with lint
    /// errors. Gateways need `approvals` more signatures (default 1) by
    /// other pharmacists: see `library approve`.
    Sign {
        /// The library JSON file.
        file: PathBuf,
        /// The private key (from `library keygen`; mode 0600).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Who signs, as the audit trail will name them (default: the
        /// login name).
        #[arg(long, value_name = "NAME")]
        person: Option<String>,
        /// Where to write the signature (default FILE.sig).
        #[arg(long, value_name = "SIG")]
        out: Option<PathBuf>,
        /// Write signature format 1 (one signature, no approvals, no
        /// person) for gateways not yet upgraded to read format 2.
        #[arg(long)]
        format_1: bool,
    },
    /// Approve a proposed library: checks the signatures already in its
    /// signature file and the lint, then adds this person's signature.
    /// The proposer's key or name cannot approve.
    Approve {
        /// The library JSON file.
        file: PathBuf,
        /// The approver's private key (mode 0600).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Who approves (default: the login name).
        #[arg(long, value_name = "NAME")]
        person: Option<String>,
        /// The signature file to add to (default FILE.sig), rewritten
        /// whole.
        #[arg(long, value_name = "SIG")]
        signature: Option<PathBuf>,
    },
    /// Import a signed library into the gateway's archive (not active yet).
    ///
    /// Checks every signature against the config's `trusted_keys` and the
    /// number of approvals against its `approvals`, then the schema and
    /// the lint, and refuses a version not above the active one. On any
    /// failure nothing is archived and the active library is untouched.
    /// Exit status: 0 verified and archived; 1 refused.
    Import {
        /// The library JSON file.
        file: PathBuf,
        /// Its signature file (from `library sign`).
        #[arg(long, value_name = "SIG")]
        signature: PathBuf,
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Who is importing (default: the login name).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Make an archived, verified version the active library. The one it
    /// replaces becomes superseded; a lower version can never come back.
    Activate {
        /// The version.
        version: u64,
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Who (default: the login name).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// Why, for the audit trail.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Publish a signed library to a site's retained library topic, for
    /// every gateway of a care area (or of every care area) to import.
    ///
    /// The library is linted and its signature checked first; nothing is
    /// published if either fails. Gateways still check the signature
    /// against their own trusted keys.
    /// Exit status: 0 published (acknowledged by the broker); 1 refused;
    /// 64 usage; 69 broker unreachable.
    Publish {
        /// The library JSON file.
        file: PathBuf,
        /// Its signature file (from `library sign`).
        #[arg(long, value_name = "SIG")]
        signature: PathBuf,
        /// The site (hospital) topic level.
        #[arg(long)]
        site: String,
        /// The care area whose gateways take it.
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        care_area: Option<String>,
        /// For every care area (topic level `all`).
        #[arg(long)]
        all: bool,
        /// Who publishes (default: the login name).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        broker: mqtt::BrokerArgs,
    },
    /// Every archived library with its state.
    List {
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// One archived version: its hash, key and history.
    Show {
        /// The version.
        version: u64,
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Also write the archived file (and FILE.sig) here, byte for byte.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The audit trail: every change of state, with who, when and why.
    Audit {
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Per pump: the library it reported, since when, and whether it is
    /// the active one (from the event log). Exit 0 when every pump matches.
    Status {
        /// The gateway config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Check a drug library before signing: schema, limits, units, names.
    ///
    /// Exit status: 0 no errors (warnings allowed), 1 errors found, 64 file
    /// unreadable.
    Lint {
        /// The library JSON file.
        file: PathBuf,
        /// Print findings as JSON (one object with a `findings` array).
        #[arg(long)]
        json: bool,
        /// Also check the soft limits against the doses the wards give,
        /// from exported logs (`pumpgwd events export`): a soft limit
        /// within a rounding step of a standard dose is a warning
        /// (docs/drug-library.md section 5).
        #[arg(long, value_name = "FILE", num_args = 1..)]
        events: Vec<PathBuf>,
    },
    /// What changed from one library to another: per care area and drug,
    /// what was added, removed and changed, each limit old -> new with its
    /// relative change, concentrations and advisories (docs/pharmacy.md).
    ///
    /// Exit status: 0 no differences, 1 differences, 64 a file cannot be
    /// read as a library.
    Diff {
        /// The old library JSON file.
        old: PathBuf,
        /// The new library JSON file.
        new: PathBuf,
        /// Print the differences as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a library as a spreadsheet (CSV): one row per care area,
    /// drug and concentration, with all its limits, for editing where
    /// pharmacists already work (docs/pharmacy.md).
    Export {
        /// The library JSON file.
        file: PathBuf,
        /// As CSV (the one format: required, so the command says what it
        /// writes).
        #[arg(long, required = true)]
        csv: bool,
        /// Where to write it (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Read a library back from a spreadsheet (CSV, as `library export
    /// --csv` writes it) into JSON, then lint it. A cell that cannot be
    /// read, or a drug's limits that differ between its rows, is an error
    /// naming the row and the column; nothing is written then.
    ///
    /// Exit status: 0 written, lint clean (warnings allowed); 1 the sheet
    /// or the library has errors; 64 a file cannot be read or written.
    ImportCsv {
        /// The CSV file.
        file: PathBuf,
        /// Where to write the library JSON (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// What-if: replay every programme of exported event logs (one or many
    /// gateways', `events export` JSON lines) against a candidate library,
    /// and say which decisions would change, by drug, care area and limit,
    /// with the programmes listed (docs/pharmacy.md).
    ///
    /// Exit status: 0 nothing would change, 1 decisions would change but
    /// nothing that was given would now be stopped, 2 something that was
    /// given would now be stopped (hard limit or blocked), 64 a file cannot
    /// be read.
    Replay {
        /// The candidate library JSON file.
        candidate: PathBuf,
        /// Exported event logs (JSON lines), one or more.
        #[arg(long = "events", value_name = "FILE", required = true, num_args = 1..)]
        events: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EhrCommand {
    /// Read a PCD-03 infusion order (an RGV^O15 file) as the gateway
    /// would: what it understood, every quantity exact with the flow rate
    /// it comes to, or exactly what is wrong (segment, field, HL7 error
    /// code).
    ///
    /// Exit status: 0 the order was read, 2 refused, 64 usage or input
    /// error.
    Order {
        /// The HL7 v2 message (segments ended by CR or LF).
        file: PathBuf,
        /// Also print the ACK^O15 and RRG^O16 the gateway would answer
        /// (one segment per line).
        #[arg(long)]
        answer: bool,
        /// The gateway id the answers come from (MSH-3).
        #[arg(long, default_value = "pumpgw", value_name = "ID")]
        gateway: String,
    },
    /// Send HL7 messages (PCD-03 orders) to a gateway's [ehr] listen as an
    /// EHR would, and print its answers (the simulated EHR).
    ///
    /// Exit status: 0 every order accepted (AA), 2 one refused, 69 the
    /// gateway could not be reached.
    Send {
        /// The messages, one per file (segments ended by CR or LF).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The gateway's [ehr] listen address, e.g. 127.0.0.1:2575.
        #[arg(long, value_name = "ADDRESS")]
        to: std::net::SocketAddr,
    },
    /// Receive a gateway's documentation (PCD-10, PCD-01, sent where its
    /// [ehr] section says) as an EHR would: acknowledge each message and
    /// print a line for it, until Ctrl-C.
    Receive {
        /// Where to listen, e.g. 127.0.0.1:2576.
        #[arg(long, value_name = "ADDRESS")]
        listen: std::net::SocketAddr,
        /// Print each message whole, one segment per line.
        #[arg(long)]
        full: bool,
    },
}

#[derive(Subcommand)]
enum DersCommand {
    /// Cross-check one programme against the library.
    ///
    /// Exit status: 0 pass, 1 soft limit (override with reason and
    /// confirmation), 2 hard limit or blocked, 64 usage or input error.
    Check {
        /// The drug library JSON file.
        #[arg(long, value_name = "FILE")]
        library: PathBuf,
        /// The care area of this bed (an id from the library).
        #[arg(long, value_name = "ID")]
        care_area: String,
        /// The programme JSON file (config/schema/programme-v1.schema.json).
        #[arg(long, value_name = "FILE")]
        program: PathBuf,
        /// The bed's exposure to each drug: amounts given, infusions running,
        /// boluses authorised and not yet given (config/schema/history-v1.schema.json).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Run { config } => return daemon::main(&config),
        Command::Demo {
            pumps,
            speed,
            duration,
            plain,
            broker,
            no_terminal,
            practice,
            ehr,
        } => {
            if ehr {
                return demo::exit_of(ehr_demo::run(speed, duration));
            }
            if practice {
                return demo::exit_of(practice::run(speed, duration, broker));
            }
            return demo::main(demo::DemoOptions {
                pumps,
                speed,
                duration,
                plain,
                broker,
                terminal: !no_terminal,
            });
        }
        Command::Events(cmd) => return events_main(cmd),
        Command::Library(cmd) => return library_main(cmd),
        Command::Status { config, json } => return exit(status::status(&config, json)),
        Command::Provision(args) => return exit(provision::provision(&args)),
        Command::Ports { config, json } => {
            return exit(provision::list_ports(config.as_deref(), json));
        }
        Command::CheckConfig { file, json } => return exit(provision::check_config(&file, json)),
        Command::Staff(cmd) => return exit(staff_main(cmd)),
        Command::Archive(args) => return exit(archive::main(args)),
        Command::Report {
            events,
            database,
            site,
            care_area,
            from,
            to,
            out,
            json,
        } => {
            return exit(report::report(&report::Request {
                events: &events,
                database: database.as_deref(),
                site,
                care_area,
                from: from.as_deref(),
                to: to.as_deref(),
                out: &out,
                json,
            }));
        }
        Command::Fleet(FleetCommand::Status {
            broker,
            site,
            json,
            wait,
        }) => return exit(mqtt::fleet(&broker, site.as_deref(), json, wait)),
        Command::Ehr(EhrCommand::Order {
            file,
            answer,
            gateway,
        }) => ehr::order(&file, answer, &gateway),
        Command::Ehr(EhrCommand::Send { files, to }) => ehr::send(&files, to),
        Command::Ehr(EhrCommand::Receive { listen, full }) => ehr::receive(listen, full),
        Command::Ders(DersCommand::Check {
            library,
            care_area,
            program,
            history,
            json,
        }) => tools::ders_check(&library, &care_area, &program, history.as_deref(), json),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pumpgwd: error: {}", pumpgw::report::chain(e.as_ref()));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn library_main(cmd: LibraryCommand) -> ExitCode {
    match cmd {
        LibraryCommand::Lint { file, json, events } => plain(tools::lint(&file, json, &events)),
        LibraryCommand::Diff { old, new, json } => exit(pharmacy::diff(&old, &new, json)),
        LibraryCommand::Export { file, csv: _, out } => {
            exit(pharmacy::export_csv(&file, out.as_deref()))
        }
        LibraryCommand::ImportCsv { file, out } => exit(pharmacy::import_csv(&file, &out)),
        LibraryCommand::Replay {
            candidate,
            events,
            json,
        } => exit(pharmacy::replay(&candidate, &events, json)),
        LibraryCommand::Import {
            file,
            signature,
            config,
            by,
        } => exit(pharmacy::import(&config, &file, &signature, by)),
        LibraryCommand::Activate {
            version,
            config,
            by,
            reason,
        } => exit(pharmacy::activate(&config, version, by, &reason)),
        LibraryCommand::List { config } => exit(pharmacy::list(&config)),
        LibraryCommand::Show {
            version,
            config,
            out,
        } => exit(pharmacy::show(&config, version, out.as_deref())),
        LibraryCommand::Audit { config } => exit(pharmacy::audit(&config)),
        LibraryCommand::Status { config, json } => exit(pharmacy::status(&config, json)),
        LibraryCommand::Publish {
            file,
            signature,
            site,
            care_area,
            all: _,
            by,
            broker,
        } => exit(mqtt::publish(&mqtt::Publish {
            file: &file,
            signature: &signature,
            site: &site,
            care_area: care_area.as_deref(),
            by,
            broker: &broker,
        })),
        LibraryCommand::Keygen { out } => plain(pharmacy::keygen(&out)),
        LibraryCommand::Sign {
            file,
            key,
            person,
            out,
            format_1,
        } => plain(pharmacy::sign(
            &file,
            &key,
            person,
            out.as_deref(),
            format_1,
        )),
        LibraryCommand::Approve {
            file,
            key,
            person,
            signature,
        } => plain(pharmacy::approve(&file, &key, person, signature.as_deref())),
    }
}

/// The exit of a tool whose every failure is a usage or input error.
fn plain(result: anyhow::Result<u8>) -> ExitCode {
    exit(result.map_err(|e| (EXIT_USAGE, e)))
}

fn events_main(cmd: EventsCommand) -> ExitCode {
    let at = match &cmd {
        EventsCommand::Tail { at, .. }
        | EventsCommand::Export { at, .. }
        | EventsCommand::Verify { at, .. } => at,
    };
    let file = match events::database(at.config.as_deref(), at.data_dir.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("pumpgwd: error: {}", pumpgw::report::chain(e.as_ref()));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match cmd {
        EventsCommand::Tail { lines, json, .. } => events::tail(&file, lines, json),
        EventsCommand::Export {
            since,
            until,
            pump,
            kind,
            format: ExportFormat::Jsonl,
            ..
        } => events::export(&file, since.as_deref(), until.as_deref(), pump, kind),
        EventsCommand::Export {
            since,
            until,
            pump,
            kind,
            format: ExportFormat::Fhir,
            ..
        } => match kind {
            Some(_) => Err((
                EXIT_USAGE,
                anyhow::anyhow!("--format fhir takes every record type; leave out --type"),
            )),
            None => events::export_fhir(&file, since.as_deref(), until.as_deref(), pump),
        },
        EventsCommand::Verify {
            checkpoints, key, ..
        } => events::verify(&file, checkpoints.as_deref(), key.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err((code, e)) => {
            eprintln!("pumpgwd: error: {}", pumpgw::report::chain(e.as_ref()));
            ExitCode::from(code)
        }
    }
}

fn staff_main(cmd: StaffCommand) -> Result<u8, (u8, anyhow::Error)> {
    match cmd {
        StaffCommand::Add {
            config,
            id,
            name,
            role,
            pin_stdin,
            by,
        } => staff::add(&staff::Add {
            config: &config,
            id: &id,
            name: &name,
            role,
            pin_stdin,
            by,
        }),
        StaffCommand::Remove { config, id, by } => staff::remove(&config, &id, by),
        StaffCommand::List { config, json } => staff::list(&config, json),
        StaffCommand::SetPin {
            config,
            id,
            pin_stdin,
            by,
        } => staff::set_pin(&config, &id, pin_stdin, by),
    }
}

fn exit(result: Result<u8, (u8, anyhow::Error)>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err((code, e)) => {
            eprintln!("pumpgwd: error: {}", pumpgw::report::chain(e.as_ref()));
            ExitCode::from(code)
        }
    }
}
