//! The core: owns the [`Router`], feeds it the connections' events, executes its actions, and
//! with `persistence true` has the changes of each turn written to the store before it sends that
//! turn's packets. Group commit: the store's thread writes one batch at a time; the turns handled
//! meanwhile form the next batch, and their actions wait for it (past [`MAX_HELD`] held actions the
//! connection threads stop handing it packets until the commit is done).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use super::drops::Drops;
use super::shard::ShardHandle;
use super::{flow, log, notify, reload, CoreMsg, Options, Stderr};
use crate::broker::codec::{Packet, QoS};
use crate::broker::config::BrokerConfig;
use crate::broker::outbox::{self, Outgoing, Pushed};
use crate::broker::router::{Action, Event, Router};
use crate::broker::session::ConnId;
use crate::broker::store::worker::{Batch, Worker};
use crate::broker::store::{Change, StoreError};
use crate::enforce::audit_sink::AuditSink;
use crate::enforce::logins::VerifyPool;

/// How long after a failed commit the store is tried again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The most actions held for one commit: past it the store is written even if more events wait,
/// so that a busy broker still answers within one commit's time.
pub(super) const MAX_HELD: usize = 4096;

/// The time of a message for the core: read once for the packets of one read, which arrive
/// within microseconds.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    /// For deadlines and durations.
    pub(super) now: Instant,
    /// For audit records and the store.
    pub(super) wall: SystemTime,
}

