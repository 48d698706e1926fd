//! `pumpgwd demo --ehr`: the demo gateway with a simulated EHR
//! (`pumpgw::sim::ehr`) on both sides of `[ehr]`. The EHR orders fentanyl
//! 50 micrograms/h for two pumps; one is programmed as ordered and runs,
//! the other at 100 micrograms/h and is blocked naming the order, then
//! reprogrammed as ordered. Every infusion event comes back to the EHR as
//! PCD-10 and PCD-01. The console says each step as it happens.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use pumpgw::gateway::config::EhrSettings;
use pumpgw::gateway::{self, Snapshot};
use pumpgw::sim::{self, Options, Port, ehr, scenario::Scenario};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::daemon::{runtime, shutdown_signal};
use crate::demo;

const ORDER: &str = include_str!("../../../../config/examples/ehr/fentanyl-order.hl7");

/// The pumps: serial, order number, the rate programmed first, the story.
const PUMPS: [(&str, &str, &str, &str); 2] = [
    (
        "SIM-0001",
        "F-1001",
        "50 micrograms/h",
        "programmed as ordered: it runs",
    ),
    (
        "SIM-0002",
        "F-1002",
        "100 micrograms/h",
        "programmed at twice the order: blocked, then reprogrammed as ordered",
    ),
];

/// A pump's scenario: take the library, load the syringe, programme
/// `rate`; when that is not the order's, be denied and programme the
/// order's rate. The steps after the library wait for the order.
fn scenario(serial: &str, rate: &str) -> Result<Scenario> {
    let mut text = format!(
        "[pump]\nserial = \"{serial}\"\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\n\
         [[step]]\naction = \"wait_library\"\n\n\
         [[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\n"
    );
    if rate != "50 micrograms/h" {
        text += "[[step]]\naction = \"infuse\"\nrate = \"";
        text += rate;
        text += "\"\nvtbi = \"2 mL\"\nexpect = \"denied\"\nexpect_code = \"ORDER_MISMATCH\"\n\n\
                 [[step]]\naction = \"wait\"\nduration = \"5 min\"\n\n";
    }
    text.push_str(
        "[[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nvtbi = \"2 mL\"\nexpect = \"authorised\"\n\n\
         [[step]]\naction = \"wait_delivery\"\n",
    );
    Scenario::parse(&text, serial).context("the EHR demo's scenario")
}

/// The order for one pump: the fixture's fentanyl, 2 mL to be infused.
fn order(serial: &str, number: &str) -> String {
    ORDER
        .replace("^^A0001^", &format!("^^{serial}^"))
        .replace("ORC|RE|F-2001|", &format!("ORC|RE|{number}|"))
        .replace("fentanyl^Fentanyl|50|", "fentanyl^Fentanyl|2|")
}

fn free_port() -> Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("no free port on loopback")
}

