//! The MQTT codec, client to broker: a connection's bytes decoded as the network layer reads them
//! (`src/broker/net/conn.rs`): a CONNECT first, then packets in the version it chose, until the first
//! error. Every packet decoded is encoded again for the same version and must decode to the same packet.
//! The connection keeps its last PUBLISH topic as the network layer does (`TopicCache`): every packet
//! must decode as it does without one.
//!
//! Input: one byte that picks where the connection starts (before the CONNECT, or already speaking
//! 3.1, 3.1.1 or 5, so that every packet type is reachable without a CONNECT in front) and the
//! maximum packet size, then the bytes the client sent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_policy::broker::codec::{
    decode_client_packet, decode_client_packet_cached, encode, Packet, TopicCache, Version,
};

/// The largest packet the codec can express.
const MAX: usize = mqtt_policy::broker::codec::MAX_REMAINING_LENGTH + 5;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut buf)) = data.split_first() else {
        return;
    };
    let mut version = match mode & 3 {
        0 => None,
        1 => Some(Version::V31),
        2 => Some(Version::V311),
        _ => Some(Version::V5),
    };
    // Mostly the default limit; sometimes a small one, to reach the size checks.
    let max = if mode & 4 == 0 {
        MAX
    } else {
        16 + usize::from(mode >> 3) * 8
    };
    let mut topics = TopicCache::default();
    // Bounded: every iteration consumes a whole packet (at least 2 bytes).
    loop {
        let decoded = decode_client_packet_cached(buf, version, max, &mut topics);
        let uncached = decode_client_packet(buf, version, max);
        assert_eq!(decoded, uncached, "the topic cache changed a decoding");
        match decoded {
            Ok(Some((packet, used))) => {
                assert!(
                    used >= 2 && used <= buf.len(),
                    "used {used} of {}",
                    buf.len()
                );
                let before = version;
                if let Packet::Connect(c) = &packet {
                    version = Some(c.version);
                }
                round_trip(&packet, before, version.expect("a version after CONNECT"));
                buf = &buf[used..];
            }
            Ok(None) => return,
            Err(e) => {
                // Every error has a reason code and a message.
                let _ = (e.reason_code(), e.to_string());
                return;
            }
        }
    }
});

/// Encodes `packet` for `version` and decodes it again as the same connection would.
fn round_trip(packet: &Packet, before: Option<Version>, version: Version) {
    let mut out = Vec::new();
    encode(packet, version, &mut out);
    match decode_client_packet(&out, before, MAX) {
        Ok(Some((again, used))) => {
            assert_eq!(used, out.len(), "{packet:?} encoded as {out:02x?}");
            assert_eq!(&again, packet, "encoded as {out:02x?}");
        }
        other => panic!("{packet:?} encoded as {out:02x?} decodes as {other:?}"),
    }
}
