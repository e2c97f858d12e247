//! Which embedded store the broker's persistence (issue 10) should use, by measurement.
//!
//! `cargo bench --bench store-choice` (or `... -- redb fjall` for a subset of the stores,
//! `commit reopen kill corrupt sweep disk` for a subset of the measurements, `reps=1` for one run of
//! each measurement instead of three). Results are printed as Markdown tables;
//! doc/store-choice.md holds a run of it and what follows from it.
//!
//! Stores compared, each on the broker's workload of queued QoS 1 messages (16-byte key,
//! ~100 B or ~1 KB value):
//! - `redb`: pure Rust copy-on-write B-tree, one file, `Durability::Immediate` (the default);
//! - `fjall`: pure Rust LSM tree with a journal, batches with `PersistMode::SyncData`;
//! - `sqlite`: rusqlite (`bundled`), WAL mode, `synchronous=FULL` (NORMAL does not sync the WAL
//!   on commit, so a PUBACK sent after it could be for a message a power cut loses);
//! - `log`: a plain append-only file with a checksum per record and `File::sync_data` per
//!   batch, the floor: what an fsync costs on this disk with nothing else around it.
//!
//! Every loop is bounded in count and time; every store lives in a fresh temporary directory
//! under the system temp dir (removed afterwards). The kill -9 test runs this same binary as a
//! child (`store-choice child STORE DIR`) that writes until it is killed with SIGKILL.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// The key of record `i`: a client id and a sequence number, 16 bytes.
fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"client01");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn index_of(k: &[u8]) -> Option<u64> {
    if k.len() != 16 {
        return None;
    }
    Some(u64::from_be_bytes(k[8..].try_into().ok()?))
}

/// The value of record `i`: checkable, so that silently wrong data is seen.
fn value(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize + j * 7) as u8).collect()
}

fn value_ok(i: u64, v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .enumerate()
            .all(|(j, b)| *b == (i as usize + j * 7) as u8)
}

/// What a full scan found.
#[derive(Default, Debug, Clone, Copy)]
struct Scan {
    records: u64,
    /// Records whose key or value is not what was written.
    bad: u64,
    /// One past the highest record index found.
    top: u64,
}

impl Scan {
    fn add(&mut self, k: &[u8], v: &[u8]) {
        self.records += 1;
        match index_of(k) {
            Some(i) if value_ok(i, v) => self.top = self.top.max(i + 1),
            _ => self.bad += 1,
        }
    }
}

trait Store {
    /// One durable commit of `puts` and `dels`: when it returns, they survive a crash.
    fn commit(&mut self, puts: &[([u8; 16], Vec<u8>)], dels: &[[u8; 16]]) -> Res<()>;
    fn scan(&self) -> Res<Scan>;
    /// Give space back to the file system, where the store has a way to.
    fn compact(&mut self) -> Res<&'static str> {
        Ok("none")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Redb,
    /// redb opened with `Builder::set_check_integrity_on_open(true)`: its documented way to
    /// report a file corrupted outside redb as an error instead of possibly panicking.
    RedbChecked,
    Fjall,
    Sqlite,
    Log,
}

