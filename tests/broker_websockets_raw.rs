//! MQTT over WebSocket byte by byte, with a hand-made client (`tungstenite`) against our broker and
//! upstream Mosquitto 2.1.2 on the same config: an MQTT packet split across frames, several packets in
//! one frame, a 1 MiB packet, a fragmented message with a ping in between, 4 MiB for a subscriber that
//! reads only afterwards, an upgrade without the `mqtt` subprotocol refused (that connection only), a
//! text frame ending the connection, and `max_connections` on a WebSocket listener.

mod broker_support;

use std::net::TcpStream;
use std::time::Duration;

use broker_support::ws::{conf, Scheme, Server};
use mqtt_policy::broker::codec::{
    encode, Connect, Packet, Properties, Publish, QoS, SubOptions, Subscribe, SubscribeFilter,
    Version,
};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::{Message, WebSocket};

/// A byte stream, plain or TLS.
trait Stream: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> Stream for T {}

/// A WebSocket MQTT client: frames out, a byte stream of packets in.
struct Client {
    ws: WebSocket<Box<dyn Stream>>,
    input: Vec<u8>,
    pongs: usize,
}

/// The upgrade request, asking for `protocol` (none: no `Sec-WebSocket-Protocol`).
fn request(port: u16, protocol: Option<&str>) -> tungstenite::handshake::client::Request {
    let mut req = format!("ws://127.0.0.1:{port}/mqtt")
        .into_client_request()
        .expect("request");
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().expect("header"));
    }
    req
}

/// A TLS client session for 127.0.0.1 that trusts only the server's CA.
fn tls_client(server: &Server) -> rustls::ClientConnection {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-outform", "der", "-in"])
        .arg(server.ca())
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl x509: {out:?}");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(out.stdout))
        .expect("the test CA");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("TLS client")
}

/// A client socket with a small receive buffer (32 KiB), so that what a broker sends it fills the
/// socket soon and the broker's writes have to wait for it.
fn stream(port: u16) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(32 << 10).expect("SO_RCVBUF");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    sock.connect(&addr.into()).expect("connect");
    let s = TcpStream::from(sock);
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

fn bytes(packets: &[Packet]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        encode(p, Version::V311, &mut out);
    }
    out
}

fn connect(id: &str, user: &str, password: &str) -> Packet {
    Packet::Connect(Box::new(Connect {
        version: Version::V311,
        client_id: id.into(),
        clean_start: true,
        keep_alive: 30,
        username: Some(user.into()),
        password: Some(password.as_bytes().to_vec()),
        will: None,
        properties: Properties::default(),
    }))
}

fn publish(topic: &str, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: Some(topic.try_into().unwrap()),
        pkid: 0,
        payload: payload.into(),
        properties: Properties::default().into(),
    })
}

impl Client {
    fn open(server: &Server) -> Client {
        Client::open_as(server, Scheme::Ws)
    }

    /// Over `ws://`, or over `wss://` trusting the server's CA only.
    fn open_as(server: &Server, scheme: Scheme) -> Client {
        let tcp = stream(server.port());
        let s: Box<dyn Stream> = match scheme {
            Scheme::Ws => Box::new(tcp),
            Scheme::Wss => Box::new(rustls::StreamOwned::new(tls_client(server), tcp)),
        };
        let (ws, resp) = tungstenite::client::client(request(server.port(), Some("mqtt")), s)
            .unwrap_or_else(|e| panic!("upgrade on {}: {e}\n{}", server.name(), server.log()));
        assert_eq!(
            resp.headers()
                .get("Sec-WebSocket-Protocol")
                .map(|v| v.as_bytes()),
            Some(&b"mqtt"[..]),
            "{}",
            server.name()
        );
        Client {
            ws,
            input: Vec::new(),
            pongs: 0,
        }
    }

    fn send(&mut self, frame: Frame) {
        self.ws.send(Message::Frame(frame)).expect("send a frame");
    }

