//! `pumpgwd ehr`: an interface engineer's tools. `order FILE` is a dry
//! run of PCD-03: it reads an `RGV^O15` file as the gateway would, says
//! what it understood (every quantity exact, the flow rate it comes to),
//! or exactly what is wrong (segment, field, HL7 code); `--answer` prints
//! the `ACK^O15` and `RRG^O16` the gateway would send back. `send` and
//! `receive` are the simulated EHR (`pumpgw::sim::ehr`) on the command
//! line: orders to a gateway, its documentation back.

use std::path::Path;

use anyhow::{Context, Result};
use pumpgw::ders::Give;
use pumpgw::ehr::answer::{self, Answering, Refusal};
use pumpgw::ehr::er7::Message;
use pumpgw::ehr::order::Order;
use pumpgw::format;

/// Exit status: the order was read.
const READ: u8 = 0;
/// Exit status: the order was refused (the answers say why).
const REFUSED: u8 = 2;

pub(crate) fn order(file: &Path, answer: bool, gateway: &str) -> Result<u8> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let us = Answering {
        application: gateway.to_owned(),
        facility: String::new(),
        control_id: "DRY-RUN".to_owned(),
        at: time::OffsetDateTime::now_utc(),
    };
    let message = match Message::parse(&bytes) {
        Ok(m) => m,
        Err(e) => {
            // Not even readable as HL7: no header to answer to.
            println!("{}: not an HL7 v2 message: {e}", file.display());
            return Ok(REFUSED);
        }
    };
    let (code, refusal) = match Order::read(&message) {
        Ok(o) => {
            println!("{}", describe(&o));
            (READ, None)
        }
        Err(e) => {
            println!("{}: refused: {e} (HL7 error {})", file.display(), e.code);
            (REFUSED, Some(Refusal::from(&e)))
        }
    };
    if answer {
        // One segment per line here; on the wire HL7 ends segments with CR.
        let lines = |m: Message| m.to_er7().replace('\r', "\n");
        println!(
            "\n{}\n{}",
            lines(answer::accept(&message, &us, None)),
            lines(answer::result(&message, &us, refusal.as_ref()))
        );
    }
    Ok(code)
}

/// The order in the display rules' words.
fn describe(o: &Order) -> String {
    let or_none = |x: Option<String>| x.unwrap_or_else(|| "none given".to_owned());
    let flow = o
        .flow_ml_per_h()
        .map_or_else(String::new, |f| format!(" = {} mL/h", format::number(f)));
    format!(
        "Order {} (message {}) from {} for patient {}{}\n  drug: {} ({})\n  {}{flow}\n  concentration: {}\n  to be infused: {}\n  weight: {}\n  route: {}\n  pump: {}",
        o.placer,
        o.control_id,
        o.sender,
        o.patient,
        if o.bolus_from_infusion {
            ": a bolus from the running infusion"
        } else {
            ""
        },
        o.drug.text,
        o.drug.code,
        match o.give {
            Some(Give::Rate(r)) => format!("rate: {}", format::rate(r)),
            Some(Give::Dose(d)) => format!("dose: {}", format::dose(d)),
            None => "rate: none given".to_owned(),
        },
        or_none(o.concentration.map(format::concentration)),
        or_none(o.vtbi.map(format::volume)),
        or_none(o.weight.map(format::weight)),
        o.route,
        o.pump,
    )
}

/// Exit status: the gateway could not be reached.
const UNREACHABLE: u8 = 69;

/// `pumpgwd ehr send`: each file to the gateway as an EHR would, the
/// answers printed; 0 when every order was accepted.
pub(crate) fn send(files: &[std::path::PathBuf], to: std::net::SocketAddr) -> Result<u8> {
    let mut code = READ;
    let rt = crate::daemon::runtime()?;
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let answers = rt.block_on(pumpgw::sim::ehr::send(
            to,
            &text,
            2,
            std::time::Duration::from_secs(10),
        ));
        match answers {
            Ok(answers) => {
                let words = pumpgw::sim::ehr::result_words(&answers);
                println!("{}: {words}", file.display());
                for a in &answers {
                    println!("{}", a.to_er7().replace('\r', "\n"));
                }
                if !words.starts_with("AA") {
                    code = REFUSED;
                }
            }
            Err(e) => {
                eprintln!("pumpgwd: {}: {to}: {e}", file.display());
                return Ok(UNREACHABLE);
            }
        }
    }
    Ok(code)
}

/// `pumpgwd ehr receive`: a gateway's documentation received and
/// acknowledged as the EHR would, one line each, until Ctrl-C.
pub(crate) fn receive(listen: std::net::SocketAddr, full: bool) -> Result<u8> {
    let rt = crate::daemon::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        println!("receiving PCD-10 and PCD-01 on {listen}; Ctrl-C stops");
        let stop = tokio_util::sync::CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(pumpgw::sim::ehr::receive(listener, tx, stop.clone()));
        let signal = crate::daemon::shutdown_signal()?;
        tokio::pin!(signal);
        loop {
            tokio::select! {
                () = &mut signal => break,
                Some(m) = rx.recv() => {
                    println!("{}", pumpgw::sim::ehr::describe(&m));
                    if full {
                        println!("{}\n", m.to_er7().replace('\r', "\n"));
                    }
                }
            }
        }
        stop.cancel();
        anyhow::Ok(())
    })?;
    Ok(READ)
}