impl Clock {
    /// Now.
    pub(super) fn read() -> Clock {
        Clock {
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// The store's side of the core: what is gathered for the next commit and what waits for the
/// current one.
pub(super) struct Persist {
    worker: Worker,
    /// Changes of the turns since the last batch went to the store's thread.
    staged: Vec<Change>,
    /// The actions of the batch being written (`None`: no commit running).
    committing: Option<Vec<(Action, Option<ConnId>)>>,
    /// A commit failed: the next batch rewrites the whole state.
    stale: bool,
    /// After a failed commit, not before this (one attempt a second, not a loop of failures).
    retry_at: Option<Instant>,
}

impl Persist {
    /// The store's side, around its thread.
    pub(super) fn new(worker: Worker) -> Persist {
        Persist {
            worker,
            staged: Vec::new(),
            committing: None,
            stale: false,
            retry_at: None,
        }
    }
}

/// The core's state.
pub(super) struct Core {
    pub(super) router: Router,
    pub(super) config: BrokerConfig,
    pub(super) options: Options,
    pub(super) audit: AuditSink,
    pub(super) limits: outbox::Limits,
    pub(super) verifier: VerifyPool,
    /// For the verdicts of password checks.
    pub(super) verdict_tx: mpsc::Sender<CoreMsg>,
    pub(super) persist: Option<Persist>,
    /// Registered connections' outboxes (the rest of a connection lives in its shard).
    conns: flow::Conns,
    drops: Drops,
    flow: flow::Flow,
    /// Actions waiting for the next commit, each with the publisher whose PUBLISH caused it.
    held: Vec<(Action, Option<ConnId>)>,
    /// Connections with an action waiting (in `held` or in the commit running).
    held_conns: rustc_hash::FxHashSet<ConnId>,
    actions: Vec<Action>,
    /// The connection threads, woken by [`Core::end_batch`] for what the core queued.
    shards: Vec<Arc<ShardHandle>>,
}

impl Core {
    /// The core, before its first event.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        router: Router,
        config: BrokerConfig,
        options: Options,
        audit: AuditSink,
        limits: outbox::Limits,
        verifier: VerifyPool,
        verdict_tx: mpsc::Sender<CoreMsg>,
        persist: Option<Persist>,
    ) -> Core {
        Core {
            router,
            config,
            options,
            audit,
            limits,
            verifier,
            verdict_tx,
            persist,
            conns: flow::Conns::default(),
            drops: Drops::default(),
            flow: flow::Flow::default(),
            held: Vec::new(),
            held_conns: Default::default(),
            actions: Vec::new(),
            shards: Vec::new(),
        }
    }

    /// The connection threads, once they exist (they need the core first).
    pub(super) fn set_shards(&mut self, shards: Vec<Arc<ShardHandle>>) {
        self.shards = shards;
    }

    /// The end of a batch of messages: the store's next commit may start (see [`Core::flush`]),
    /// and the connection threads whose outboxes were rung are woken, except `own` (the calling
    /// connection thread, which serves its rung outboxes itself). A thread is woken once for a
    /// batch of packets rather than for the first of them.
    pub(super) fn end_batch(&mut self, own: Option<usize>) {
        self.flush(false);
        for (i, s) in self.shards.iter().enumerate() {
            if Some(i) != own {
                s.wake_if_rung();
            }
        }
    }

    /// Logs the stop, with what was dropped in all.
    pub(super) fn stopping(&self, why: &str) {
        let mut dropped = String::new();
        if self.drops.total > 0 {
            dropped = format!(
                " ({} outgoing QoS 0 messages were dropped in all)",
                self.drops.total
            );
        }
        if self.router.queue_drops() > 0 {
            dropped += &format!(
                " ({} queued messages were dropped in all because a queue was full)",
                self.router.queue_drops()
            );
        }
        log(&format!("{why}: stopping{dropped}"));
        notify::stopping();
    }

    /// Handles one message; `more_waiting`: others are already queued behind it (the store's
    /// commit may wait for them).
    pub(super) fn handle(&mut self, msg: CoreMsg, more_waiting: bool, clock: Clock) {
        // Whoever sent the PUBLISH being handled: paused if it fills a subscriber's queue.
        let mut source = None;
        match msg {
            CoreMsg::Register { conn, outbox } => {
                self.conns.insert(conn, outbox);
            }
            CoreMsg::Drained { conn } => {
                self.flow.outbox_drained(&self.conns, &self.limits, conn);
            }
            CoreMsg::Reload => self.reload(),
            CoreMsg::Event(event) => {
                let closed = match &event {
                    Event::Closed { conn } => Some(*conn),
                    Event::Tick => {
                        self.drops.report(self.options.verbose);
                        self.flow
                            .tick(&self.conns, &self.limits, &self.router, clock.now);
                        None
                    }
                    Event::Packet {
                        conn,
                        packet: Packet::Publish(_),
                    } => {
                        source = Some(*conn);
                        None
                    }
                    _ => None,
                };
                self.router.handle(event, clock.now, clock.wall);
                if let Some(conn) = closed {
                    self.flow.closed(&self.conns, conn);
                    if self.conns.remove(&conn).is_some() {
                        self.drops.forget(conn);
                    }
                }
            }
        }
        let mut actions = std::mem::take(&mut self.actions);
        self.router.take_actions(&mut actions);
        match self.persist.as_mut() {
            Some(p) => {
                // First what this turn changes, then its actions: those that acknowledge a change
                // wait for it to be written.
                let changed = take_changes(&mut actions, &mut p.staged);
                for action in actions.drain(..) {
                    if self.must_wait(&action, changed) {
                        if let Some(conn) = conn_of(&action) {
                            self.held_conns.insert(conn);
                        }
                        self.held.push((action, source));
                    } else {
                        self.dispatch(action, source);
                    }
                }
                self.flush(more_waiting);
            }
            None => {
                for action in actions.drain(..) {
                    self.dispatch(action, source);
                }
            }
        }
        self.actions = actions;
    }

    /// Whether an action of a turn (`changed`: the turn changed durable state) must wait for the
    /// next commit: a packet that tells its client something is done (PUBACK, PUBREC, PUBREL,
    /// PUBCOMP, CONNACK, SUBACK, UNSUBACK) or a QoS 2 PUBLISH (its packet id must be kept first, or a
    /// restart could deliver it twice), when the turn changed something; and anything for a
    /// connection that already has a packet waiting, so that its packets keep their order.
    /// Everything else goes at once: a QoS 0/1 PUBLISH to a subscriber does not wait for the disk
    /// (if the broker dies before the commit, its publisher, unacknowledged, sends it again: at
    /// least once).
    fn must_wait(&self, action: &Action, changed: bool) -> bool {
        match action {
            Action::Send { conn, packet } => {
                self.held_conns.contains(conn) || (changed && needs_durability(packet))
            }
            Action::Deliver { conn, publish } => {
                self.held_conns.contains(conn) || (changed && publish.qos == QoS::ExactlyOnce)
            }
            Action::Accepted { conn, .. } | Action::Close { conn } => {
                self.held_conns.contains(conn)
            }
            _ => false,
        }
    }

    /// `true` while the core must not take more events: a commit runs and [`MAX_HELD`] actions
    /// already wait for the next one.
    pub(super) fn saturated(&self) -> bool {
        self.persist
            .as_ref()
            .is_some_and(|p| (p.committing.is_some() || p.stale) && self.held.len() >= MAX_HELD)
    }

    /// Starts the next commit when none runs: at once if no more events wait (or enough actions
    /// are held), else after the waiting events joined the batch. Held actions with no change to
    /// wait for go out at once.
    fn flush(&mut self, more_waiting: bool) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        if p.committing.is_some() {
            return;
        }
        if p.staged.is_empty() && !p.stale {
            self.held_conns.clear();
            for (action, source) in std::mem::take(&mut self.held) {
                self.dispatch(action, source);
            }
            return;
        }
        if more_waiting && self.held.len() < MAX_HELD {
            return;
        }
        if p.retry_at.is_some_and(|t| Instant::now() < t) {
            // Tried again on a later turn (the clock's tick is one).
            return;
        }
        let batch = if p.stale {
            // Memory is the truth: it includes what was staged.
            p.staged.clear();
            Batch::Rewrite(self.router.durable_state())
        } else {
            Batch::Changes(std::mem::take(&mut p.staged))
        };
        p.committing = Some(std::mem::take(&mut self.held));
        if !p.worker.send(batch) {
            self.committed(Err(StoreError(
                "persistence: the store's thread is gone".to_owned(),
            )));
        }
    }

    /// The store's thread finished a batch: its actions go out, or on a failed write every
    /// acknowledgement of the batch is withheld (their clients are disconnected: a QoS 1/2
    /// publisher sends its message again), it is logged, and the next batch rewrites the whole
    /// state. Then the next batch starts.
    pub(super) fn committed(&mut self, result: Result<usize, StoreError>) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        let held = p.committing.take().unwrap_or_default();
        // Connections with packets still waiting: those of the next batch.
        self.held_conns.clear();
        for (action, _) in &self.held {
            if let Some(conn) = conn_of(action) {
                self.held_conns.insert(conn);
            }
        }
        match result {
            Ok(_) => {
                if p.stale {
                    log("persistence: the store is written again");
                }
                p.stale = false;
                p.retry_at = None;
                for (action, source) in held {
                    self.dispatch(action, source);
                }
            }
            Err(e) => {
                p.stale = true;
                p.retry_at = Some(Instant::now() + RETRY);
                let mut withheld = rustc_hash::FxHashSet::default();
                let mut pass = Vec::new();
                for (action, source) in held {
                    match &action {
                        Action::Send { conn, packet } if acknowledges(packet) => {
                            withheld.insert(*conn);
                        }
                        _ => pass.push((action, source)),
                    }
                }
                log(&format!(
                    "{e}; what it could not write is not acknowledged ({} clients disconnected without their acknowledgements); trying again in {} s",
                    withheld.len(),
                    RETRY.as_secs()
                ));
                for (action, source) in pass {
                    self.dispatch(action, source);
                }
                for conn in withheld {
                    self.abort(conn);
                }
            }
        }
        self.flush(false);
    }

