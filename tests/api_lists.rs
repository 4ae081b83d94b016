//! Uploading a contact list through the API (the supervisor dashboard's
//! "Load list"): rows imported as `outdial import` does, bad rows reported
//! with their lines, the file refused as a whole only when unusable.

mod support;

use serde_json::Value;
use support::{Running, ephemeral_config, http, write_config};

const SUPERVISOR: &str = "demo-supervisor-token";
const AGENT_1001: &str = "demo-agent-1001-token";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

#[test]
fn a_supervisor_uploads_a_list_and_bad_rows_are_reported_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    let list = "id,name,phone,plan\n\
                a,Ann Lee,+12025550101,gold\n\
                b,Bob Ray,not a number,silver\n\
                c,Cy Dee,(202) 555-0103,bronze\n\
                a,Ann Again,+12025550104,gold\n";
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/list",
        Some(SUPERVISOR),
        Some(list),
    );
    assert_eq!(status, 200, "{body}");
    let summary = json(&body);
    assert_eq!(summary["imported"], 2, "{summary}");
    assert_eq!(summary["updated"], 0, "{summary}");
    let lines: Vec<u64> = summary["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 5], "{summary}");
    // Uploading it again updates, never duplicates.
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/list",
        Some(SUPERVISOR),
        Some("id,name,phone\na,Ann Lee-Smith,+12025550101\n"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["updated"], 1, "{body}");
    // Refusals: an agent, an unknown campaign, a file without a phone column.
    let (status, _) = http(
        addr,
        "POST",
        "/api/campaigns/demo/list",
        Some(AGENT_1001),
        Some(list),
    );
    assert_eq!(status, 403);
    let (status, _) = http(
        addr,
        "POST",
        "/api/campaigns/nope/list",
        Some(SUPERVISOR),
        Some(list),
    );
    assert_eq!(status, 404);
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/list",
        Some(SUPERVISOR),
        Some("id,name\nx,Nobody\n"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("phone"),
        "{body}"
    );
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/list",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 400, "{body}");

    // The dashboard's download: the records as CSV (the CDR is empty).
    let (status, csv) = http(
        addr,
        "GET",
        "/api/campaigns/demo/export",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("external_id,name,state"), "{csv}");
    assert_eq!(lines.len(), 3, "two records: {csv}");
    assert!(
        csv.contains("Ann Lee-Smith") && csv.contains("Cy Dee"),
        "{csv}"
    );
    let (status, cdr) = http(
        addr,
        "GET",
        "/api/campaigns/demo/export?attempts=true",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{cdr}");
    assert!(cdr.starts_with("attempt_id,external_id"), "{cdr}");
    assert_eq!(cdr.lines().count(), 1, "no dial yet: {cdr}");
    // A list bigger than one 64 KiB chunk of the stream comes back whole.
    let mut big = String::from("id,name,phone\n");
    for i in 0..3000 {
        big.push_str(&format!(
            "bulk-{i},Bulk Contact {i},+1202555{:04}\n",
            2000 + i
        ));
    }
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/list",
        Some(SUPERVISOR),
        Some(&big),
    );
    assert_eq!(status, 200, "{body}");
    let (status, csv) = http(
        addr,
        "GET",
        "/api/campaigns/demo/export",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200);
    assert!(csv.len() > 64 * 1024, "{} bytes", csv.len());
    assert_eq!(csv.lines().count(), 3003, "header, 2 + 3000 records");
    assert!(csv.contains("bulk-2999,Bulk Contact 2999"));
    let (status, _) = http(
        addr,
        "GET",
        "/api/campaigns/demo/export",
        Some(AGENT_1001),
        None,
    );
    assert_eq!(status, 403);
    let (status, _) = http(
        addr,
        "GET",
        "/api/campaigns/nope/export",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 404);

    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    // The store has what the upload reported.
    let out = dir.path().join("records.csv");
    support::export_csv(&config, "demo", false, &out);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("Ann Lee-Smith"), "{text}");
    assert!(text.contains("Cy Dee"), "{text}");
    assert!(!text.contains("Bob Ray"), "{text}");
}