const KINDS: [Kind; 4] = [Kind::Redb, Kind::Fjall, Kind::Sqlite, Kind::Log];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Redb => "redb",
            Kind::RedbChecked => "redb+check",
            Kind::Fjall => "fjall",
            Kind::Sqlite => "sqlite",
            Kind::Log => "log",
        }
    }
    fn parse(s: &str) -> Option<Kind> {
        KINDS
            .into_iter()
            .chain([Kind::RedbChecked])
            .find(|k| k.name() == s)
    }
    fn open(self, dir: &Path) -> Res<Box<dyn Store>> {
        Ok(match self {
            Kind::Redb => Box::new(RedbStore::open(dir, false)?),
            Kind::RedbChecked => Box::new(RedbStore::open(dir, true)?),
            Kind::Fjall => Box::new(FjallStore::open(dir)?),
            Kind::Sqlite => Box::new(SqliteStore::open(dir)?),
            Kind::Log => Box::new(LogStore::open(dir)?),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// redb

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("queued");

struct RedbStore {
    db: redb::Database,
}

impl RedbStore {
    fn open(dir: &Path, check: bool) -> Res<Self> {
        let db = redb::Database::builder()
            .set_check_integrity_on_open(check)
            .create(dir.join("store.redb"))
            .map_err(e)?;
        let tx = db.begin_write().map_err(e)?;
        tx.open_table(REDB_TABLE).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(RedbStore { db })
    }
}

impl Store for RedbStore {
    fn commit(&mut self, puts: &[([u8; 16], Vec<u8>)], dels: &[[u8; 16]]) -> Res<()> {
        let tx = self.db.begin_write().map_err(e)?;
        {
            let mut t = tx.open_table(REDB_TABLE).map_err(e)?;
            for (k, v) in puts {
                t.insert(&k[..], &v[..]).map_err(e)?;
            }
            for k in dels {
                t.remove(&k[..]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
    fn scan(&self) -> Res<Scan> {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = self.db.begin_read().map_err(e)?;
        let t = tx.open_table(REDB_TABLE).map_err(e)?;
        let mut s = Scan::default();
        for kv in t.iter().map_err(e)? {
            let (k, v) = kv.map_err(e)?;
            s.add(k.value(), v.value());
        }
        Ok(s)
    }
    fn compact(&mut self) -> Res<&'static str> {
        // Bounded: each call does a bounded amount of work.
        for _ in 0..1000 {
            if !self
                .db
                .compact(redb::CompactionMode::default())
                .map_err(e)?
            {
                break;
            }
        }
        Ok("Database::compact")
    }
}

// ---------------------------------------------------------------------------------------------
// fjall

struct FjallStore {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl FjallStore {
    fn open(dir: &Path) -> Res<Self> {
        let db = fjall::Database::builder(dir.join("fjall"))
            .open()
            .map_err(e)?;
        let ks = db
            .keyspace("queued", fjall::KeyspaceCreateOptions::default)
            .map_err(e)?;
        Ok(FjallStore { db, ks })
    }
}

impl Store for FjallStore {
    fn commit(&mut self, puts: &[([u8; 16], Vec<u8>)], dels: &[[u8; 16]]) -> Res<()> {
        let mut b = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        for (k, v) in puts {
            b.insert(&self.ks, &k[..], &v[..]);
        }
        for k in dels {
            b.remove(&self.ks, &k[..]);
        }
        b.commit().map_err(e)
    }
    fn scan(&self) -> Res<Scan> {
        let mut s = Scan::default();
        for g in self.ks.iter() {
            let (k, v) = g.into_inner().map_err(e)?;
            s.add(&k, &v);
        }
        Ok(s)
    }
    fn compact(&mut self) -> Res<&'static str> {
        self.ks.rotate_memtable_and_wait().map_err(e)?;
        self.ks.major_compact().map_err(e)?;
        // Old journals are dropped in the background once their memtable is flushed.
        std::thread::sleep(Duration::from_secs(2));
        Ok("rotate_memtable_and_wait + major_compact")
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite

struct SqliteStore {
    conn: rusqlite::Connection,
}

impl SqliteStore {
    fn open(dir: &Path) -> Res<Self> {
        let conn = rusqlite::Connection::open(dir.join("store.sqlite")).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS queued (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
        )
        .map_err(e)?;
        Ok(SqliteStore { conn })
    }
}

impl Store for SqliteStore {
    fn commit(&mut self, puts: &[([u8; 16], Vec<u8>)], dels: &[[u8; 16]]) -> Res<()> {
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut ins = tx
                .prepare_cached("INSERT OR REPLACE INTO queued (k, v) VALUES (?1, ?2)")
                .map_err(e)?;
            for (k, v) in puts {
                ins.execute((&k[..], &v[..])).map_err(e)?;
            }
            let mut del = tx
                .prepare_cached("DELETE FROM queued WHERE k = ?1")
                .map_err(e)?;
            for k in dels {
                del.execute([&k[..]]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
    fn scan(&self) -> Res<Scan> {
        let mut st = self.conn.prepare("SELECT k, v FROM queued").map_err(e)?;
        let mut rows = st.query([]).map_err(e)?;
        let mut s = Scan::default();
        while let Some(r) = rows.next().map_err(e)? {
            let k: Vec<u8> = r.get(0).map_err(e)?;
            let v: Vec<u8> = r.get(1).map_err(e)?;
            s.add(&k, &v);
        }
        Ok(s)
    }
    fn compact(&mut self) -> Res<&'static str> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
            .map_err(e)?;
        Ok("wal_checkpoint(TRUNCATE) + VACUUM")
    }
}

// ---------------------------------------------------------------------------------------------
// The floor: an append-only log, one checksum per record, `sync_data` per batch, an in-memory
// index rebuilt on open. Recovery stops at the first record whose length or checksum is wrong.

struct LogStore {
    file: fs::File,
    map: HashMap<[u8; 16], Vec<u8>>,
}

fn fnv64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl LogStore {
    fn open(dir: &Path) -> Res<Self> {
        let path = dir.join("store.log");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(e)?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(e)?;
        let mut map = HashMap::new();
        let mut at = 0usize;
        // Record: len u32 (of the payload) | fnv64 of payload | payload = op u8 | key 16 | value
        while at + 12 <= buf.len() {
            let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            let sum = u64::from_le_bytes(buf[at + 4..at + 12].try_into().unwrap());
            let end = at + 12 + len;
            if len < 17 || end > buf.len() || fnv64(&buf[at + 12..end]) != sum {
                break;
            }
            let p = &buf[at + 12..end];
            let k: [u8; 16] = p[1..17].try_into().unwrap();
            if p[0] == 1 {
                map.insert(k, p[17..].to_vec());
            } else {
                map.remove(&k);
            }
            at = end;
        }
        if at != buf.len() {
            // Recovered up to the last good record: cut the rest so new appends follow it.
            file.set_len(at as u64).map_err(e)?;
            file.sync_data().map_err(e)?;
            eprintln!(
                "log: {}: recovered {} bytes of {}, cut the rest",
                path.display(),
                at,
                buf.len()
            );
        }
        Ok(LogStore { file, map })
    }
}

impl Store for LogStore {
    fn commit(&mut self, puts: &[([u8; 16], Vec<u8>)], dels: &[[u8; 16]]) -> Res<()> {
        let mut out = Vec::with_capacity(puts.len() * 140 + dels.len() * 30);
        let mut rec = |op: u8, k: &[u8; 16], v: &[u8]| {
            let mut p = Vec::with_capacity(17 + v.len());
            p.push(op);
            p.extend_from_slice(k);
            p.extend_from_slice(v);
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(&fnv64(&p).to_le_bytes());
            out.extend_from_slice(&p);
        };
        for (k, v) in puts {
            rec(1, k, v);
        }
        for k in dels {
            rec(0, k, &[]);
        }
        self.file.write_all(&out).map_err(e)?;
        self.file.sync_data().map_err(e)?;
        for (k, v) in puts {
            self.map.insert(*k, v.clone());
        }
        for k in dels {
            self.map.remove(k);
        }
        Ok(())
    }
    fn scan(&self) -> Res<Scan> {
        let mut s = Scan::default();
        for (k, v) in &self.map {
            s.add(k, v);
        }
        Ok(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn tmpdir(kind: Kind) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("store-choice-{}-", kind.name()))
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir")
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic)".into()
    }
}

/// Open and scan, catching panics: "ok", "error: ..." or "PANIC: ...".
fn open_and_scan(kind: Kind, dir: &Path) -> (Result<Scan, String>, Duration) {
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| -> Res<Scan> {
        let s = kind.open(dir).map_err(|m| format!("open error: {m}"))?;
        s.scan().map_err(|m| format!("scan error: {m}"))
    }));
    let d = t.elapsed();
    (
        match r {
            Ok(r) => r,
            Err(p) => Err(format!("PANIC: {}", panic_text(p))),
        },
        d,
    )
}

fn files(dir: &Path, out: &mut Vec<(PathBuf, u64, u64)>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for ent in rd.flatten() {
            let p = ent.path();
            if let Ok(m) = fs::symlink_metadata(&p) {
                if m.is_dir() {
                    files(&p, out);
                } else {
                    out.push((p, m.len(), m.blocks() * 512));
                }
            }
        }
    }
}

/// (apparent bytes, allocated bytes) of everything under `dir`.
fn disk(dir: &Path) -> (u64, u64) {
    let mut v = Vec::new();
    files(dir, &mut v);
    v.iter().fold((0, 0), |a, f| (a.0 + f.1, a.1 + f.2))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn fill(store: &mut dyn Store, n: u64, len: usize, batch: u64) -> Res<()> {
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let puts: Vec<_> = (i..end).map(|j| (key(j), value(j, len))).collect();
        store.commit(&puts, &[])?;
        i = end;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measurements

struct Commit {
    batches_s: f64,
    records_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    batches: usize,
}

/// Durable batches of `batch` records of `len` bytes, for at most `limit` or `max_records`.
/// Then the same records deleted in batches of the same size (also bounded). Returns both.
fn group_commit(kind: Kind, batch: u64, len: usize, limit: Duration) -> Res<(Commit, Commit)> {
    let dir = tmpdir(kind);
    let mut s = kind.open(dir.path())?;
    let max_records: u64 = 200_000;
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < limit && n + batch <= max_records {
        let puts: Vec<_> = (n..n + batch).map(|j| (key(j), value(j, len))).collect();
        let t = Instant::now();
        s.commit(&puts, &[])?;
        lat.push(t.elapsed());
        n += batch;
    }
    let ins = summarize(&mut lat, start.elapsed(), batch);
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut d = 0u64;
    while start.elapsed() < limit && d + batch <= n {
        let dels: Vec<_> = (d..d + batch).map(key).collect();
        let t = Instant::now();
        s.commit(&[], &dels)?;
        lat.push(t.elapsed());
        d += batch;
    }
    let del = summarize(&mut lat, start.elapsed(), batch);
    drop(s);
    Ok((ins, del))
}

fn summarize(lat: &mut [Duration], total: Duration, batch: u64) -> Commit {
    lat.sort();
    let secs = total.as_secs_f64();
    Commit {
        batches_s: lat.len() as f64 / secs,
        records_s: (lat.len() as u64 * batch) as f64 / secs,
        p50_ms: pct(lat, 0.5),
        p99_ms: pct(lat, 0.99),
        batches: lat.len(),
    }
}

/// The child of the kill -9 test: durable batches of 16 records of 100 B, printing the number of
/// records acknowledged (committed) after each commit, until killed (or 20 s / 2M records).
fn child(kind: Kind, dir: &Path) {
    let mut s = kind.open(dir).expect("child open");
    let out = std::io::stdout();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(20) && n < 2_000_000 {
        let puts: Vec<_> = (n..n + 16).map(|j| (key(j), value(j, 100))).collect();
        s.commit(&puts, &[]).expect("child commit");
        n += 16;
        let mut o = out.lock();
        let _ = writeln!(o, "{n}");
        let _ = o.flush();
    }
}

struct Killed {
    acked: u64,
    result: Result<Scan, String>,
    open_ms: f64,
}

fn kill9(kind: Kind, run_for: Duration) -> Killed {
    let dir = tmpdir(kind);
    let acked = run_child_and_kill(kind, dir.path(), run_for);
    let (result, d) = open_and_scan(kind, dir.path());
    Killed {
        acked,
        result,
        open_ms: d.as_secs_f64() * 1e3,
    }
}

/// Runs the writing child on `dir` for `run_for`, kills it with SIGKILL; records acknowledged.
fn run_child_and_kill(kind: Kind, dir: &Path, run_for: Duration) -> u64 {
    let exe = std::env::current_exe().expect("current_exe");
    let mut ch = Command::new(exe)
        .arg("child")
        .arg(kind.name())
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = ch.stdout.take().unwrap();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = acked.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if let Ok(n) = l.trim().parse() {
                        seen.store(n, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                Err(_) => break,
            }
        }
    });
    // `run_for` from the first acknowledged commit (the child's start is not timed), ≤ 10 s.
    let t = Instant::now();
    while acked.load(std::sync::atomic::Ordering::SeqCst) == 0
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(run_for);
    // SIGKILL: Child::kill sends SIGKILL on Unix.
    let _ = ch.kill();
    let _ = ch.wait();
    let _ = reader.join();
    acked.load(std::sync::atomic::Ordering::SeqCst)
}

/// Write 100,000 records of 100 B, close, time opening and scanning them.
fn reopen_clean(kind: Kind) -> Res<(f64, Scan)> {
    let dir = tmpdir(kind);
    {
        let mut s = kind.open(dir.path())?;
        fill(&mut *s, 100_000, 100, 2_000)?;
    }
    let (r, d) = open_and_scan(kind, dir.path());
    Ok((d.as_secs_f64() * 1e3, r?))
}

/// Bytes for 100,000 live records of 100 B; after deleting all; after the store's compaction.
fn disk_cost(kind: Kind) -> Res<[(u64, u64); 4]> {
    let dir = tmpdir(kind);
    let live;
    let deleted;
    let reopened;
    let compacted;
    let mut how = "";
    {
        let mut s = kind.open(dir.path())?;
        fill(&mut *s, 100_000, 100, 2_000)?;
        drop(s);
        live = disk(dir.path());
        eprintln!("{} live: {}", kind.name(), listing(dir.path()));
        let mut s = kind.open(dir.path())?;
        let mut i = 0;
        while i < 100_000 {
            let dels: Vec<_> = (i..i + 2_000).map(key).collect();
            s.commit(&[], &dels)?;
            i += 2_000;
        }
        drop(s);
        deleted = disk(dir.path());
        eprintln!("{} deleted: {}", kind.name(), listing(dir.path()));
        let s = kind.open(dir.path())?;
        drop(s);
        reopened = disk(dir.path());
        let mut s = kind.open(dir.path())?;
        if let Ok(h) = s.compact() {
            how = h;
        }
        drop(s);
        compacted = disk(dir.path());
    }
    eprintln!(
        "{}: compaction = {how}; files: {}",
        kind.name(),
        listing(dir.path())
    );
    Ok([live, deleted, reopened, compacted])
}

/// The file to damage: after a crash, the one recovery reads first (fjall's journal, SQLite's
/// WAL); otherwise the biggest by allocated bytes. With the length of its written part (up to
/// its last non-zero byte: fjall preallocates its journal).
fn target_file(dir: &Path, crashed: bool) -> Option<(PathBuf, u64)> {
    let mut v = Vec::new();
    files(dir, &mut v);
    v.sort_by_key(|f| std::cmp::Reverse((f.2, f.1)));
    let pick = v
        .iter()
        .find(|f| {
            let n = f.0.to_string_lossy();
            crashed && (n.ends_with(".jnl") || n.ends_with("-wal"))
        })
        .or(v.first())?;
    let data = fs::read(&pick.0).ok()?;
    let used = data.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    Some((pick.0.clone(), used as u64))
}

fn listing(dir: &Path) -> String {
    let mut v = Vec::new();
    files(dir, &mut v);
    v.sort();
    v.iter()
        .map(|f| {
            format!(
                "{} {}/{}",
                f.0.strip_prefix(dir).unwrap_or(&f.0).display(),
                f.1,
                f.2
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Copy)]
enum Damage {
    TruncateAt(f64),
    TruncateTail(u64),
    /// 64 bytes inverted at this fraction of the written part.
    Flip(f64),
}

impl Damage {
    fn describe(self) -> String {
        match self {
            Damage::TruncateAt(f) => format!("truncate to {:.0}%", f * 100.0),
            Damage::TruncateTail(n) => format!("cut last {n} B"),
            Damage::Flip(f) => format!("flip 64 B at {:.0}%", f * 100.0),
        }
    }
}

/// Damage a store's file and open it. `crashed`: the store was left by a child killed with
/// SIGKILL after ~0.5 s of durable batches, instead of 10,000 records and a clean close.
fn corrupt(kind: Kind, dmg: Damage, crashed: bool) -> Res<(String, u64, String)> {
    let dir = tmpdir(kind);
    let expect = if crashed {
        run_child_and_kill(kind, dir.path(), Duration::from_millis(500))
    } else {
        let mut s = kind.open(dir.path())?;
        fill(&mut *s, 10_000, 100, 500)?;
        10_000
    };
    eprintln!("{} before damage: {}", kind.name(), listing(dir.path()));
    let (path, len) = target_file(dir.path(), crashed).ok_or("no file")?;
    let rel = path
        .strip_prefix(dir.path())
        .unwrap_or(&path)
        .display()
        .to_string();
    match dmg {
        Damage::TruncateAt(f) => {
            let f2 = fs::OpenOptions::new().write(true).open(&path).map_err(e)?;
            f2.set_len((len as f64 * f) as u64).map_err(e)?;
        }
        Damage::TruncateTail(n) => {
            let f2 = fs::OpenOptions::new().write(true).open(&path).map_err(e)?;
            f2.set_len(len.saturating_sub(n)).map_err(e)?;
        }
        Damage::Flip(f) => {
            let mut data = fs::read(&path).map_err(e)?;
            let at = (len as f64 * f) as usize;
            for b in data.iter_mut().skip(at).take(64) {
                *b ^= 0xff;
            }
            fs::write(&path, data).map_err(e)?;
        }
    }
    let (r, _) = open_and_scan(kind, dir.path());
    let what = match r {
        Ok(s) if s.records == 0 && expect > 0 => "SILENT EMPTY START".to_string(),
        Ok(s) if s.bad > 0 => format!(
            "opened, {} records ({expect} acked), {} WRONG",
            s.records, s.bad
        ),
        Ok(s) => format!(
            "opened, {} records ({expect} acked), all correct",
            s.records
        ),
        Err(m) => m,
    };
    Ok((rel, len, what))
}

fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    fs::create_dir_all(to).map_err(e)?;
    for ent in fs::read_dir(from).map_err(e)? {
        let ent = ent.map_err(e)?;
        let (src, dst) = (ent.path(), to.join(ent.file_name()));
        if ent.file_type().map_err(e)?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(e)?;
        }
    }
    Ok(())
}

/// Outcomes of `n` single 64-byte flips spread evenly over the written part of the biggest file,
/// each on a fresh copy of one store of 10,000 records of 100 B closed cleanly:
/// (outcome, count, first message).
fn flip_sweep(kind: Kind, n: usize) -> Res<Vec<(&'static str, usize, String)>> {
    let base = tmpdir(kind);
    {
        let mut s = kind.open(base.path())?;
        fill(&mut *s, 10_000, 100, 500)?;
    }
    let (path, len) = target_file(base.path(), false).ok_or("no file")?;
    let rel = path.strip_prefix(base.path()).map_err(e)?.to_path_buf();
    let mut out: Vec<(&'static str, usize, String)> = Vec::new();
    for i in 0..n {
        let copy = tmpdir(kind);
        copy_dir(base.path(), copy.path())?;
        let f = copy.path().join(&rel);
        let mut data = fs::read(&f).map_err(e)?;
        let at = (len as f64 * (i as f64 + 0.5) / n as f64) as usize;
        for b in data.iter_mut().skip(at).take(64) {
            *b ^= 0xff;
        }
        fs::write(&f, data).map_err(e)?;
        let (r, _) = open_and_scan(kind, copy.path());
        let (what, msg) = match r {
            Ok(s) if s.records == 0 => ("SILENT EMPTY START", String::new()),
            Ok(s) if s.bad > 0 => ("WRONG values, no error", format!("{} wrong", s.bad)),
            Ok(s) if s.records < 10_000 => (
                "records missing, no error",
                format!("{} of 10000", s.records),
            ),
            Ok(_) => ("all 10000 correct", String::new()),
            Err(m) if m.starts_with("PANIC") => ("PANIC (caught)", m),
            Err(m) => ("refused with an error", m),
        };
        match out.iter_mut().find(|o| o.0 == what) {
            Some(o) => o.1 += 1,
            None => out.push((what, 1, msg)),
        }
    }
    Ok(out)
}

fn one_line(s: &str) -> String {
    let s = s.replace('\n', " ").replace('|', "/");
    let dir = std::env::temp_dir().display().to_string();
    // No machine path in the report: the temp dir's name is replaced.
    let s = s.replace(&dir, "$TMP");
    if s.len() > 220 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(220).map_or(s.len(), |c| c.0)]
        )
    } else {
        s
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("child") {
        let kind = Kind::parse(&args[1]).expect("store name");
        child(kind, Path::new(&args[2]));
        return;
    }
    // Panics inside catch_unwind are reported in the tables, not as backtraces.
    std::panic::set_hook(Box::new(|_| {}));
    let mut reps = 3usize;
    let mut kinds = Vec::new();
    for a in &args {
        if let Some(n) = a.strip_prefix("reps=") {
            reps = n.parse().expect("reps=N");
        } else if let Some(k) = Kind::parse(a) {
            kinds.push(k);
        }
    }
    if kinds.is_empty() {
        kinds = KINDS.to_vec();
    }
    // redb with the integrity check on open, in the measurements of opening.
    let with_checked: Vec<Kind> =
        if kinds.contains(&Kind::Redb) && !kinds.contains(&Kind::RedbChecked) {
            vec![Kind::RedbChecked]
        } else {
            vec![]
        };
    const SECTIONS: [&str; 6] = ["commit", "reopen", "kill", "corrupt", "sweep", "disk"];
    let chosen: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| SECTIONS.contains(a))
        .collect();
    let only = |section: &str| chosen.is_empty() || chosen.contains(&section);
    println!(
        "temp dir: $TMP ({}), reps = {reps} (medians shown)\n",
        if std::env::temp_dir() == Path::new("/tmp") {
            "/tmp"
        } else {
            "other"
        }
    );

    if only("commit") {
        println!("## Group commit (each batch durable before the next; ≤ 1 s or 200,000 records per run)\n");
        println!("| store | value | batch | insert batches/s | insert records/s | insert p50 ms | insert p99 ms | delete batches/s | delete records/s | delete p50 ms | delete p99 ms |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for &k in &kinds {
            for len in [100usize, 1024] {
                for batch in [1u64, 16, 256] {
                    let mut runs = Vec::new();
                    for _ in 0..reps {
                        match group_commit(k, batch, len, Duration::from_secs(1)) {
                            Ok(r) => runs.push(r),
                            Err(m) => println!(
                                "| {} | {len} | {batch} | error: {} |",
                                k.name(),
                                one_line(&m)
                            ),
                        }
                    }
                    if runs.is_empty() {
                        continue;
                    }
                    let m =
                        |f: &dyn Fn(&(Commit, Commit)) -> f64| median(runs.iter().map(f).collect());
                    println!(
                        "| {} | {len} B | {batch} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2} | {:.2} |",
                        k.name(),
                        m(&|r| r.0.batches_s),
                        m(&|r| r.0.records_s),
                        m(&|r| r.0.p50_ms),
                        m(&|r| r.0.p99_ms),
                        m(&|r| r.1.batches_s),
                        m(&|r| r.1.records_s),
                        m(&|r| r.1.p50_ms),
                        m(&|r| r.1.p99_ms),
                    );
                    eprintln!(
                        "{} {len} {batch}: batches per run {:?}",
                        k.name(),
                        runs.iter()
                            .map(|r| (r.0.batches, r.1.batches))
                            .collect::<Vec<_>>()
                    );
                }
            }
        }
        println!();
    }

    if only("reopen") {
        println!("## Reopen: open + full scan of 100,000 records of 100 B after a clean close\n");
        println!("| store | open+scan ms (median) | records found | wrong |");
        println!("|---|---|---|---|");
        for &k in kinds.iter().chain(with_checked.iter()) {
            let mut ms = Vec::new();
            let mut last = String::new();
            for _ in 0..reps {
                match reopen_clean(k) {
                    Ok((d, s)) => {
                        ms.push(d);
                        last = format!("{} | {}", s.records, s.bad);
                    }
                    Err(m) => last = format!("error: {} | -", one_line(&m)),
                }
            }
            println!("| {} | {:.1} | {last} |", k.name(), median(ms));
        }
        println!();
    }

    if only("kill") {
        println!("## kill -9 of a child writing durable batches of 16 × 100 B, after ~1 s\n");
        println!("| store | run | acked records | open+scan ms | result |");
        println!("|---|---|---|---|---|");
        for &k in kinds.iter().chain(with_checked.iter()) {
            for run in 0..reps {
                let r = kill9(k, Duration::from_millis(1000));
                let res = match &r.result {
                    Ok(s) if s.records == 0 && r.acked > 0 => "SILENT EMPTY START".into(),
                    Ok(s) => format!(
                        "opened: {} records ({} wrong), {}",
                        s.records,
                        s.bad,
                        if s.top >= r.acked && s.records == s.top {
                            "every acked record there".to_string()
                        } else {
                            format!("LOST {} acked", r.acked.saturating_sub(s.records))
                        }
                    ),
                    Err(m) => one_line(m),
                };
                println!(
                    "| {} | {} | {} | {:.1} | {res} |",
                    k.name(),
                    run + 1,
                    r.acked,
                    r.open_ms
                );
            }
        }
        println!();
    }

    if only("corrupt") {
        let damages = [
            Damage::TruncateAt(0.25),
            Damage::TruncateAt(0.5),
            Damage::TruncateAt(0.9),
            Damage::TruncateTail(7),
            Damage::Flip(0.3),
            Damage::Flip(0.5),
            Damage::Flip(0.7),
        ];
        for crashed in [false, true] {
            if crashed {
                println!("## Corruption after kill -9 of the writing child (~0.5 s): the journal / WAL / file recovery reads\n");
            } else {
                println!("## Corruption of the biggest file after a clean close of 10,000 records of 100 B\n");
            }
            println!("| store | file (written bytes) | damage | on open + scan |");
            println!("|---|---|---|---|");
            for &k in kinds.iter().chain(with_checked.iter()) {
                for d in damages {
                    match corrupt(k, d, crashed) {
                        Ok((f, len, what)) => println!(
                            "| {} | {f} ({len}) | {} | {} |",
                            k.name(),
                            d.describe(),
                            one_line(&what)
                        ),
                        Err(m) => println!(
                            "| {} | - | {} | setup error: {} |",
                            k.name(),
                            d.describe(),
                            one_line(&m)
                        ),
                    }
                }
            }
            println!();
        }
    }

    if only("sweep") {
        let n = 32;
        println!("## {n} single 64-byte flips spread over the biggest file, clean close of 10,000 records\n");
        println!("| store | outcome | flips | first message |");
        println!("|---|---|---|---|");
        for &k in kinds.iter().chain(with_checked.iter()) {
            match flip_sweep(k, n) {
                Ok(v) => {
                    for (what, count, msg) in v {
                        println!("| {} | {what} | {count} | {} |", k.name(), one_line(&msg));
                    }
                }
                Err(m) => println!("| {} | setup error | - | {} |", k.name(), one_line(&m)),
            }
        }
        println!();
    }

    if only("disk") {
        println!(
            "## Disk cost of 100,000 records of 100 B (allocated bytes, apparent in brackets)\n"
        );
        println!("| store | live | after deleting all | after reopen | after compaction |");
        println!("|---|---|---|---|---|");
        for &k in &kinds {
            match disk_cost(k) {
                Ok(v) => {
                    let f = |x: (u64, u64)| {
                        format!("{:.1} MB ({:.1} MB)", x.1 as f64 / 1e6, x.0 as f64 / 1e6)
                    };
                    let f = |x: (u64, u64)| {
                        if x.1 < 1_000_000 {
                            format!("{} kB ({} kB)", x.1 / 1000, x.0 / 1000)
                        } else {
                            f(x)
                        }
                    };
                    println!(
                        "| {} | {} | {} | {} | {} |",
                        k.name(),
                        f(v[0]),
                        f(v[1]),
                        f(v[2]),
                        f(v[3])
                    );
                }
                Err(m) => println!("| {} | error: {} |", k.name(), one_line(&m)),
            }
        }
        println!();
    }
}
