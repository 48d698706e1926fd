//! The archive in PostgreSQL, for a hospital with hundreds of gateways:
//! the same tables as the SQLite archive, with a schema version table and
//! migrations applied in one transaction each. The synchronous client
//! runs on the archive's writer thread.
//!
//! The connection is plain TCP or a Unix socket (`host=/run/postgresql`):
//! run the archive beside its database, or reach it over a network the
//! hospital already protects; TLS to PostgreSQL is not built.

use postgres::{Client, NoTls};

use super::backend::{
    Anomaly, AnomalyKind, ArchiveError, Backend, GatewaySummary, Key, Link, NewRecord, hash32,
    to_i64, to_u64,
};

/// Migrations, in order; `archive_schema.version` counts those applied.
const MIGRATIONS: &[&str] = &["CREATE TABLE records (
        site       TEXT   NOT NULL,
        gateway    TEXT   NOT NULL,
        seq        BIGINT NOT NULL,
        at         TEXT   NOT NULL,
        type       TEXT   NOT NULL,
        care_area  TEXT   NOT NULL,
        pump       TEXT,
        hash       BYTEA  NOT NULL,
        prev_hash  BYTEA  NOT NULL,
        record     BYTEA  NOT NULL,
        PRIMARY KEY (site, gateway, seq)
    );
    CREATE INDEX records_at ON records(at);
    CREATE TABLE anomalies (
        id          BIGSERIAL PRIMARY KEY,
        site        TEXT NOT NULL,
        gateway     TEXT NOT NULL,
        seq         BIGINT,
        kind        TEXT NOT NULL,
        detail      TEXT NOT NULL,
        noticed_at  TEXT NOT NULL,
        record      BYTEA
    );"];

/// A PostgreSQL archive.
pub struct Postgres {
    client: Client,
    target: String,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = &url[s + 3..at];
            let user = user.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl Postgres {
    /// Connects and brings the schema up to date.
    pub fn open(url: &str) -> Result<Postgres, ArchiveError> {
        let target = without_password(url);
        let err = |source| ArchiveError::Postgres {
            target: target.clone(),
            source,
        };
        let mut client = Client::connect(url, NoTls).map_err(err)?;
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS archive_schema (version BIGINT NOT NULL)")
            .map_err(err)?;
        let mut tx = client.transaction().map_err(err)?;
        // One archive process migrates at a time.
        tx.batch_execute("LOCK TABLE archive_schema IN EXCLUSIVE MODE")
            .map_err(err)?;
        let version: i64 = tx
            .query_opt("SELECT version FROM archive_schema", &[])
            .map_err(err)?
            .map_or(0, |r| r.get(0));
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(ArchiveError::TooNew(target, version, known));
        }
        for (i, m) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            tx.batch_execute(m).map_err(err)?;
            let v = i64::try_from(i + 1).unwrap_or(i64::MAX);
            tx.execute("DELETE FROM archive_schema", &[]).map_err(err)?;
            tx.execute("INSERT INTO archive_schema (version) VALUES ($1)", &[&v])
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(Postgres { client, target })
    }

    fn err(&self) -> impl Fn(postgres::Error) -> ArchiveError + use<> {
        let target = self.target.clone();
        move |source| ArchiveError::Postgres {
            target: target.clone(),
            source,
        }
    }
}

impl Backend for Postgres {
    fn describe(&self) -> String {
        format!("PostgreSQL {}", self.target)
    }