#[test]
fn a_list_with_its_own_column_names_is_uploaded_with_a_mapping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    let list = "cust_no,full_name,mobile_no,home_no,plan,internal\n\
                c-1,Ann Lee,(202) 555-0111,(202) 555-0112,gold,x\n";
    let upload = |query: &str| {
        let (status, body) = http(
            addr,
            "POST",
            &format!("/api/campaigns/demo/list{query}"),
            Some(SUPERVISOR),
            Some(list),
        );
        (status, json(&body))
    };
    // Without a mapping there is no id column: refused as a whole.
    let (status, body) = upload("");
    assert_eq!(status, 400, "{body}");
    // Bad mappings are named.
    let (status, body) = upload("?phones=mobile_no:pager");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("pager"), "{body}");
    let (status, body) = upload("?identifier=cust_no");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("identifier"),
        "{body}"
    );
    let (status, body) =
        upload("?id=cust_no&name=full_name&phones=home_no:home,mobile_no:mobile&custom=plan");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imported"], 1, "{body}");
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    let out = dir.path().join("records.csv");
    let (headers, rows) = support::export_csv(&config, "demo", false, &out);
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let row = &rows[0];
    assert_eq!(&row[column("external_id")], "c-1");
    assert_eq!(&row[column("name")], "Ann Lee");
    // The home number first, as mapped; only the mapped custom column.
    assert_eq!(&row[column("phones")], "+12025550112;+12025550111");
    assert_eq!(&row[column("custom_fields")], r#"{"plan":"gold"}"#);
}