    fn binary(&mut self, data: &[u8]) {
        self.ws
            .send(Message::Binary(data.to_vec().into()))
            .expect("send a binary frame");
    }

    /// The next MQTT packet: first byte and body.
    fn packet(&mut self) -> (u8, Vec<u8>) {
        // Bounded: each turn reads one message, and a read times out after 5 s.
        for _ in 0..1000 {
            if let Some((first, len, head)) = header(&self.input) {
                if self.input.len() >= head + len {
                    let body = self.input[head..head + len].to_vec();
                    self.input.drain(..head + len);
                    return (first, body);
                }
            }
            match self.ws.read().expect("a message") {
                Message::Binary(b) => self.input.extend_from_slice(&b),
                Message::Pong(_) => self.pongs += 1,
                m => panic!("unexpected message {m:?}"),
            }
        }
        panic!("no whole packet in 1000 messages");
    }
}

/// A fixed header at the start of `b`: first byte, remaining length, header length.
fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let mut len = 0;
    for i in 1..b.len().min(5) {
        len |= usize::from(b[i] & 0x7f) << (7 * (i - 1));
        if b[i] & 0x80 == 0 {
            return Some((b[0], len, i + 1));
        }
    }
    None
}

fn split_and_packed(server: &Server) -> Client {
    let what = server.name();
    let mut c = Client::open(server);
    // CONNECT in two frames.
    let login = bytes(&[connect("raw-ws", "user1", "123456")]);
    c.binary(&login[..3]);
    c.binary(&login[3..]);
    assert_eq!(c.packet(), (0x20, vec![0, 0]), "{what}: CONNACK");
    // SUBSCRIBE, PUBLISH and PINGREQ in one frame.
    let topic = "lab/x/y/user1";
    let packed = bytes(&[
        Packet::Subscribe(Subscribe {
            pkid: 7,
            filters: vec![SubscribeFilter {
                filter: topic.try_into().unwrap(),
                options: SubOptions::qos(QoS::AtMostOnce),
            }],
            properties: Properties::default().into(),
        }),
        publish(topic, b"packed"),
        Packet::PingReq,
    ]);
    c.binary(&packed);
    assert_eq!(c.packet(), (0x90, vec![0, 7, 0]), "{what}: SUBACK");
    let (first, body) = c.packet();
    assert_eq!(first, 0x30, "{what}: PUBLISH");
    assert!(body.ends_with(b"packed"), "{what}: {body:?}");
    assert_eq!(c.packet(), (0xd0, vec![]), "{what}: PINGRESP");
    // A ping between the two halves of a PUBLISH sent as two messages.
    let split = bytes(&[publish(topic, &[b's'; 3000])]);
    c.binary(&split[..1000]);
    c.ws.send(Message::Ping(b"are you there".to_vec().into()))
        .expect("ping");
    c.binary(&split[1000..]);
    let (first, body) = c.packet();
    assert_eq!(first, 0x30, "{what}: PUBLISH");
    assert!(
        body.ends_with(&[b's'; 3000]),
        "{what}: {} bytes",
        body.len()
    );
    assert_eq!(c.pongs, 1, "{what}: the ping answered");
    // A 1 MiB PUBLISH in one frame (Mosquitto 2.1 refuses packets over 2,000,000 bytes by default),
    // back in frames of the broker's choosing.
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    c.binary(&bytes(&[publish(topic, &big), Packet::PingReq]));
    let (first, body) = c.packet();
    assert_eq!(first, 0x30, "{what}: PUBLISH");
    assert!(body.ends_with(&big), "{what}: {} bytes", body.len());
    assert_eq!(c.packet(), (0xd0, vec![]), "{what}: PINGRESP");
    c
}