    fn heads(&mut self) -> Result<Vec<(Key, u64, [u8; 32])>, ArchiveError> {
        let err = self.err();
        let rows = self
            .client
            .query(
                "SELECT DISTINCT ON (site, gateway) site, gateway, seq, hash FROM records
                 ORDER BY site, gateway, seq DESC",
                &[],
            )
            .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    Key {
                        site: r.get(0),
                        gateway: r.get(1),
                    },
                    to_u64(r.get(2)),
                    hash32(r.get::<_, &[u8]>(3)),
                )
            })
            .collect())
    }

    fn head(&mut self, key: &Key) -> Result<Option<(u64, [u8; 32])>, ArchiveError> {
        let err = self.err();
        let row = self
            .client
            .query_opt(
                "SELECT seq, hash FROM records WHERE site = $1 AND gateway = $2 ORDER BY seq DESC LIMIT 1",
                &[&key.site, &key.gateway],
            )
            .map_err(err)?;
        Ok(row.map(|r| (to_u64(r.get(0)), hash32(r.get::<_, &[u8]>(1)))))
    }

    fn link(&mut self, key: &Key, seq: u64) -> Result<Option<Link>, ArchiveError> {
        let err = self.err();
        let row = self
            .client
            .query_opt(
                "SELECT hash, prev_hash FROM records WHERE site = $1 AND gateway = $2 AND seq = $3",
                &[&key.site, &key.gateway, &to_i64(seq)],
            )
            .map_err(err)?;
        Ok(row.map(|r| Link {
            hash: hash32(r.get::<_, &[u8]>(0)),
            prev_hash: hash32(r.get::<_, &[u8]>(1)),
        }))
    }

    fn write(&mut self, records: &[NewRecord], anomalies: &[Anomaly]) -> Result<(), ArchiveError> {
        let err = self.err();
        let mut tx = self.client.transaction().map_err(&err)?;
        if !records.is_empty() {
            let st = tx
                .prepare(
                    "INSERT INTO records (site, gateway, seq, at, type, care_area, pump, hash, prev_hash, record)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .map_err(&err)?;
            for r in records {
                tx.execute(
                    &st,
                    &[
                        &r.key.site,
                        &r.key.gateway,
                        &to_i64(r.seq),
                        &r.at,
                        &r.kind,
                        &r.care_area,
                        &r.pump,
                        &&r.link.hash[..],
                        &&r.link.prev_hash[..],
                        &r.bytes,
                    ],
                )
                .map_err(&err)?;
            }
        }
        for a in anomalies {
            tx.execute(
                "INSERT INTO anomalies (site, gateway, seq, kind, detail, noticed_at, record)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &a.key.site,
                    &a.key.gateway,
                    &a.seq.map(to_i64),
                    &a.kind.word(),
                    &a.detail,
                    &a.noticed_at,
                    &a.bytes,
                ],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(err)
    }

    fn summary(&mut self) -> Result<Vec<GatewaySummary>, ArchiveError> {
        let err = self.err();
        let rows = self
            .client
            .query(super::backend::SUMMARY, &[])
            .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let records = to_u64(r.get(2));
                let last_seq = to_u64(r.get(3));
                GatewaySummary {
                    key: Key {
                        site: r.get(0),
                        gateway: r.get(1),
                    },
                    records,
                    last_seq,
                    last_at: r.get(4),
                    missing: last_seq.saturating_sub(records),
                    anomalies: to_u64(r.get(5)),
                }
            })
            .collect())
    }

    fn gaps(&mut self, key: &Key) -> Result<Vec<(u64, u64)>, ArchiveError> {
        let err = self.err();
        let rows = self
            .client
            .query(
                "SELECT CAST(1 AS BIGINT), MIN(seq) - 1 FROM records
                   WHERE site = $1 AND gateway = $2 HAVING MIN(seq) > 1
                 UNION ALL
                 SELECT seq + 1, next - 1 FROM
                   (SELECT seq, LEAD(seq) OVER (ORDER BY seq) AS next FROM records
                     WHERE site = $1 AND gateway = $2) AS s
                   WHERE next > seq + 1
                 ORDER BY 1",
                &[&key.site, &key.gateway],
            )
            .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| (to_u64(r.get(0)), to_u64(r.get(1))))
            .collect())
    }

    fn anomalies(&mut self) -> Result<Vec<Anomaly>, ArchiveError> {
        let err = self.err();
        let rows = self
            .client
            .query(
                "SELECT site, gateway, seq, kind, detail, noticed_at FROM anomalies ORDER BY id",
                &[],
            )
            .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| Anomaly {
                key: Key {
                    site: r.get(0),
                    gateway: r.get(1),
                },
                seq: r.get::<_, Option<i64>>(2).map(to_u64),
                kind: AnomalyKind::from_word(r.get(3)).unwrap_or(AnomalyKind::Malformed),
                detail: r.get(4),
                noticed_at: r.get(5),
                bytes: None,
            })
            .collect())
    }

    fn count(&mut self) -> Result<u64, ArchiveError> {
        let err = self.err();
        let row = self
            .client
            .query_one("SELECT COUNT(*) FROM records", &[])
            .map_err(err)?;
        Ok(to_u64(row.get(0)))
    }

    fn each_record(
        &mut self,
        site: Option<&str>,
        (from, to): (&str, &str),
        only: &[&str],
        visit: &mut dyn FnMut(&Key, &[u8]),
    ) -> Result<(), ArchiveError> {
        let err = self.err();
        let mut tx = self.client.transaction().map_err(&err)?;
        // A cursor: a month of a hospital's events need not fit in memory.
        let st = tx
            .prepare(
                "SELECT site, gateway, record FROM records
                 WHERE ($1::text IS NULL OR site = $1) AND at >= $2 AND at < $3
                   AND (cardinality($4::text[]) = 0 OR type = ANY($4))
                 ORDER BY site, gateway, seq",
            )
            .map_err(&err)?;
        let only: Vec<&str> = only.to_vec();
        let portal = tx.bind(&st, &[&site, &from, &to, &only]).map_err(&err)?;
        loop {
            let rows = tx.query_portal(&portal, 10_000).map_err(&err)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let key = Key {
                    site: r.get(0),
                    gateway: r.get(1),
                };
                visit(&key, r.get::<_, &[u8]>(2));
            }
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            without_password("postgres://archive:s3cret@db.example:5432/pumpgw"),
            "postgres://archive@db.example:5432/pumpgw"
        );
        assert_eq!(
            without_password("postgres://db.example/pumpgw"),
            "postgres://db.example/pumpgw"
        );
    }
}
