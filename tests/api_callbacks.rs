//! Scheduled callbacks over the API (SPEC §6: changed and cancelled): the
//! list, filtered by campaign and agent; a change of time, number and agent;
//! a cancel; what an agent token may and may not do; clear errors for bad
//! input. The callbacks are scheduled through the library on the same store
//! the running dialer uses (an agent's disposition does it in production;
//! `tests/engine_e2e.rs` covers that path end to end).

mod support;

use jiff::{SignedDuration, Timestamp};
use outdial::store::{self, Store};
use serde_json::Value;
use support::{Running, ephemeral_config, http, schedule_callback, write_config};

const SUPERVISOR: &str = "demo-supervisor-token";
const AGENT_1001: &str = "demo-agent-1001-token";
const AGENT_1002: &str = "demo-agent-1002-token";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn ids(body: &str) -> Vec<i64> {
    json(body)
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn callbacks_are_listed_changed_and_cancelled_by_whoever_may() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/list",
        Some(SUPERVISOR),
        Some("id,name,phone\na,Ann Lee,+12025550101\nb,Bob Ray,+12025550102\n"),
    );
    assert_eq!(status, 200, "{body}");

    let store: Box<dyn Store> =
        store::open(&format!("sqlite://{}/outdial.db", dir.path().display())).unwrap();
    let campaign = store.campaign_id("demo").unwrap().expect("campaign demo");
    let now = Timestamp::now();
    let schedule = |id: &str, hours, agent| schedule_callback(&*store, campaign, id, hours, agent);
    let ann = schedule("a", 2, Some("1001"));
    let bob = schedule("b", 1, None);

    // Lists: the supervisor sees both, soonest first; an agent its own.
    let (status, body) = http(addr, "GET", "/api/callbacks", Some(SUPERVISOR), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), vec![bob, ann]);
    let first = &json(&body)[0];
    assert_eq!(first["external_id"], "b", "{body}");
    assert_eq!(first["name"], "Bob Ray", "{body}");
    assert_eq!(first["campaign"], "demo", "{body}");
    assert_eq!(first["agent"], Value::Null, "{body}");
    let (_, body) = http(addr, "GET", "/api/callbacks", Some(AGENT_1001), None);
    assert_eq!(ids(&body), vec![ann]);
    let (_, body) = http(addr, "GET", "/api/callbacks", Some(AGENT_1002), None);
    assert_eq!(ids(&body), Vec::<i64>::new());
    let (status, _) = http(
        addr,
        "GET",
        "/api/callbacks?agent=1001",
        Some(AGENT_1002),
        None,
    );
    assert_eq!(status, 403, "an agent lists only its own");
    let (_, body) = http(
        addr,
        "GET",
        "/api/callbacks?agent=1001&campaign=demo",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(ids(&body), vec![ann]);
    let (status, _) = http(
        addr,
        "GET",
        "/api/callbacks?campaign=nope",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 404);

    // Agent 1001 moves its callback earlier, to another number (a national
    // one, read as the campaign's region), and keeps it.
    let at = (now + SignedDuration::from_mins(30)).to_string();
    let change = format!(r#"{{"at":"{at}","phone":"(202) 555-0177","agent":"1001"}}"#);
    let (status, body) = http(
        addr,
        "POST",
        &format!("/api/callbacks/{ann}"),
        Some(AGENT_1001),
        Some(&change),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["phone"], "+12025550177", "{body}");
    let (_, body) = http(addr, "GET", "/api/callbacks", Some(SUPERVISOR), None);
    assert_eq!(ids(&body), vec![ann, bob], "ann is now the sooner");
    // Agent 1002 may not touch it, nor give it away to itself.
    for (method, path, request) in [
        (
            "POST",
            format!("/api/callbacks/{ann}"),
            Some(change.as_str()),
        ),
        ("DELETE", format!("/api/callbacks/{ann}"), None),
    ] {
        let (status, body) = http(addr, method, &path, Some(AGENT_1002), request);
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    // Agent 1001 may not hand it to another agent; the supervisor may.
    let to_1002 = format!(r#"{{"at":"{at}","agent":"1002"}}"#);
    let (status, _) = http(
        addr,
        "POST",
        &format!("/api/callbacks/{ann}"),
        Some(AGENT_1001),
        Some(&to_1002),
    );
    assert_eq!(status, 403);
    let (status, body) = http(
        addr,
        "POST",
        &format!("/api/callbacks/{ann}"),
        Some(SUPERVISOR),
        Some(&to_1002),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["agent"], "1002", "{body}");
    assert_eq!(json(&body)["phone"], Value::Null, "no number: the record's");
    let (_, body) = http(addr, "GET", "/api/callbacks", Some(AGENT_1002), None);
    assert_eq!(ids(&body), vec![ann]);

    // Bad requests, each with a clear error and nothing changed.
    let past = (now - SignedDuration::from_mins(1)).to_string();
    for (path, request, status, says) in [
        (
            format!("/api/callbacks/{bob}"),
            format!(r#"{{"at":"{past}"}}"#),
            400,
            "past",
        ),
        (
            format!("/api/callbacks/{bob}"),
            r#"{"at":"tomorrow"}"#.to_string(),
            400,
            "RFC 3339",
        ),
        (
            format!("/api/callbacks/{bob}"),
            format!(r#"{{"at":"{at}","phone":"555"}}"#),
            400,
            "555",
        ),
        (
            format!("/api/callbacks/{bob}"),
            format!(r#"{{"at":"{at}","agent":"9999"}}"#),
            400,
            "9999",
        ),
        (
            "/api/callbacks/x".to_string(),
            format!(r#"{{"at":"{at}"}}"#),
            400,
            "not a callback id",
        ),
        (
            "/api/callbacks/987654".to_string(),
            format!(r#"{{"at":"{at}"}}"#),
            404,
            "no pending callback",
        ),
    ] {
        let (got, body) = http(addr, "POST", &path, Some(SUPERVISOR), Some(&request));
        assert_eq!(got, status, "{path} {request}: {body}");
        let error = json(&body)["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(says), "{path} {request}: {error}");
    }
    let unchanged = store
        .callbacks(&outdial::store::CallbackFilter {
            id: Some(bob),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        unchanged[0].at.as_second(),
        (now + SignedDuration::from_hours(1)).as_second()
    );

    // Cancelled: gone from the lists, the record back to the list.
    let (status, body) = http(
        addr,
        "DELETE",
        &format!("/api/callbacks/{bob}"),
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["cancelled"], true, "{body}");
    let (_, body) = http(addr, "GET", "/api/callbacks", Some(SUPERVISOR), None);
    assert_eq!(ids(&body), vec![ann]);
    assert_eq!(store.record(campaign, "b").unwrap().unwrap().state, "new");
    let (status, _) = http(
        addr,
        "DELETE",
        &format!("/api/callbacks/{bob}"),
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 404, "cancelled twice");
    // Scheduled directly (a CRM's "call me back"): for record b, on another
    // number, for agent 1001 — by the supervisor; agents only for themselves.
    let create = |token: &str, body: &str| {
        let (status, text) = http(addr, "POST", "/api/callbacks", Some(token), Some(body));
        (status, text)
    };
    let (status, body) = create(
        AGENT_1002,
        &format!(r#"{{"campaign":"demo","record":"b","at":"{at}","agent":"1001"}}"#),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = create(
        SUPERVISOR,
        &format!(r#"{{"campaign":"demo","record":"zzz","at":"{at}"}}"#),
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = create(
        SUPERVISOR,
        &format!(r#"{{"campaign":"demo","record":"b","at":"{past}"}}"#),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = create(
        SUPERVISOR,
        &format!(
            r#"{{"campaign":"demo","record":"b","at":"{at}","phone":"(202) 555-0166","agent":"1001"}}"#
        ),
    );
    assert_eq!(status, 200, "{body}");
    let created = json(&body);
    assert_eq!(created["external_id"], "b", "{body}");
    assert_eq!(created["phone"], "+12025550166", "{body}");
    let (_, body) = http(addr, "GET", "/api/callbacks", Some(AGENT_1001), None);
    assert_eq!(ids(&body), vec![created["id"].as_i64().unwrap()]);
    assert_eq!(
        store.record(campaign, "b").unwrap().unwrap().state,
        "callback"
    );

    let (status, _) = http(addr, "GET", "/api/callbacks", None, None);
    assert_eq!(status, 401);
}
