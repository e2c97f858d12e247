//! The store's thread: commits run beside the core, so that the core goes on routing (and gathering
//! the next batch) while a commit waits for the disk.

use std::sync::mpsc;

use super::{Change, Store, StoreError};

/// What the thread is asked to write.
pub enum Batch {
    /// The changes of some turns, in order.
    Changes(Vec<Change>),
    /// The whole durable state, replacing the file's (after a failed commit).
    Rewrite(Vec<Change>),
}

/// The handle of the store's thread; dropping it ends the thread after its current batch.
pub struct Worker {
    tx: mpsc::Sender<Batch>,
}

impl Worker {
    /// Starts the thread; `done` is called on it with each batch's outcome, in order. After a failed
    /// batch the store is closed, and opened again (checked, as at start) before the next one: redb
    /// refuses every write after an I/O error until it is reopened, and the next batch is then the
    /// whole state ([`Batch::Rewrite`]).
    pub fn spawn(
        store: Store,
        done: impl Fn(Result<usize, StoreError>) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel::<Batch>();
        let path = store.path().to_path_buf();
        let mut store = Some(store);
        std::thread::Builder::new()
            .name("mqtt-store".to_owned())
            .spawn(move || {
                // Ends when the core drops its handle.
                while let Ok(batch) = rx.recv() {
                    let open = match store.as_mut() {
                        Some(s) => Ok(s),
                        None => Store::open(&path).map(|(s, _)| store.insert(s)),
                    };
                    let result = open.and_then(|s| match batch {
                        Batch::Changes(c) => s.commit(c),
                        Batch::Rewrite(all) => s.rewrite(all),
                    });
                    if result.is_err() {
                        store = None;
                    }
                    done(result);
                }
            })?;
        Ok(Worker { tx })
    }

    /// Hands a batch to the thread. `false` if the thread is gone (it panicked).
    pub fn send(&self, batch: Batch) -> bool {
        self.tx.send(batch).is_ok()
    }
}
