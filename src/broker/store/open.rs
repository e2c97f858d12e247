//! Opening the store: refusing what is not ours or is damaged, reading back what it holds, and
//! applying changes to its tables.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use redb::{Database, ReadableDatabase, ReadableTable, Table};
use rustc_hash::FxHashMap;

use super::messages::MessageIds;
use super::record::{self, BadRecord, Clock};
use super::{
    Change, DeliveryState, Restored, RestoredSession, Store, StoreError, DELIVERIES, INCOMING,
    MESSAGES, META, RETAINED, SESSIONS,
};
use crate::broker::session::Message;

/// The first bytes of a Mosquitto persistence file (`persist_read.c`).
const MOSQUITTO_MAGIC: [u8; 15] = *b"\x00\xB5\x00mosquitto db";

/// The tables of one write transaction.
pub(super) struct Tables<'a, 't> {
    pub(super) sessions: &'a mut Table<'t, &'static str, &'static [u8]>,
    pub(super) deliveries: &'a mut Table<'t, (&'static str, u64), &'static [u8]>,
    pub(super) messages: &'a mut Table<'t, u64, &'static [u8]>,
    pub(super) incoming: &'a mut Table<'t, (&'static str, u16), ()>,
    pub(super) retained: &'a mut Table<'t, &'static str, &'static [u8]>,
}

impl Tables<'_, '_> {
    /// Writes one change.
    pub(super) fn apply(
        &mut self,
        change: Change,
        ids: &mut MessageIds,
        clock: &Clock,
    ) -> Result<(), redb::Error> {
        match change {
            Change::Session(image) => {
                self.sessions
                    .insert(&*image.client_id, &record::encode_session(&image)[..])?;
            }
            Change::SessionEnded(client_id) => {
                let id = &*client_id;
                self.sessions.remove(id)?;
                let mut released = Vec::new();
                self.deliveries
                    .retain_in((id, 0)..=(id, u64::MAX), |_, v| {
                        released.push(record::delivery_msg_id(v));
                        false
                    })?;
                for m in released {
                    self.release(ids, m)?;
                }
                self.incoming
                    .retain_in((id, 0)..=(id, u16::MAX), |_, _| false)?;
            }
            Change::Delivery {
                client_id,
                seq,
                state,
            } => {
                let msg = match &state {
                    DeliveryState::Queued(d) | DeliveryState::Sent(_, d) => Some(&d.msg),
                    DeliveryState::Released(_) => None,
                };
                let mut msg_id = 0;
                if let Some(m) = msg {
                    let (id, new) = ids.acquire(m);
                    if new {
                        self.messages
                            .insert(id, &record::encode_message(m, clock)[..])?;
                    }
                    msg_id = id;
                }
                let value = record::encode_delivery(&state, msg_id);
                let old = self
                    .deliveries
                    .insert((&*client_id, seq), &value[..])?
                    .map(|v| record::delivery_msg_id(v.value()));
                if let Some(old) = old {
                    self.release(ids, old)?;
                }
            }
            Change::Delivered { client_id, seq } => {
                let old = self
                    .deliveries
                    .remove((&*client_id, seq))?
                    .map(|v| record::delivery_msg_id(v.value()));
                if let Some(old) = old {
                    self.release(ids, old)?;
                }
            }
            Change::Received {
                client_id,
                pkid,
                held,
            } => {
                if held {
                    self.incoming.insert((&*client_id, pkid), ())?;
                } else {
                    self.incoming.remove((&*client_id, pkid))?;
                }
            }
            Change::Retained { topic, msg } => match msg {
                Some(m) => {
                    self.retained
                        .insert(topic.as_str(), &record::encode_message(&m, clock)[..])?;
                }
                None => {
                    self.retained.remove(topic.as_str())?;
                }
            },
        }
        Ok(())
    }

    fn release(&mut self, ids: &mut MessageIds, id: u64) -> Result<(), redb::Error> {
        if id != 0 && ids.release(id) {
            self.messages.remove(id)?;
        }
        Ok(())
    }
}

fn refuse(path: &Path, what: impl std::fmt::Display, todo: &str) -> StoreError {
    StoreError(format!("persistence: {}: {what}; {todo}", path.display()))
}

const MOVE_IT: &str = "move it away to start with an empty store (what it held is then lost), or restore a backup of it";

/// Refuses a file Mosquitto wrote: its format is not ours, and opening it would destroy it.
fn refuse_mosquitto_file(path: &Path) -> Result<(), StoreError> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut head = [0u8; 15];
    if f.read_exact(&mut head).is_ok() && head == MOSQUITTO_MAGIC {
        return Err(refuse(
            path,
            "is a Mosquitto persistence file, which this broker cannot read",
            "set `persistence_file` to another name (the default is mqtt-policy.db)",
        ));
    }
    Ok(())
}

/// Opens the store, checking the whole file; see [`Store::open`].
pub(super) fn open(path: &Path) -> Result<(Store, Restored), StoreError> {
    refuse_mosquitto_file(path)?;
    let opened = std::panic::catch_unwind(|| {
        Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
    });
    let mut db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => return Err(refuse(
            path,
            "is in use by another process",
            "is another broker running with the same persistence_location and persistence_file?",
        )),
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            return Err(refuse(path, format!("is not a store ({e})"), MOVE_IT))
        }
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))) => {
            return Err(refuse(
                path,
                format!("cannot be opened or created: {e}"),
                "check that persistence_location exists and that the broker's user may write there",
            ))
        }
        Ok(Err(e)) => {
            return Err(refuse(
                path,
                format!("is damaged or not a store ({e})"),
                MOVE_IT,
            ))
        }
        Err(_) => return Err(refuse(path, "is damaged (reading it failed)", MOVE_IT)),
    };
    // A first write: a store that cannot be written (a full disk, a read-only file) is refused now,
    // not at the first acknowledgement.
    let writable = (|| -> Result<(), redb::Error> {
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            if let Some(v) = meta.get("format")?.map(|v| v.value().to_vec()) {
                if v != [record::FORMAT] {
                    return Err(redb::Error::Corrupted(format!(
                        "record format {v:?}, this broker writes format {}",
                        record::FORMAT
                    )));
                }
            }
            meta.insert("format", &[record::FORMAT][..])?;
            tx.open_table(SESSIONS)?;
            tx.open_table(DELIVERIES)?;
            tx.open_table(MESSAGES)?;
            tx.open_table(INCOMING)?;
            tx.open_table(RETAINED)?;
        }
        tx.commit()?;
        Ok(())
    })();
    if let Err(e) = writable {
        return Err(refuse(
            path,
            format!("cannot be written: {e}"),
            "free disk space or make the file writable by the broker's user",
        ));
    }
    let clock = Clock::now();
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_all(&db, &clock)));
    let (restored, ids, cleanup) = match loaded {
        Ok(Ok(l)) => l,
        Ok(Err(Unreadable::Store(e))) => {
            return Err(refuse(path, format!("cannot be read ({e})"), MOVE_IT))
        }
        Ok(Err(Unreadable::Record(where_, e))) => {
            return Err(refuse(
                path,
                format!("{where_} does not read back: {e}"),
                MOVE_IT,
            ))
        }
        Err(_) => return Err(refuse(path, "is damaged (reading it failed)", MOVE_IT)),
    };
    let tidy = (|| -> Result<(), redb::Error> {
        let tx = db.begin_write()?;
        {
            let mut messages = tx.open_table(MESSAGES)?;
            for id in &cleanup.messages {
                messages.remove(*id)?;
            }
            let mut retained = tx.open_table(RETAINED)?;
            for t in &cleanup.retained {
                retained.remove(t.as_str())?;
            }
            let mut deliveries = tx.open_table(DELIVERIES)?;
            for (c, seq) in &cleanup.deliveries {
                deliveries.remove((c.as_str(), *seq))?;
            }
        }
        tx.commit()?;
        // Gives the pages of what was deleted back to the file system (bounded: each call does a
        // bounded amount of work and says whether there is more).
        for _ in 0..64 {
            if !db.compact(redb::CompactionMode::default())? {
                break;
            }
        }
        Ok(())
    })();
    if let Err(e) = tidy {
        return Err(refuse(
            path,
            format!("cannot be written: {e}"),
            "free disk space or make the file writable by the broker's user",
        ));
    }
    let store = Store {
        db,
        path: path.to_path_buf(),
        messages: ids,
    };
    Ok((store, restored))
}