/// A PUBLISH in a fragmented message (a binary frame and a continuation), a ping between its frames,
/// a PINGREQ behind it.
fn fragmented(mut c: Client) {
    let topic = "lab/x/y/user1";
    let fragmented = bytes(&[publish(topic, &[b'f'; 3000]), Packet::PingReq]);
    let (a, b) = fragmented.split_at(1000);
    c.send(Frame::message(
        a.to_vec(),
        OpCode::Data(Data::Binary),
        false,
    ));
    c.ws.send(Message::Ping(b"again".to_vec().into()))
        .expect("ping");
    c.send(Frame::message(
        b.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    ));
    let (first, body) = c.packet();
    assert_eq!(first, 0x30, "PUBLISH");
    assert!(body.ends_with(&[b'f'; 3000]), "{} bytes", body.len());
    assert_eq!(c.packet(), (0xd0, vec![]), "PINGRESP");
    assert_eq!(c.pongs, 2, "the ping answered");
}

#[test]
fn packets_split_across_frames_and_packed_in_one_on_our_broker() {
    let server = Server::ours(Scheme::Ws);
    fragmented(split_and_packed(&server));
}

/// The fragmented message is left out here: Mosquitto 2.1.2 reads it, but then frames what it sends
/// with the continuation opcode (seen as `UnexpectedContinueFrame` by this client), so a fragmenting
/// client cannot read its answers. Browsers, MQTT.js and paho send each message in one frame.
#[test]
fn packets_split_across_frames_and_packed_in_one_on_mosquitto_2_1_2() {
    split_and_packed(&Server::mosquitto(Scheme::Ws));
}

fn refusals(server: &Server) {
    let what = server.name();
    // No `mqtt` subprotocol: the upgrade is refused...
    for protocol in [None, Some("chat")] {
        let r =
            tungstenite::client::client(request(server.port(), protocol), stream(server.port()));
        assert!(
            r.is_err(),
            "{what}: upgrade without mqtt ({protocol:?}) accepted"
        );
    }
    // ...and the broker goes on; a text frame ends that connection.
    let mut c = Client::open(server);
    c.binary(&bytes(&[connect("raw-text", "user1", "123456")]));
    assert_eq!(c.packet(), (0x20, vec![0, 0]), "{what}: CONNACK");
    c.ws.send(Message::Text("hello".into())).expect("send text");
    // Bounded: the socket's read times out after 5 s.
    let mut ended = false;
    for _ in 0..10 {
        match c.ws.read() {
            Ok(Message::Close(_)) | Err(_) => {
                ended = true;
                break;
            }
            Ok(Message::Binary(b)) => panic!("{what}: answered a text frame with {b:?}"),
            Ok(_) => {}
        }
    }
    assert!(ended, "{what}: a text frame did not end the connection");
}

#[test]
fn upgrades_without_mqtt_and_text_frames_are_refused_on_our_broker() {
    refusals(&Server::ours(Scheme::Ws));
}

#[test]
fn upgrades_without_mqtt_and_text_frames_are_refused_on_mosquitto_2_1_2() {
    refusals(&Server::mosquitto(Scheme::Ws));
}

/// `max_connections 1` on the WebSocket listener: a second connection gets no MQTT session while the
/// first is open, and one does once it is closed.
fn max_connections(server: &Server) {
    let what = server.name();
    // The start-up probe's connection may not be counted out yet: bounded, 50 tries 100 ms apart.
    let mut first = (0..50)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            let s: Box<dyn Stream> = Box::new(stream(server.port()));
            tungstenite::client::client(request(server.port(), Some("mqtt")), s).ok()
        })
        .map(|(ws, _)| Client {
            ws,
            input: Vec::new(),
            pongs: 0,
        })
        .unwrap_or_else(|| panic!("{what}: no first connection\n{}", server.log()));
    first.binary(&bytes(&[connect("first", "user1", "123456")]));
    assert_eq!(first.packet(), (0x20, vec![0, 0]), "{what}: CONNACK");
    let second =
        tungstenite::client::client(request(server.port(), Some("mqtt")), stream(server.port()));
    if let Ok((mut ws, _)) = second {
        // Upgraded before the count was seen: it must not get a CONNACK.
        let mut login = Vec::new();
        encode(
            &connect("second", "user1", "123456"),
            Version::V311,
            &mut login,
        );
        let refused = ws.send(Message::Binary(login.into())).is_err()
            || !matches!(ws.read(), Ok(Message::Binary(_)));
        assert!(
            refused,
            "{what}: a second connection past max_connections 1"
        );
    }
    drop(first);
    // Bounded: 50 tries, 100 ms apart, for the broker to count the close.
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let s: Box<dyn Stream> = Box::new(stream(server.port()));
        let Ok((ws, _)) = tungstenite::client::client(request(server.port(), Some("mqtt")), s)
        else {
            continue;
        };
        let mut c = Client {
            ws,
            input: Vec::new(),
            pongs: 0,
        };
        c.binary(&bytes(&[connect("third", "user1", "123456")]));
        if matches!(c.ws.read(), Ok(Message::Binary(b)) if b[..] == [0x20, 2, 0, 0]) {
            return;
        }
    }
    panic!(
        "{what}: no connection after the first closed\n{}",
        server.log()
    );
}

