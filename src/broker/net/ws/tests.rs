//! The WebSocket layer on bytes: frames across reads, control frames, refusals, the upgrade.

use super::*;

/// A masked client frame.
fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let h = FrameHeader {
        is_final: fin,
        opcode,
        mask: Some(mask),
        ..FrameHeader::default()
    };
    let mut out = Vec::new();
    h.format(payload.len() as u64, &mut out).unwrap();
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

fn open(max_frame: usize) -> Ws {
    let mut ws = Ws::new(std::sync::Arc::default(), max_frame);
    ws.request = None;
    ws
}

/// Feeds `bytes` in reads of `step` bytes: the MQTT bytes, or the close code of an error.
fn feed(ws: &mut Ws, bytes: &[u8], step: usize) -> Result<Vec<u8>, Option<u16>> {
    let mut got = Vec::new();
    for chunk in bytes.chunks(step) {
        let mut buf = chunk.to_vec();
        let n = ws.frames(&mut buf).map_err(|(code, _)| code)?;
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

const BIN: OpCode = OpCode::Data(Data::Binary);

#[test]
fn binary_payloads_stream_whatever_the_reads() {
    let long: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let mut bytes = frame(BIN, true, b"hello ");
    bytes.extend(frame(BIN, false, b"frag"));
    bytes.extend(frame(OpCode::Control(Control::Ping), true, b"p"));
    bytes.extend(frame(OpCode::Data(Data::Continue), true, b"mented "));
    bytes.extend(frame(BIN, true, b""));
    bytes.extend(frame(BIN, true, &long));
    let mut want = b"hello fragmented ".to_vec();
    want.extend_from_slice(&long);
    for step in [1, 2, 3, 7, 13, 4096, bytes.len()] {
        let mut ws = open(1 << 20);
        assert_eq!(
            feed(&mut ws, &bytes, step).unwrap(),
            want,
            "reads of {step}"
        );
        // The ping's pong: 0x8a, length 1, "p".
        assert_eq!(ws.out, [0x8a, 1, b'p'], "reads of {step}");
    }
}

#[test]
fn a_close_is_echoed_and_ends_the_stream() {
    let mut ws = open(1024);
    let mut bytes = frame(BIN, true, b"ab");
    bytes.extend(frame(
        OpCode::Control(Control::Close),
        true,
        &1001u16.to_be_bytes(),
    ));
    bytes.extend(frame(BIN, true, b"after"));
    assert_eq!(feed(&mut ws, &bytes, bytes.len()).unwrap(), b"ab");
    assert!(ws.ended);
    assert_eq!(ws.out, [0x88, 2, 0x03, 0xe9]);
}

#[test]
fn what_is_not_mqtt_over_websocket_is_refused() {
    let cases: &[(Vec<u8>, u16)] = &[
        (
            frame(OpCode::Data(Data::Text), true, b"x"),
            CLOSE_UNSUPPORTED,
        ),
        (frame(BIN, true, &[0; 2000]), CLOSE_TOO_BIG),
        (
            frame(OpCode::Data(Data::Continue), true, b"x"),
            CLOSE_PROTOCOL,
        ),
        (
            frame(OpCode::Control(Control::Ping), false, b"x"),
            CLOSE_PROTOCOL,
        ),
        (
            frame(OpCode::Control(Control::Ping), true, &[0; 126]),
            CLOSE_PROTOCOL,
        ),
        // Unmasked.
        (vec![0x82, 1, b'x'], CLOSE_PROTOCOL),
        // RSV1 without an extension.
        (vec![0xc2, 0x81, 0, 0, 0, 0, b'x'], CLOSE_PROTOCOL),
    ];
    for (bytes, code) in cases {
        let mut ws = open(1024);
        assert_eq!(feed(&mut ws, bytes, 1), Err(Some(*code)), "{bytes:?}");
    }
}

#[test]
fn the_upgrade_needs_the_mqtt_subprotocol() {
    let req = |proto: &str| {
        format!(
            "GET /mqtt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{proto}\r\n"
        )
    };
    let mut ws = Ws::new(std::sync::Arc::default(), 1024);
    let text = req("Sec-WebSocket-Protocol: chat, mqtt\r\n");
    let (a, b) = text.as_bytes().split_at(40);
    assert_eq!(ws.upgrade(a).unwrap(), None);
    assert_eq!(ws.upgrade(b).unwrap(), Some(Vec::new()));
    let answer = String::from_utf8(ws.out.clone()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqtt\r\n"),
        "{answer}"
    );
    assert!(!ws.handshaking());

    // The older name, as Mosquitto accepts it, and a frame sent right behind the request.
    let mut ws = Ws::new(std::sync::Arc::default(), 1024);
    let mut text = req("Sec-WebSocket-Protocol: mqttv3.1\r\n").into_bytes();
    text.extend(frame(BIN, true, b"x"));
    let rest = ws.upgrade(&text).unwrap().unwrap();
    let answer = String::from_utf8(ws.out.clone())
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        answer.contains("sec-websocket-protocol: mqttv3.1\r\n"),
        "{answer}"
    );
    assert_eq!(rest, frame(BIN, true, b"x"));

    for bad in ["", "Sec-WebSocket-Protocol: chat\r\n"] {
        let mut ws = Ws::new(std::sync::Arc::default(), 1024);
        assert!(ws.upgrade(req(bad).as_bytes()).is_err());
        assert!(String::from_utf8_lossy(&ws.out).starts_with("HTTP/1.1 400"));
    }
    let only = std::sync::Arc::new(WsListener {
        origins: vec!["https://ok".into()],
    });
    let mut ws = Ws::new(only, 1024);
    let text = req("Sec-WebSocket-Protocol: mqtt\r\nOrigin: https://evil\r\n");
    assert!(ws.upgrade(text.as_bytes()).is_err());
    assert!(String::from_utf8_lossy(&ws.out).starts_with("HTTP/1.1 403"));
}
