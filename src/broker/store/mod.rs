//! Persistence (`persistence true`): the broker's durable state in one redb file, chosen by
//! measurement (`doc/store-choice.md`).
//!
//! The router describes every change of durable state as a [`Change`]; the network layer gathers
//! them and has the [`worker`] thread [`Store::commit`] them in one write transaction (group commit:
//! one `fdatasync` for everything gathered while the previous commit ran), and sends the packets of
//! those turns only once it is done. So once a client has a PUBACK, PUBREC, CONNACK or SUBACK, what
//! it acknowledges survives a crash or a `kill -9`. At start, [`Store::open`] checks the whole file (redb's integrity check) and
//! gives back what it holds ([`Restored`]); a file that is not ours or is damaged is refused with its
//! path and what to do, never opened empty and never a panic.
//!
//! Tables: `sessions` (client id → [`record::encode_session`]), `deliveries` ((client id, seq) → a
//! delivery referring to a message id), `messages` (id → message, written once however many durable
//! sessions it goes to, removed with its last delivery), `incoming` ((client id, packet id): QoS 2
//! received, PUBREL awaited), `retained` (topic → message).

pub mod change;
mod messages;
mod open;
pub mod record;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, TableDefinition};

pub use change::{Change, DeliveryState, Restored, RestoredSession, SessionImage};
use messages::MessageIds;
use record::Clock;

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const DELIVERIES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("deliveries");
const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
const INCOMING: TableDefinition<(&str, u16), ()> = TableDefinition::new("incoming");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// A store that cannot be opened or written: the message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The open store.
pub struct Store {
    db: Database,
    path: PathBuf,
    messages: MessageIds,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn failed(path: &Path, what: &str, e: impl Into<redb::Error>) -> StoreError {
    StoreError(format!(
        "persistence: {}: {what}: {}",
        path.display(),
        e.into()
    ))
}

impl Store {
    /// Opens (or creates) the store at `path` and reads back what it holds.
    pub fn open(path: &Path) -> Result<(Store, Restored), StoreError> {
        open::open(path)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `changes` in one transaction and returns once they are on disk. On an error nothing
    /// of them is kept (the transaction is aborted) and the file may lack changes memory has: the
    /// caller must not acknowledge what they were for, and must [`Store::rewrite`] before the next
    /// write.
    pub fn commit(&mut self, changes: Vec<Change>) -> Result<usize, StoreError> {
        let n = changes.len();
        self.write(changes, &Clock::now(), false).map(|()| n)
    }

    /// Replaces everything in the file with `all` (the router's whole durable state): after a
    /// failed commit, memory is the truth.
    pub fn rewrite(&mut self, all: Vec<Change>) -> Result<usize, StoreError> {
        let n = all.len();
        self.write(all, &Clock::now(), true).map(|()| n)
    }

    fn write(&mut self, changes: Vec<Change>, clock: &Clock, wipe: bool) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .db
            .begin_write()
            .map_err(|e| failed(&path, "cannot write", e))?;
        let result = (|| -> Result<(), redb::Error> {
            let mut sessions = tx.open_table(SESSIONS)?;
            let mut deliveries = tx.open_table(DELIVERIES)?;
            let mut messages = tx.open_table(MESSAGES)?;
            let mut incoming = tx.open_table(INCOMING)?;
            let mut retained = tx.open_table(RETAINED)?;
            if wipe {
                sessions.retain(|_, _| false)?;
                deliveries.retain(|_, _| false)?;
                messages.retain(|_, _| false)?;
                incoming.retain(|_, _| false)?;
                retained.retain(|_, _| false)?;
                self.messages = MessageIds::default();
            }
            let mut t = open::Tables {
                sessions: &mut sessions,
                deliveries: &mut deliveries,
                messages: &mut messages,
                incoming: &mut incoming,
                retained: &mut retained,
            };
            for c in changes {
                t.apply(c, &mut self.messages, clock)?;
            }
            Ok(())
        })();
        match result {
            // On an error the message ids no longer match the file: the store is then stale, and
            // its rewrite starts them again.
            Ok(()) => tx.commit().map_err(|e| failed(&path, "cannot commit", e)),
            Err(e) => {
                let _ = tx.abort();
                Err(failed(&path, "cannot write", e))
            }
        }
    }
}

/// The message ids are shared by deliveries: `Arc` identity, while a durable delivery holds it.
pub(crate) fn message_key(m: &Arc<crate::broker::session::Message>) -> usize {
    Arc::as_ptr(m) as usize
}

#[cfg(test)]
mod tests;