    /// Closes a connection from here (the router learns it from the connection's end).
    fn abort(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            c.abort();
            self.flow.closed(&self.conns, conn);
            self.drops.forget(conn);
        }
    }

    fn reload(&mut self) {
        notify::reloading();
        let status = match reload(&self.config) {
            Ok((next, s)) => {
                for w in s.warnings() {
                    log(&format!("warning: {w}"));
                }
                if let Some(e) = s.shadow_error() {
                    log(&format!(
                        "error: {e}; the shadow policy is absent until a reload loads it (the live policy is not affected)"
                    ));
                }
                let status = s.describe();
                log(&format!("SIGHUP: reloaded; {status}"));
                if let Some(m) = self.router.metrics() {
                    m.reloaded(true);
                    m.policy_loaded(s.fingerprint().to_owned(), Arc::clone(s.hits()));
                    m.set_shadow_loaded(s.shadow().is_some());
                }
                self.config = next;
                // Connected clients' logins are checked again: some may be disconnected.
                self.router.set_security(Arc::new(s));
                status
            }
            Err(e) => {
                if let Some(m) = self.router.metrics() {
                    m.reloaded(false);
                }
                log(&format!(
                    "SIGHUP: reload failed, the previous policy stays in force: {e}"
                ));
                "reload failed, the previous policy stays in force".to_string()
            }
        };
        self.audit.reopen(&Stderr);
        notify::ready(&status);
    }

    fn dispatch(&mut self, action: Action, source: Option<ConnId>) {
        match action {
            Action::Send { .. } | Action::Deliver { .. } => {
                let Some((conn, item)) = action.into_queued() else {
                    return;
                };
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                match c.push_item(item, &self.limits) {
                    Pushed::Queued => {}
                    Pushed::Congested => {
                        self.flow.outbox_congested(
                            &self.conns,
                            &self.limits,
                            conn,
                            source,
                            Instant::now(),
                        );
                    }
                    Pushed::Dropped => {
                        self.drops.note(conn, c, &self.router, &self.limits);
                        // Full: whoever sent it waits too (unless the subscriber is slow).
                        self.flow.outbox_congested(
                            &self.conns,
                            &self.limits,
                            conn,
                            source,
                            Instant::now(),
                        );
                    }
                    Pushed::Overflow => {
                        // A client that sends without reading: close it now; the task's end
                        // reports the close to the router.
                        log(&format!(
                            "client {:?}: {} packets wait for its socket and it sends without reading: disconnecting",
                            self.router.client_id(conn).unwrap_or("?"),
                            c.waiting().packets
                        ));
                        self.abort(conn);
                    }
                }
            }
            Action::Accepted { conn, keep_alive } => {
                if let Some(c) = self.conns.get(&conn) {
                    c.push_signal(Outgoing::Accepted { keep_alive });
                }
            }
            Action::Close { conn } => {
                self.flow.closed(&self.conns, conn);
                if let Some(c) = self.conns.remove(&conn) {
                    c.push_signal(Outgoing::Close);
                    self.drops.forget(conn);
                }
            }
            Action::Backlogged { conn } => {
                self.flow
                    .queue_backlogged(&self.conns, conn, source, Instant::now());
            }
            Action::Relieved { conn } => self.flow.queue_relieved(&self.conns, &self.limits, conn),
            Action::Notice(line) => log(&line),
            Action::Verify {
                conn,
                ticket,
                passwords,
                username,
                password,
                shadow,
            } => {
                let tx = self.verdict_tx.clone();
                self.verifier.submit(
                    passwords,
                    username,
                    password,
                    move |result, username, password| {
                        let shadow = shadow.and_then(|s| s.verify_login(username, Some(password)));
                        // A worker thread, outside the runtime: blocking is fine here.
                        let _ = tx.blocking_send(CoreMsg::Event(Event::Verified {
                            conn,
                            ticket,
                            result,
                            shadow,
                        }));
                    },
                );
            }
            Action::Audit(record) => self.audit.write(&Stderr, &record),
            Action::Log(line) => {
                if self.options.verbose {
                    log(&line);
                }
            }
            // Only without a store (never staged then): nothing to keep.
            Action::Store(_) => {}
        }
    }
}