#[test]
fn a_supervisor_manages_the_do_not_call_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    let post = |path: &str, token: &str, body: &str| {
        let (status, text) = http(addr, "POST", path, Some(token), Some(body));
        (status, json(&text))
    };
    let (status, added) = post(
        "/api/dnc",
        SUPERVISOR,
        r#"{"numbers": ["+12025550101", "(202) 555-0102", "bogus", "+12025550101"]}"#,
    );
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["changed"], 2, "{added}");
    assert_eq!(added["rejected"][0]["number"], "bogus", "{added}");
    let check = |path: &str| {
        let (status, text) = http(addr, "GET", path, Some(SUPERVISOR), None);
        assert_eq!(status, 200, "{text}");
        json(&text)["listed"].as_bool().unwrap()
    };
    assert!(check("/api/dnc/+12025550102"));
    assert!(
        check("/api/dnc/2025550102"),
        "a national number reads as the region's"
    );
    assert!(!check("/api/dnc/+12025550199"));
    // A campaign's list; the campaign also sees the internal one.
    let (status, added) = post(
        "/api/dnc",
        SUPERVISOR,
        r#"{"numbers": ["020 7183 8750"], "campaign": "demo", "region": "GB"}"#,
    );
    assert_eq!(
        (status, added["changed"].as_u64()),
        (200, Some(1)),
        "{added}"
    );
    assert!(check("/api/dnc/+442071838750?campaign=demo"));
    assert!(check("/api/dnc/+12025550101?campaign=demo"));
    assert!(!check("/api/dnc/+442071838750"));
    let (status, removed) = post(
        "/api/dnc/remove",
        SUPERVISOR,
        r#"{"numbers": ["+12025550101", "+12025550177"]}"#,
    );
    assert_eq!(status, 200, "{removed}");
    assert_eq!(
        (removed["changed"].as_u64(), removed["unchanged"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(!check("/api/dnc/+12025550101"));
    // Refusals.
    let (status, _) = post("/api/dnc", AGENT_1001, r#"{"numbers": ["+12025550101"]}"#);
    assert_eq!(status, 403);
    let (status, _) = post("/api/dnc", SUPERVISOR, r#"{"numbers": []}"#);
    assert_eq!(status, 400);
    let (status, _) = post(
        "/api/dnc",
        SUPERVISOR,
        r#"{"numbers": ["+12025550101"], "campaign": "nope"}"#,
    );
    assert_eq!(status, 404);
    let (status, _) = post(
        "/api/dnc",
        SUPERVISOR,
        r#"{"numbers": ["+12025550101"], "region": "ZZZ"}"#,
    );
    assert_eq!(status, 400);
    let (status, _) = post("/api/dnc", SUPERVISOR, r#"{"phones": []}"#);
    assert_eq!(
        status, 400,
        "a bad body is a JSON 400 like every other error"
    );
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}

/// Several nodes sharing a store each show their own live figures; the
/// campaign's abandonment on every node comes from the store. A second node
/// (this test, through the library, on the same database) answers three
/// calls and abandons one; the node serving the API answered none.
#[test]
fn a_supervisor_sees_the_campaigns_abandonment_on_every_node() {
    use jiff::{SignedDuration, Timestamp};
    use outdial::campaign::model::Outcome;
    use outdial::store::{AttemptResult, LeaseRequest};

    let dir = tempfile::tempdir().expect("tempdir");
    let text = ephemeral_config(dir.path())
        .replace(
            "call_hours = \"08:00-21:00\"",
            "call_hours = \"00:00-23:59\"",
        )
        .replace(
            "call_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\"]",
            "call_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]",
        )
        .replace("amd_fp_estimate = 0.0 ", "amd_fp_estimate = 0.02 ");
    assert!(
        text.contains("amd_fp_estimate = 0.02"),
        "the demo campaign's line changed"
    );
    let config = write_config(dir.path(), &text);
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    let list = "id,phone\na,+12025550101\nb,+12025550102\nc,+12025550103\n";
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/list",
        Some(SUPERVISOR),
        Some(list),
    );
    assert_eq!(status, 200, "{body}");

    let store = outdial::store::open(&format!("sqlite://{}/outdial.db", dir.path().display()))
        .expect("the node's store");
    let campaign = store.campaign_id("demo").unwrap().expect("demo");
    let now = Timestamp::now();
    let leases = store
        .lease(&LeaseRequest {
            campaign,
            node: "node-b",
            agent: None,
            max: 3,
            now,
            lease_for: SignedDuration::from_mins(10),
            personal_only: false,
            skip_agent_required: false,
        })
        .unwrap();
    assert_eq!(leases.len(), 3);
    for (lease, abandoned) in leases.iter().zip([false, true, false]) {
        let attempt = store.begin_attempt(lease, now).unwrap();
        let mut result = AttemptResult::new(if abandoned {
            Outcome::Abandoned
        } else {
            Outcome::Human
        });
        result.cpa_verdict = Some("human".into());
        result.abandoned = abandoned;
        store.complete_attempt(attempt, &result, now).unwrap();
    }

    let (status, body) = http(
        addr,
        "GET",
        "/api/campaigns/demo/abandonment",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let view = json(&body);
    assert_eq!(view["us"]["live_answers"], 3, "{view}");
    assert_eq!(view["us"]["abandoned"], 1, "{view}");
    let rate = view["us"]["rate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{view}");
    // UK: (1 + fp) ÷ (3 + fp), fp = 3 · 0.02 / 0.98.
    let fp = 3.0 * 0.02 / 0.98;
    let uk = view["uk"]["rate"].as_f64().unwrap();
    assert!((uk - (1.0 + fp) / (3.0 + fp)).abs() < 1e-9, "{view}");
    assert_eq!(view["nodes"][0]["node"], "node-b", "{view}");
    assert_eq!(view["nodes"].as_array().unwrap().len(), 1, "{view}");
    // This node's own figures know nothing of node-b's calls.
    let (_, stats) = http(
        addr,
        "GET",
        "/api/campaigns/demo/stats",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(json(&stats)["live_answers"], 0, "{stats}");
    // Compliance figures are the supervisor's.
    let (status, _) = http(
        addr,
        "GET",
        "/api/campaigns/demo/abandonment",
        Some(AGENT_1001),
        None,
    );
    assert_eq!(status, 403);
    drop(store);
}
