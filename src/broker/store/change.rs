//! What the router asks the store to keep, and what the store gives back at start: plain data, no I/O.
//!
//! The router describes each change of durable state as a [`Change`], in the order it happens, among
//! its other actions ([`crate::broker::router::Action::Store`]). The network layer hands them to the
//! store and commits them before it sends any packet of the same turn, so that a PUBACK, PUBREC,
//! CONNACK or SUBACK never reaches a client before what it acknowledges is on disk.

use std::sync::Arc;
use std::time::SystemTime;

use crate::broker::codec::{Version, Will};
use crate::broker::session::{Delivery, Expiry, Message};
use crate::broker::subs::SubEntry;
use crate::policy::topic::{TopicFilter, TopicName};

/// One change of durable state.
#[derive(Debug)]
pub enum Change {
    /// A durable session's own state: everything but its deliveries and incoming QoS 2 ids.
    Session(Box<SessionImage>),
    /// A session ended, or stopped being durable: forget it and everything it holds.
    SessionEnded(Arc<str>),
    /// A delivery to a durable session, queued, in flight or released; replaces the one with the
    /// same `seq`.
    Delivery {
        /// The subscriber's client id.
        client_id: Arc<str>,
        /// Its number in the session, in the order the deliveries were made.
        seq: u64,
        /// Where it stands.
        state: DeliveryState,
    },
    /// A delivery is over (acknowledged, expired, refused by the policy, too big).
    Delivered {
        /// The subscriber's client id.
        client_id: Arc<str>,
        /// Its number in the session.
        seq: u64,
    },
    /// An incoming QoS 2 packet id: `held` from the PUBREC the broker sent until the client's PUBREL.
    Received {
        /// The publisher's client id.
        client_id: Arc<str>,
        /// The packet id.
        pkid: u16,
        /// `true`: PUBREC sent; `false`: PUBREL received.
        held: bool,
    },
    /// The retained message of a topic: set, or cleared (`None`).
    Retained {
        /// The topic.
        topic: TopicName,
        /// The message, or `None` to clear it.
        msg: Option<Arc<Message>>,
    },
}

/// A durable session's own state, with wall-clock times (an `Instant` does not survive a restart).
#[derive(Clone, Debug)]
pub struct SessionImage {
    /// The client id.
    pub client_id: Arc<str>,
    /// The username of its last connection.
    pub username: Option<String>,
    /// The protocol version of its last connection.
    pub version: Version,
    /// When it ends after its connection closes (never [`Expiry::OnClose`] here).
    pub expiry: Expiry,
    /// When it was disconnected (`None`: connected).
    pub disconnected_at: Option<SystemTime>,
    /// Its subscriptions.
    pub subscriptions: Vec<(TopicFilter, SubEntry)>,
    /// Its Will: of the current connection, or a delayed Will waiting for `will_due`.
    pub will: Option<Box<Will>>,
    /// When the delayed Will is due.
    pub will_due: Option<SystemTime>,
}

/// Where a delivery stands.
#[derive(Clone, Debug)]
pub enum DeliveryState {
    /// Waiting for an in-flight slot or a connection.
    Queued(Delivery),
    /// PUBLISH sent with this packet id, waiting for PUBACK or PUBREC: sent again, with DUP, when the
    /// session resumes.
    Sent(u16, Delivery),
    /// PUBREL sent with this packet id, waiting for PUBCOMP.
    Released(u16),
}

/// What the store held at start, for [`crate::broker::router::Router::restore`].
#[derive(Debug, Default)]
pub struct Restored {
    /// Retained messages (expired ones left out).
    pub retained: Vec<Message>,
    /// Durable sessions.
    pub sessions: Vec<RestoredSession>,
}

/// One durable session as the store held it.
#[derive(Debug)]
pub struct RestoredSession {
    /// Its own state.
    pub image: SessionImage,
    /// Its deliveries, by `seq`, in order.
    pub deliveries: Vec<(u64, DeliveryState)>,
    /// Incoming QoS 2 packet ids awaiting PUBREL.
    pub incoming: Vec<u16>,
}