enum Unreadable {
    Store(redb::Error),
    Record(String, BadRecord),
}

macro_rules! unreadable_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Unreadable {
            fn from(e: $t) -> Unreadable {
                Unreadable::Store(e.into())
            }
        }
    )*};
}
unreadable_from!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError
);

/// What the start removes: rows nothing refers to any more, expired retained messages.
#[derive(Default)]
struct Cleanup {
    messages: Vec<u64>,
    retained: Vec<String>,
    deliveries: Vec<(String, u64)>,
}

fn read_all(db: &Database, clock: &Clock) -> Result<(Restored, MessageIds, Cleanup), Unreadable> {
    let tx = db.begin_read()?;
    let mut cleanup = Cleanup::default();
    let wall = clock.wall;
    let live = |expires: Option<SystemTime>| expires.is_none_or(|t| t > wall);

    let mut messages: FxHashMap<u64, (Arc<Message>, u32)> = FxHashMap::default();
    for row in tx.open_table(MESSAGES)?.iter()? {
        let (k, v) = row?;
        let (m, _) = record::decode_message(v.value(), clock)
            .map_err(|e| Unreadable::Record(format!("message {}", k.value()), e))?;
        messages.insert(k.value(), (Arc::new(m), 0));
    }
    let mut sessions: BTreeMap<String, RestoredSession> = BTreeMap::new();
    for row in tx.open_table(SESSIONS)?.iter()? {
        let (k, v) = row?;
        let image = record::decode_session(v.value())
            .map_err(|e| Unreadable::Record(format!("session {:?}", k.value()), e))?;
        sessions.insert(
            k.value().to_owned(),
            RestoredSession {
                image,
                deliveries: Vec::new(),
                incoming: Vec::new(),
            },
        );
    }
    for row in tx.open_table(DELIVERIES)?.iter()? {
        let (k, v) = row?;
        let (client, seq) = k.value();
        let where_ = || format!("delivery {seq} to {client:?}");
        let Some(s) = sessions.get_mut(client) else {
            cleanup.deliveries.push((client.to_owned(), seq));
            continue;
        };
        let stored =
            record::decode_delivery(v.value()).map_err(|e| Unreadable::Record(where_(), e))?;
        let msg = match stored.msg_id {
            0 => None,
            id => match messages.get_mut(&id) {
                Some((m, refs)) => {
                    *refs += 1;
                    Some(Arc::clone(m))
                }
                None => {
                    return Err(Unreadable::Record(
                        where_(),
                        BadRecord(format!("its message {id} is missing")),
                    ))
                }
            },
        };
        let state = stored
            .into_state(msg)
            .map_err(|e| Unreadable::Record(where_(), e))?;
        s.deliveries.push((seq, state));
    }
    for row in tx.open_table(INCOMING)?.iter()? {
        let (k, _) = row?;
        let (client, pkid) = k.value();
        if let Some(s) = sessions.get_mut(client) {
            s.incoming.push(pkid);
        }
    }
    let mut retained = Vec::new();
    for row in tx.open_table(RETAINED)?.iter()? {
        let (k, v) = row?;
        let (m, expires) = record::decode_message(v.value(), clock)
            .map_err(|e| Unreadable::Record(format!("retained message of {:?}", k.value()), e))?;
        if live(expires) {
            retained.push(m);
        } else {
            cleanup.retained.push(k.value().to_owned());
        }
    }
    let mut ids = MessageIds::default();
    for (id, (m, refs)) in &messages {
        if *refs == 0 {
            cleanup.messages.push(*id);
        } else {
            ids.register(*id, m, *refs);
        }
    }
    let restored = Restored {
        retained,
        sessions: sessions.into_values().collect(),
    };
    Ok((restored, ids, cleanup))
}