/// Moves the store changes out of `actions` into `staged`, keeping the other actions in order;
/// `true` if there were any.
fn take_changes(actions: &mut Vec<Action>, staged: &mut Vec<Change>) -> bool {
    let before = staged.len();
    actions.retain_mut(|a| {
        if !matches!(a, Action::Store(_)) {
            return true;
        }
        // A placeholder in the slot, dropped by `retain_mut` at once.
        if let Action::Store(change) = std::mem::replace(a, Action::Notice(String::new())) {
            staged.push(change);
        }
        false
    });
    staged.len() > before
}

/// The connection an action is for, if it keeps an order with that connection's packets.
fn conn_of(action: &Action) -> Option<ConnId> {
    match action {
        Action::Send { conn, .. }
        | Action::Deliver { conn, .. }
        | Action::Accepted { conn, .. }
        | Action::Close { conn } => Some(*conn),
        _ => None,
    }
}

/// Packets that must not leave before what they depend on is written.
fn needs_durability(p: &Packet) -> bool {
    acknowledges(p)
        || matches!(p, Packet::PubRel(_))
        || matches!(p, Packet::Publish(p) if p.qos == QoS::ExactlyOnce)
}

/// Packets that tell a client something is done: withheld when it could not be written.
fn acknowledges(p: &Packet) -> bool {
    matches!(
        p,
        Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubComp(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
    )
}
