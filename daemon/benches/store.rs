//! Event-log benchmarks (`cargo bench -p pumpgw-daemon --bench store`):
//!
//! - `store/append_group_commit`: 16 tasks append events concurrently
//!   through the writer, each waiting for its commit (WAL,
//!   `synchronous=FULL`, so every commit is fsynced); events/s;
//! - `store/bare_rusqlite_100_per_tx`: the same rows inserted by a plain
//!   rusqlite loop, 100 per transaction, same pragmas, same disk: the
//!   reference the group commit is compared with;
//! - `store/export` and `store/verify` over a 10,000-record log; records/s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pumpgw::store::log::{self, Filter, Log};
use pumpgw::store::{Context, Event, Store, Writer};
use time::OffsetDateTime;

const TASKS: u64 = 16;
const PER_TASK: u64 = 64;

fn context() -> Context {
    Context {
        gateway: "bench".to_owned(),
        pump: Some("pump-a".to_owned()),
        care_area: "adult-icu".to_owned(),
        library_version: Some(12),
    }
}

fn event(i: u64) -> Event {
    Event::Alarm {
        alarm: 1,
        priority: "low".to_owned(),
        condition: "air_in_line".to_owned(),
        text: "Air in line".to_owned(),
        active: i.is_multiple_of(2),
        pump_serial: "B7781".to_owned(),
        pump_record: i,
        pump_at: OffsetDateTime::now_utc(),
    }
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Store::file_in(dir.path());
    let (writer, thread) =
        Writer::spawn(Log::new(Store::open(&path).expect("store")).expect("log"));
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(TASKS * PER_TASK));
    g.sample_size(10);
    g.bench_function("append_group_commit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut tasks = Vec::new();
                    for t in 0..TASKS {
                        let w = writer.clone();
                        tasks.push(tokio::spawn(async move {
                            for i in 0..PER_TASK {
                                w.append(vec![(context(), event(t * PER_TASK + i))])
                                    .await
                                    .expect("append");
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.expect("task");
                    }
                }
                start.elapsed()
            })
        });
    });
    drop(writer);
    thread.join().expect("writer thread");

    let bare = dir.path().join("bare.sqlite");
    let mut conn = rusqlite::Connection::open(&bare).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("full");
    conn.execute_batch(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, type TEXT NOT NULL, pump TEXT, record BLOB NOT NULL, hash BLOB NOT NULL) STRICT",
    )
    .expect("table");
    let row = serde_json::to_vec(&event(1)).expect("json");
    let mut seq = 0i64;
    g.bench_function("bare_rusqlite_100_per_tx", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                // 1,000 rows in 10 transactions, scaled to 1,024 below.
                for _ in 0..10 {
                    let tx = conn.transaction().expect("tx");
                    for _ in 0..100 {
                        seq += 1;
                        tx.execute(
                            "INSERT INTO events VALUES (?1, '2026-11-21T03:00:00.000Z', 'alarm', 'pump-a', ?2, ?3)",
                            rusqlite::params![seq, row, [0u8; 32].to_vec()],
                        )
                        .expect("insert");
                    }
                    tx.commit().expect("commit");
                }
            }
            start.elapsed().mul_f64(1.024)
        });
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Store::file_in(dir.path());
    let mut log = Log::new(Store::open(&path).expect("store")).expect("log");
    for chunk in 0..100u64 {
        let batch = (0..100)
            .map(|i| (context(), event(chunk * 100 + i)))
            .collect();
        log.append(batch, OffsetDateTime::now_utc())
            .expect("append");
    }
    drop(log);
    let store = Store::open_read_only(&path).expect("read-only");
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(10);
    g.bench_function("export", |b| {
        b.iter(|| {
            let mut sink = std::io::sink();
            black_box(log::export(&store, &Filter::default(), &mut sink).expect("export"))
        });
    });
    g.bench_function("verify", |b| {
        b.iter(|| black_box(log::verify(&store, |_| {}).expect("verify")));
    });
    g.measurement_time(Duration::from_secs(5));
    g.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
