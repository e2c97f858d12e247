//! [`Props`]: the MQTT 5 properties of the packets that pass by the million (PUBLISH and its
//! acknowledgements), boxed. Most carry none, and then a `Props` is one null pointer instead of a
//! few hundred bytes, so that packets move cheaply from the connection threads through the
//! router to the outboxes. It reads and writes as the [`Properties`] it holds (`Deref`), and
//! allocates only when a property is set.

use std::ops::{Deref, DerefMut};

use super::{DecodeError, Properties, PropertyContext, Reader};

/// No property: what an empty [`Props`] reads as.
static NONE: Properties = Properties {
    payload_format: None,
    message_expiry: None,
    content_type: None,
    response_topic: None,
    correlation_data: None,
    subscription_ids: Vec::new(),
    session_expiry: None,
    assigned_client_id: None,
    server_keep_alive: None,
    auth_method: None,
    auth_data: None,
    request_problem_info: None,
    will_delay: None,
    request_response_info: None,
    response_info: None,
    server_reference: None,
    reason_string: None,
    receive_maximum: None,
    topic_alias_maximum: None,
    topic_alias: None,
    maximum_qos: None,
    retain_available: None,
    user: Vec::new(),
    maximum_packet_size: None,
    wildcard_available: None,
    subscription_ids_available: None,
    shared_available: None,
};

/// [`Properties`] in a box, absent while empty.
#[derive(Clone, Debug, Default)]
pub struct Props(Option<Box<Properties>>);

impl Props {
    /// `true` when no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(Properties::is_empty)
    }

    /// Reads a packet's properties. The common empty set (length 0) is read without building a
    /// [`Properties`] and comparing it with the empty one.
    pub(crate) fn read(r: &mut Reader<'_>, ctx: PropertyContext) -> Result<Props, DecodeError> {
        let mut ahead = r.clone();
        if ahead.varint()? == 0 {
            *r = ahead;
            return Ok(Props::default());
        }
        Properties::read(r, ctx).map(Props::from)
    }

    /// The properties for a change, when some are set; `None`, allocating nothing, when none is
    /// (writing through `DerefMut` allocates the box on the first write).
    pub fn get_mut(&mut self) -> Option<&mut Properties> {
        self.0.as_deref_mut()
    }

    /// The properties, by value.
    pub fn into_inner(self) -> Properties {
        self.0.map(|b| *b).unwrap_or_default()
    }
}

impl From<Properties> for Props {
    fn from(p: Properties) -> Props {
        if p.is_empty() {
            Props(None)
        } else {
            Props(Some(Box::new(p)))
        }
    }
}

impl Deref for Props {
    type Target = Properties;

    fn deref(&self) -> &Properties {
        self.0.as_deref().unwrap_or(&NONE)
    }
}

impl DerefMut for Props {
    /// Allocates the box on the first write.
    fn deref_mut(&mut self) -> &mut Properties {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Props {
    /// Equal when the same properties are set (empty and absent are the same).
    fn eq(&self, other: &Props) -> bool {
        **self == **other
    }
}

impl Eq for Props {}

impl PartialEq<Properties> for Props {
    fn eq(&self, other: &Properties) -> bool {
        **self == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_props_is_one_pointer_and_reads_as_no_property() {
        assert_eq!(std::mem::size_of::<Props>(), std::mem::size_of::<usize>());
        let p = Props::default();
        assert!(p.is_empty());
        assert_eq!(*p, Properties::default());
        assert_eq!(p, Props::from(Properties::default()));
    }

    #[test]
    fn a_write_allocates_and_is_read_back() {
        let mut p = Props::default();
        // Written through `DerefMut`, as the router writes a property.
        let props: &mut Properties = &mut p;
        props.message_expiry = Some(5);
        assert!(!p.is_empty());
        assert_eq!(p.message_expiry, Some(5));
        assert_eq!(p.clone().into_inner().message_expiry, Some(5));
        p.message_expiry = None;
        assert!(p.is_empty());
        assert!(
            Props::default().get_mut().is_none(),
            "nothing set: nothing to change"
        );
        assert_eq!(p, Props::default());
    }
}