fn limited() -> String {
    conf(Scheme::Ws).replace(
        "protocol websockets\n",
        "protocol websockets\nmax_connections 1\n",
    )
}

#[test]
fn max_connections_holds_on_a_websocket_listener_of_our_broker() {
    max_connections(&Server::ours_with(&limited()));
}

#[test]
fn max_connections_holds_on_a_websocket_listener_of_mosquitto_2_1_2() {
    max_connections(&Server::mosquitto_with(&limited()));
}

/// 16 messages of 256 KiB for a subscriber that reads only once they are all sent: the broker's
/// writes fill the socket and go on when it drains; everything arrives whole and in order.
fn late_reader(server: &Server, scheme: Scheme) {
    let what = server.name();
    let topic = "lab/x/y/user1";
    let mut sub = Client::open_as(server, scheme);
    sub.binary(&bytes(&[
        connect("late-sub", "user1", "123456"),
        Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![SubscribeFilter {
                filter: topic.try_into().unwrap(),
                options: SubOptions::qos(QoS::AtMostOnce),
            }],
            properties: Properties::default().into(),
        }),
    ]));
    assert_eq!(sub.packet(), (0x20, vec![0, 0]), "{what}: CONNACK");
    assert_eq!(sub.packet(), (0x90, vec![0, 1, 0]), "{what}: SUBACK");
    let mut publ = Client::open_as(server, scheme);
    publ.binary(&bytes(&[connect("late-pub", "user1", "123456")]));
    assert_eq!(publ.packet(), (0x20, vec![0, 0]), "{what}: CONNACK");
    let payload = |i: u8| vec![i; 256 << 10];
    for i in 0..16 {
        publ.binary(&bytes(&[publish(topic, &payload(i))]));
    }
    publ.binary(&bytes(&[Packet::PingReq]));
    assert_eq!(publ.packet(), (0xd0, vec![]), "{what}: PINGRESP");
    for i in 0..16 {
        let (first, body) = sub.packet();
        assert_eq!(first, 0x30, "{what}: PUBLISH {i}");
        assert!(
            body.ends_with(&payload(i)),
            "{what}: message {i}, {} bytes",
            body.len()
        );
    }
}

#[test]
fn a_late_reader_gets_everything_whole_from_our_broker() {
    late_reader(&Server::ours(Scheme::Ws), Scheme::Ws);
}

#[test]
fn a_late_reader_gets_everything_whole_from_our_broker_over_tls() {
    late_reader(&Server::ours(Scheme::Wss), Scheme::Wss);
}

#[test]
fn a_late_reader_gets_everything_whole_from_mosquitto_2_1_2() {
    late_reader(&Server::mosquitto(Scheme::Ws), Scheme::Ws);
}

#[test]
fn a_late_reader_gets_everything_whole_from_mosquitto_2_1_2_over_tls() {
    late_reader(&Server::mosquitto(Scheme::Wss), Scheme::Wss);
}
