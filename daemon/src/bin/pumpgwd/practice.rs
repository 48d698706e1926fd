//! `pumpgwd demo --practice`: the person at the touchscreen plays the nurse
//! and the doctor through the practice cases (`pumpgw::sim::practice`), one
//! pump each, one after another, with nobody simulated to answer for them.
//! The console gives each case's brief; the touchscreen shows which case
//! is on and, at the end, like the console, what was caught, by whom, and
//! what would have happened without the check. The gateway runs as a
//! practice gateway: every record it logs is marked practice.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use pumpgw::gateway::{self, Snapshot};
use pumpgw::sim::practice::{self, CASES};
use pumpgw::sim::scenario::{Scenario, Step};
use pumpgw::sim::{self, Options, Port};
use pumpgw::terminal::protocol::PracticeBoard;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::daemon::{runtime, shutdown_signal};
use crate::demo;

/// Between one case's end and the next one's start: time to read the
/// result on the touchscreen.
const BETWEEN_CASES: Duration = Duration::from_secs(8);

/// Runs the practice until Ctrl-C or `duration` seconds.
pub(crate) fn run(speed: u32, duration: Option<u64>, broker: Option<String>) -> Result<()> {
    let program =
        demo::touchscreen().map_err(|why| anyhow!("practice needs the touchscreen: {why}"))?;
    let dir = tempfile::Builder::new()
        .prefix("pumpgw-practice-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let log_path = demo::log_to(dir.path())?;
    // Marked before anything is logged, the library's import included.
    pumpgw::store::Store::open(&pumpgw::store::Store::file_in(dir.path()))
        .and_then(|store| store.mark_practice())
        .context("cannot mark the practice data folder")?;
    let cases = u8::try_from(CASES.len()).expect("four cases");
    let mut config = demo::demo_config(dir.path(), "practice-bed-1", cases, broker)?;
    config.practice = true;
    let bedside = demo::demo_staff(&config)?;
    // The people are named as every screen names them.
    let roster = pumpgw::staff::Roster::load(&config.staff_file())
        .context("cannot read the demo's staff file")?;
    let text = header(&log_path, &bedside.socket, dir.path(), speed);
    let rt = runtime()?;
    rt.block_on(async move {
        let signal = shutdown_signal()?;
        let stop = CancellationToken::new();
        let (board_tx, board) = watch::channel(PracticeBoard {
            cases: u32::from(cases),
            ..PracticeBoard::default()
        });
        let (view_tx, view) = watch::channel(Snapshot::default());
        let gateway_stop = stop.clone();
        let ports = config.ports.clone();
        let gateway = tokio::spawn(gateway::run_with(
            config,
            async move { gateway_stop.cancelled().await },
            view_tx,
            Some(board),
        ));
        let mut touch = demo::start_touchscreen(&program, &bedside.socket)
            .map_err(|e| anyhow!("cannot start the touchscreen: {e}"))?;
        println!("{text}");
        let names: Vec<(String, String)> = ports
            .iter()
            .map(|p| (p.path.display().to_string(), p.display_name()))
            .collect();
        let play = play(names, speed, view, (board_tx, roster), stop.clone());
        let deadline = duration.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        tokio::pin!(signal, play);
        let mut played = false;
        loop {
            tokio::select! {
                () = &mut signal => break,
                () = demo::sleep_until(deadline) => break,
                done = &mut play, if !played => {
                    played = true;
                    match done {
                        Ok(text) => println!("\n{text}\nThe summary is also on the touchscreen. Ctrl-C ends the practice."),
                        Err(e) => eprintln!("pumpgw practice: {}", pumpgw::report::chain(e.as_ref())),
                    }
                }
            }
        }
        stop.cancel();
        let _ = touch.kill();
        let _ = touch.wait();
        gateway
            .await
            .context("the gateway task failed")?
            .context("the gateway did not start")?;
        println!("\npumpgw practice stopped.");
        anyhow::Ok(())
    })?;
    drop(dir);
    Ok(())
}

/// Plays the cases one after another; returns the summary's text. Each
/// `ports` entry is (device path, port name).
async fn play(
    ports: Vec<(String, String)>,
    speed: u32,
    mut view: watch::Receiver<Snapshot>,
    (board, roster): (watch::Sender<PracticeBoard>, pumpgw::staff::Roster),
    stop: CancellationToken,
) -> Result<String> {
    // The first case's request must find the touchscreen there.
    if tokio::time::timeout(Duration::from_secs(15), view.wait_for(|v| v.terminals >= 1))
        .await
        .is_err()
    {
        eprintln!("pumpgw practice: the touchscreen has not connected yet; starting anyway");
    }
    // Every pump comes online at once and stands idle (a pump waiting for
    // its case is not a lost link); a case's steps are handed to its pump
    // when the case begins.
    let mut pumps = tokio::task::JoinSet::new();
    let mut rest = Vec::new();
    for (i, (case, (path, port))) in CASES.iter().zip(&ports).enumerate() {
        let mut scenario = Scenario::parse(case.scenario, case.name).context("built-in case")?;
        let ready = scenario
            .steps
            .iter()
            .position(|s| matches!(s, Step::WaitLibrary { .. }))
            .map_or(0, |at| at + 1);
        let steps = scenario.steps.split_off(ready);
        let (tx, rx) = mpsc::channel(steps.len().max(1));
        rest.push((tx, steps));
        let opts = Options {
            speed,
            stay: true,
            name: format!("{port} (practice case {})", i + 1),
            ..Options::default()
        };
        let link = Port::Pty {
            link: Some(path.into()),
        };
        pumps.spawn(sim::run(
            scenario,
            link,
            opts,
            Some(rx),
            stop.clone(),
            |_| {},
        ));
    }
    let total = CASES.len();
    for (i, ((case, (_, port)), (tx, steps))) in CASES.iter().zip(&ports).zip(rest).enumerate() {
        let number = u32::try_from(i + 1).expect("four cases");
        board.send_modify(|b| {
            b.case = number;
            case.title.clone_into(&mut b.title);
        });
        println!(
            "\nCase {number} of {total}, on {port}: {}\n{}",
            case.title,
            practice::fold(case.brief, 76, "  ")
        );
        for step in steps {
            tx.send(step)
                .await
                .map_err(|_| anyhow!("{port}'s simulator has stopped"))?;
        }
        let decided = |s: &Snapshot| {
            s.pumps
                .iter()
                .find(|p| &*p.name == port.as_str())
                .and_then(|p| p.last_verdict.as_ref())
                .is_some_and(practice::decided)
        };
        view.wait_for(decided)
            .await
            .map_err(|_| anyhow!("the gateway stopped during case {number}"))?;
        // The closing notices are published with the decision; a moment
        // more lets a second signer's arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let snapshot = view.borrow().clone();
        let verdict = snapshot
            .pumps
            .iter()
            .find(|p| &*p.name == port.as_str())
            .and_then(|p| p.last_verdict.clone())
            .context("the decision has gone from the pump's card")?;
        let closed: Vec<_> = snapshot.closed.iter().filter(|c| &c.pump == port).collect();
        let judged = practice::judge(number, case, &verdict, &closed, &|id| roster.named(id));
        board.send_modify(|b| b.summary.push(judged));
        println!("Case {number} is over: see {port} on the touchscreen.");
        if i + 1 < total {
            tokio::time::sleep(BETWEEN_CASES).await;
        }
    }
    // The pumps stay online (their programmes run on) until the end.
    tokio::spawn(async move { while pumps.join_next().await.is_some() {} });
    Ok(practice::summary_text(&board.borrow().summary))
}

fn header(
    log: &std::path::Path,
    socket: &std::path::Path,
    data: &std::path::Path,
    speed: u32,
) -> String {
    let person = |i: usize| {
        let (_, name, role, pin) = demo::STAFF[i];
        format!(
            "{}: {name}, PIN {pin}",
            pumpgw::format::capitalise(&pumpgw::format::name(&role))
        )
    };
    format!(
        "pumpgw practice: {} cases at the touchscreen; you play the nurse and the doctor ({speed}x pump time). Ctrl-C stops.\n\
         PRACTICE: no patient. Every record in this gateway's log is marked practice.\n\
         {}. {}.\n\
         Each case starts on its own pump; the touchscreen announces what it asks (tap the banner).\n\
         Gateway log: {}\nTouchscreen log: {}\nData folder: {} (removed at the end)",
        CASES.len(),
        person(0),
        person(1),
        log.display(),
        socket.with_file_name("touchscreen.log").display(),
        data.display(),
    )
}
