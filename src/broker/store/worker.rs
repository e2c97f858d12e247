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
    /// Starts the thread; `done` is called on it with each batch's outcome, in order.
    pub fn spawn(
        mut store: Store,
        done: impl Fn(Result<usize, StoreError>) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel::<Batch>();
        std::thread::Builder::new()
            .name("mqtt-store".to_owned())
            .spawn(move || {
                // Ends when the core drops its handle.
                while let Ok(batch) = rx.recv() {
                    let result = match batch {
                        Batch::Changes(c) => store.commit(c),
                        Batch::Rewrite(all) => store.rewrite(all),
                    };
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
