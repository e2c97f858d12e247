//! Retained messages: the last retained message of every topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::session::Message;
use crate::policy::topic;

/// The retained store.
#[derive(Debug, Default)]
pub struct Retained {
    by_topic: HashMap<String, Arc<Message>>,
}

impl Retained {
    /// Stores `msg` as its topic's retained message; an empty payload clears it (MQTT-3.3.1-10).
    pub fn set(&mut self, msg: &Arc<Message>) {
        if msg.payload.is_empty() {
            self.by_topic.remove(&msg.topic);
        } else {
            self.by_topic.insert(msg.topic.clone(), Arc::clone(msg));
        }
    }

    /// The unexpired retained messages whose topic `filter` matches (with the `$` rule).
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        self.by_topic
            .values()
            .filter(|m| !m.expired(now) && topic::matches(filter, &m.topic))
            .cloned()
            .collect()
    }

    /// Drops expired messages.
    pub fn expire(&mut self, now: Instant) {
        self.by_topic.retain(|_, m| !m.expired(now));
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// `true` when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}
