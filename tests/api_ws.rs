//! The WebSocket API through the real binary: authentication by header or
//! first message, scoping, commands with replies, events on the same
//! connection, and clear errors for bad messages (the connection stays).

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::start_default;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const SUPERVISOR: &str = "demo-supervisor-token";
const AGENT_1001: &str = "demo-agent-1001-token";

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(addr: std::net::SocketAddr, path: &str, bearer: Option<&str>) -> Socket {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(token) = bearer {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (socket, _) = tungstenite::connect(request).expect("WebSocket handshake");
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
    socket
}

fn send(socket: &mut Socket, value: Value) {
    socket.send(Message::text(value.to_string())).unwrap();
}

fn next(socket: &mut Socket) -> Value {
    loop {
        match socket.read().expect("a message") {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(_) => return Value::Null,
            _ => continue,
        }
    }
}

/// Reads until the reply to `id`; the reply and the events read meanwhile.
fn reply(socket: &mut Socket, id: u64) -> (Value, Vec<Value>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while Instant::now() < deadline {
        let message = next(socket);
        if message["reply_to"] == id {
            return (message, events);
        }
        events.push(message);
    }
    panic!("no reply to {id}; saw {events:?}");
}

#[test]
fn an_agent_works_over_one_websocket() {
    let (_running, addr, _dir) = start_default();
    // No header: the first message authenticates.
    let mut socket = connect(addr, "/api/agents/1001/ws", None);
    send(&mut socket, json!({ "token": AGENT_1001 }));
    assert_eq!(
        next(&mut socket),
        json!({ "type": "ready", "agent": "1001" })
    );

    send(&mut socket, json!({ "id": 1, "action": "login" }));
    let (answer, mut events) = reply(&mut socket, 1);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["agent"]["state"], "not_ready", "{answer}");
    // The state change arrives as an event on the same connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !events
        .iter()
        .any(|e| e["type"] == "agent_state" && e["state"] == "not_ready")
    {
        assert!(
            Instant::now() < deadline,
            "no agent_state event: {events:?}"
        );
        events.push(next(&mut socket));
    }
    // Ready without the phone up: the engine's refusal, with its status.
    send(&mut socket, json!({ "id": 2, "action": "ready" }));
    let (answer, _) = reply(&mut socket, 2);
    assert_eq!(answer["status"], 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("phone"),
        "{answer}"
    );
    // Hold with no customer on the line: the engine's refusal too.
    send(&mut socket, json!({ "id": 21, "action": "hold" }));
    let (answer, _) = reply(&mut socket, 21);
    assert_eq!(answer["status"], 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("hold"),
        "{answer}"
    );
    // The consultation and digit actions reach the engine: refused with no
    // customer on the line, a bad digit before that, `dtmf` without digits
    // as a malformed action.
    for (id, action, status, says) in [
        (
            24,
            json!({ "id": 24, "action": "consult", "to": "1002" }),
            409,
            "on_call",
        ),
        (
            25,
            json!({ "id": 25, "action": "end_consultation" }),
            409,
            "no consultation",
        ),
        (
            26,
            json!({ "id": 26, "action": "dtmf", "digits": "1" }),
            409,
            "on_call",
        ),
        (
            27,
            json!({ "id": 27, "action": "dtmf", "digits": "9x" }),
            400,
            "not a DTMF digit",
        ),
        (28, json!({ "id": 28, "action": "dtmf" }), 400, "digits"),
        // An outside transfer reaches the engine too; never both kinds.
        (
            29,
            json!({ "id": 29, "action": "transfer", "outside": "Billing" }),
            409,
            "on_call",
        ),
        (
            30,
            json!({ "id": 30, "action": "transfer", "to": "1002", "outside": "Billing" }),
            400,
            "not both",
        ),
        (
            31,
            json!({ "id": 31, "action": "cancel_transfer" }),
            409,
            "no transfer to cancel",
        ),
    ] {
        send(&mut socket, action);
        let (answer, _) = reply(&mut socket, id);
        assert_eq!(answer["status"], status, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    // A contact correction takes the REST body's fields: an unknown one is
    // refused as there, and with no contact on screen there is nothing to
    // correct.
    send(
        &mut socket,
        json!({ "id": 22, "action": "contact", "nmae": "Ann" }),
    );
    let (answer, _) = reply(&mut socket, 22);
    assert_eq!(answer["status"], 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("nmae"),
        "{answer}"
    );
    send(
        &mut socket,
        json!({ "id": 23, "action": "contact", "name": "Ann" }),
    );
    let (answer, _) = reply(&mut socket, 23);
    assert_eq!(answer["status"], 409, "{answer}");
    // Bad messages get errors and the connection stays.
    socket.send(Message::text("not json")).unwrap();
    let answer = next(&mut socket);
    assert_eq!(answer["status"], 400, "{answer}");
    send(&mut socket, json!({ "id": 3, "action": "dance" }));
    let (answer, _) = reply(&mut socket, 3);
    assert!(
        answer["error"].as_str().unwrap().contains("unknown action"),
        "{answer}"
    );
    send(
        &mut socket,
        json!({ "id": 4, "action": "campaign", "name": "demo", "command": "start" }),
    );
    let (answer, _) = reply(&mut socket, 4);
    assert_eq!(answer["status"], 403, "{answer}");
    send(&mut socket, json!({ "id": 5, "action": "logout" }));
    let (answer, _) = reply(&mut socket, 5);
    assert_eq!(answer["agent"]["state"], "logged_out", "{answer}");
}

#[test]
fn websockets_are_scoped_like_the_rest_of_the_api() {
    let (_running, addr, _dir) = start_default();
    // Another agent's connection: refused and closed.
    let mut socket = connect(addr, "/api/agents/1002/ws", None);
    send(&mut socket, json!({ "token": AGENT_1001 }));
    let refusal = next(&mut socket);
    assert_eq!(refusal["status"], 403, "{refusal}");
    assert_eq!(next(&mut socket), Value::Null, "closed after the refusal");
    // A wrong header is refused at the handshake.
    let request = format!("ws://{addr}/api/ws")
        .into_client_request()
        .map(|mut r| {
            r.headers_mut()
                .insert("Authorization", "Bearer nope".parse().unwrap());
            r
        })
        .unwrap();
    match tungstenite::connect(request) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401 handshake, got {:?}", other.map(|_| ())),
    }
    // The supervisor's connection: every event, campaigns and any agent.
    let mut supervisor = connect(addr, "/api/ws", Some(SUPERVISOR));
    assert_eq!(next(&mut supervisor)["type"], "ready");
    send(
        &mut supervisor,
        json!({ "id": 1, "action": "campaign", "name": "demo", "command": "start" }),
    );
    let (answer, events) = reply(&mut supervisor, 1);
    assert_eq!(answer["ok"], true, "{answer}");
    let mut events = events;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !events
        .iter()
        .any(|e| e["type"] == "campaign_state" && e["state"] == "running")
    {
        assert!(Instant::now() < deadline, "no campaign_state: {events:?}");
        events.push(next(&mut supervisor));
    }
    send(
        &mut supervisor,
        json!({ "id": 2, "action": "login", "agent": "1002" }),
    );
    let (answer, _) = reply(&mut supervisor, 2);
    assert_eq!(answer["agent"]["id"], "1002", "{answer}");
    send(&mut supervisor, json!({ "id": 3, "action": "login" }));
    let (answer, _) = reply(&mut supervisor, 3);
    assert!(
        answer["error"].as_str().unwrap().contains("`agent`"),
        "{answer}"
    );
}