/// Runs the EHR demo until Ctrl-C, `duration` seconds, or both pumps done.
pub(crate) fn run(speed: u32, duration: Option<u64>) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("pumpgw-ehr-demo-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let log_path = demo::log_to(dir.path())?;
    let mut config = demo::demo_config(dir.path(), "demo-bed-1", 2, None)?;
    let (listen, receiver) = (free_port()?, free_port()?);
    config.ehr = Some(EhrSettings {
        listen,
        max_message_bytes: 1 << 20,
        cert_file: None,
        key_file: None,
        client_ca_file: None,
        send_to: Some(receiver),
        ack_timeout_s: 10,
        send_ca_file: None,
        send_cert_file: None,
        send_key_file: None,
        status_every_s: 0,
    });
    let bedside = demo::demo_staff(&config)?;
    intro(speed, &log_path, listen, receiver);
    let rt = runtime()?;
    rt.block_on(async move {
        let signal = shutdown_signal()?;
        let stop = CancellationToken::new();
        let (tx, mut documented) = mpsc::channel(64);
        let listener = tokio::net::TcpListener::bind(receiver)
            .await
            .context("the simulated EHR cannot listen")?;
        tokio::spawn(ehr::receive(listener, tx, stop.clone()));
        let (view_tx, mut view) = watch::channel(Snapshot::default());
        let gateway_stop = stop.clone();
        let ports = config.ports.clone();
        let gateway = tokio::spawn(gateway::run(
            config,
            async move { gateway_stop.cancelled().await },
            view_tx,
        ));
        let staff = sim::bedside::spawn(bedside, "demo-bed-1".to_owned(), stop.clone());
        let mut sims = tokio::task::JoinSet::new();
        let mut rest = Vec::new();
        for (port, (serial, _, rate, _)) in ports.iter().zip(PUMPS) {
            let mut scenario = scenario(serial, rate)?;
            let steps = scenario.steps.split_off(1);
            let (tx, rx) = mpsc::channel(steps.len().max(1));
            rest.push((tx, steps));
            let opts = Options {
                speed,
                stay: true,
                name: format!("{} ({serial})", port.display_name()),
                bedside: Some(staff.clone()),
                ..Options::default()
            };
            let link = Port::Pty {
                link: Some(port.path.clone()),
            };
            sims.spawn(sim::run(scenario, link, opts, Some(rx), stop.clone(), |_| {}));
        }
        // The orders go once both pumps are on the bed.
        let online = view.wait_for(|v| v.pumps.iter().filter(|p| p.identity.is_some()).count() == 2);
        if tokio::time::timeout(Duration::from_secs(20), online).await.is_err() {
            println!("EHR: the pumps did not come online in 20 s");
        }
        for ((serial, number, _, _), (tx, steps)) in PUMPS.into_iter().zip(rest) {
            let answers = ehr::send(listen, &order(serial, number), 2, Duration::from_secs(5)).await;
            match answers {
                Ok(a) => println!("EHR → order {number} for {serial}: fentanyl 50 micrograms/h, 2,500 micrograms in 50 mL: {}", ehr::result_words(&a)),
                Err(e) => println!("EHR → order {number} for {serial}: not sent ({e})"),
            }
            // Then the nurse programmes the pump.
            for step in steps {
                if tx.send(step).await.is_err() {
                    println!("{serial}: its simulator has stopped");
                    break;
                }
            }
        }
        let deadline = duration.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        narrate(&view, &mut documented, deadline, signal).await;
        stop.cancel();
        gateway
            .await
            .context("the gateway task failed")?
            .context("the gateway did not start")?;
        while sims.join_next().await.is_some() {}
        println!("\npumpgw demo --ehr stopped.");
        anyhow::Ok(())
    })?;
    drop(dir);
    Ok(())
}

/// What the demo says first.
fn intro(speed: u32, log: &std::path::Path, listen: SocketAddr, receiver: SocketAddr) {
    println!(
        "pumpgw demo --ehr: a simulated EHR orders fentanyl 50 micrograms/h for two pumps, at {speed}x speed. Ctrl-C stops.\n\
         Gateway log: {}\nThe gateway takes orders on {listen} and documents to the EHR on {receiver}.",
        log.display()
    );
    for (serial, number, rate, story) in PUMPS {
        println!("  {serial}: order {number}, {rate}: {story}");
    }
}

/// Says what the EHR receives and what the gateway decides, as it
/// happens, until the signal or the deadline.
async fn narrate(
    view: &watch::Receiver<Snapshot>,
    documented: &mut mpsc::Receiver<pumpgw::ehr::er7::Message>,
    deadline: Option<tokio::time::Instant>,
    signal: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(signal);
    let mut said: Vec<String> = Vec::new();
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            () = &mut signal => break,
            () = demo::sleep_until(deadline) => break,
            Some(m) = documented.recv() => println!("EHR ← {}", ehr::describe(&m)),
            _ = every.tick() => {
                for line in decisions_now(&view.borrow()) {
                    if !said.contains(&line) {
                        println!("{line}");
                        said.push(line);
                    }
                }
            }
        }
    }
}

/// Each pump's last decision, in words.
fn decisions_now(view: &Snapshot) -> Vec<String> {
    view.pumps
        .iter()
        .filter_map(|p| {
            let v = p.last_verdict.as_ref()?;
            Some(format!(
                "gateway: {} request {}: {}{}",
                p.name,
                v.request,
                v.decision,
                if v.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", v.reason)
                }
            ))
        })
        .collect()
}
