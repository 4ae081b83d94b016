//! `kill -9` in the middle of a campaign, then a restart: the calls that
//! were ringing are resolved as interrupted (not redialed at once), no
//! record is dialed twice, and the rest of the list is dialed by the new
//! process; live answers that no agent had taken count as abandoned in
//! the restored abandonment windows.

mod sip_support;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sip_support::{Sipp, free_port};
use support::{Running, http, outdial};

const SUPERVISOR: &str = "recovery-supervisor-token";
const RECORDS: usize = 6;
/// Lines the one simulated agent may use: three calls ring at the kill.
const LINES: usize = 3;

fn config(dir: &Path, carrier_port: u16) -> String {
    let rtp_base = 26000 + (free_port() % 1000) * 16;
    format!(
        r#"
[sip]
listen = "127.0.0.1:0"
transports = ["udp"]
[rtp]
bind = "127.0.0.1"
port_min = {rtp_base}
port_max = {rtp_max}
[trunk]
uri = "sip:127.0.0.1:{carrier_port}"
caller_id = "+15551230000"
max_concurrent_calls = {LINES}
max_calls_per_second = 10
options_interval_s = 0
[api]
listen = "127.0.0.1:0"
[[api.token]]
token = "{SUPERVISOR}"
role = "supervisor"
[store]
url = "sqlite://{db}"
node = "recovery-node"
[[campaign]]
name = "recovery"
mode = "progressive"
lines_per_agent = {LINES}.0
ring_timeout_s = 60
call_hours = "00:00-23:59"
call_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
default_region = "US"
[[agent]]
id = "sim"
name = "Simulated"
campaigns = ["recovery"]
simulated = {{ wrap_up_s = 1, disposition = "SALE" }}
"#,
        rtp_max = rtp_base + 15,
        db = dir.join("outdial.db").display(),
    )
}

/// A log line's fields: nested under `fields` or at the top level,
/// depending on the JSON formatter.
fn log_fields(line: &Value) -> &Value {
    if line["fields"].is_object() {
        &line["fields"]
    } else {
        line
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn stats(addr: std::net::SocketAddr) -> Value {
    let (_, body) = http(
        addr,
        "GET",
        "/api/campaigns/recovery/stats",
        Some(SUPERVISOR),
        None,
    );
    json(&body)
}

fn wait_for_lines(addr: std::net::SocketAddr, lines: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = stats(addr);
        if stats["lines_in_use"] == lines && stats["dials"] == lines {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {lines} calls ringing: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the store holds `rows` attempts not yet ended.
fn wait_for_attempt_rows(db: &Path, rows: i64) {
    wait_for_attempts_where(db, "ended_at IS NULL", rows);
}

/// Waits until `rows` attempts match `condition` (SQL).
fn wait_for_attempts_where(db: &Path, condition: &str, rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|conn| {
                    conn.query_row(
                        &format!("SELECT COUNT(*) FROM attempts WHERE {condition}"),
                        [],
                        |row| row.get::<_, i64>(0),
                    )
                });
        if open.as_ref().is_ok_and(|n| *n == rows) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {rows} attempt rows where {condition}: {open:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn import_list(config_path: &Path, list: &Path) {
    let import = outdial()
        .arg("--config")
        .arg(config_path)
        .args(["import", "--campaign", "recovery", "--file"])
        .arg(list)
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
}

/// The store in `dir`, and the campaign's records leased to this node an
/// hour ago (for a test to write an earlier run's calls), and that hour.
fn leased_an_hour_ago(
    dir: &Path,
) -> (
    Box<dyn outdial::store::Store>,
    Vec<outdial::store::Lease>,
    jiff::Timestamp,
) {
    let url = format!("sqlite://{}", dir.join("outdial.db").display());
    let store = outdial::store::open(&url).unwrap();
    let campaign = store.campaign_id("recovery").unwrap().unwrap();
    let earlier = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let leases = store
        .lease(&outdial::store::LeaseRequest {
            campaign,
            node: "recovery-node",
            agent: None,
            max: 10,
            now: earlier,
            lease_for: jiff::SignedDuration::from_mins(10),
            personal_only: false,
            skip_agent_required: false,
        })
        .unwrap();
    (store, leases, earlier)
}

fn start_campaign(addr: std::net::SocketAddr) {
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/recovery/start",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn kill_9_then_restart_resolves_calls_in_flight_and_dials_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    // Every number rings until cancelled (last digit 5).
    let _carrier = Sipp::uas(
        sip_support::carrier_router(dir.path(), 1000)
            .to_str()
            .unwrap(),
        RECORDS as u32,
        &["-timeout", "120s"],
    );
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(&config_path, config(dir.path(), _carrier.port)).unwrap();
    let mut list = String::from("id,phone\n");
    for i in 0..RECORDS {
        list.push_str(&format!("r{i},+12025551{i:02}5\n"));
    }
    std::fs::write(dir.path().join("list.csv"), list).unwrap();
    import_list(&config_path, &dir.path().join("list.csv"));

    // First life: three calls ringing, then SIGKILL.
    let mut first = Running::start(&config_path);
    let addr = first.wait_until_listening();
    start_campaign(addr);
    wait_for_lines(addr, LINES as u64);
    // A dial counts in the stats at once; its attempt row is written just
    // after, before the INVITE: kill once the rows are there.
    wait_for_attempt_rows(&dir.path().join("outdial.db"), LINES as i64);
    first.signal("KILL");
    let _ = first.child.wait();

    // Second life: the store resolves what the first left in flight.
    let mut second = Running::start(&config_path);
    let addr = second.wait_until_listening();
    let opened = second.wait_for_message("store open", Duration::from_secs(10));
    let fields = log_fields(&opened);
    assert_eq!(
        fields["interrupted"], LINES as u64,
        "calls in flight closed as interrupted: {opened}"
    );
    start_campaign(addr);
    // Only the three records never dialed are dialed now.
    wait_for_lines(addr, (RECORDS - LINES) as u64);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        stats(addr)["dials"],
        (RECORDS - LINES) as u64,
        "an interrupted record was redialed at once"
    );
    second.signal("TERM");
    assert!(second.child.wait().unwrap().success());

    let cdr = dir.path().join("attempts.csv");
    let export = outdial()
        .arg("--config")
        .arg(&config_path)
        .args(["export", "--campaign", "recovery", "--attempts", "--out"])
        .arg(&cdr)
        .output()
        .unwrap();
    assert!(export.status.success());
    let mut reader = csv::Reader::from_path(&cdr).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut by_record: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in reader.records() {
        let row = row.unwrap();
        by_record
            .entry(row[column("external_id")].to_string())
            .or_default()
            .push(row[column("outcome")].to_string());
    }
    assert_eq!(by_record.len(), RECORDS, "{by_record:?}");
    let mut interrupted = 0;
    for (record, outcomes) in &by_record {
        assert_eq!(outcomes.len(), 1, "{record} dialed twice: {outcomes:?}");
        match outcomes[0].as_str() {
            "interrupted" => interrupted += 1,
            // Hung up at the clean shutdown while ringing.
            "no_answer" => {}
            other => panic!("{record}: unexpected outcome {other}"),
        }
    }
    assert_eq!(interrupted, LINES, "{by_record:?}");
}

/// A restart must not forget the campaign's abandons: the pacer's 30-day
/// and 24-hour windows are restored from the attempts in the store.
#[test]
fn a_restart_restores_the_abandonment_windows_from_the_store() {
    use outdial::campaign::model::Outcome;
    use outdial::store::AttemptResult;

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("outdial.toml");
    // Nothing is dialed here: every record is used up below.
    std::fs::write(&config_path, config(dir.path(), free_port())).unwrap();
    std::fs::write(
        dir.path().join("list.csv"),
        "id,phone\nr0,+12025551005\nr1,+12025551015\nr2,+12025551025\n",
    )
    .unwrap();
    import_list(&config_path, &dir.path().join("list.csv"));

    // An earlier run, an hour ago: two live answers, one of them abandoned,
    // and a machine.
    {
        let (store, leases, earlier) = leased_an_hour_ago(dir.path());
        assert_eq!(leases.len(), 3);
        for (lease, (outcome, verdict, abandoned)) in leases.iter().zip([
            (Outcome::Human, "human", false),
            (Outcome::Abandoned, "human", true),
            (Outcome::Machine, "machine", false),
        ]) {
            let attempt = store.begin_attempt(lease, earlier).unwrap();
            let mut result = AttemptResult::new(outcome);
            result.cpa_verdict = Some(verdict.into());
            result.abandoned = abandoned;
            store.complete_attempt(attempt, &result, earlier).unwrap();
        }
    }

    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    start_campaign(addr);
    let restored = running.wait_for_message(
        "abandonment history of the last 30 days restored",
        Duration::from_secs(10),
    );
    let fields = log_fields(&restored);
    assert_eq!(fields["answers"], 2, "{restored}");
    assert_eq!(fields["abandoned"], 1, "{restored}");
    // The same calls teach the pacer's outcome and talk models.
    let learned = running.wait_for_message(
        "the pacer learned from the campaign's recent calls",
        Duration::from_secs(10),
    );
    let fields = log_fields(&learned);
    assert_eq!(fields["calls"], 3, "{learned}");
    assert_eq!(fields["live"], 2, "{learned}");
    // The pacer's US rate now holds them: 1 abandon in 2 live answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = stats(addr);
        if stats["abandon_rate_us"].as_f64() == Some(0.5) {
            break;
        }
        assert!(Instant::now() < deadline, "rate not restored: {stats}");
        std::thread::sleep(Duration::from_millis(100));
    }
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}

/// Live persons who were waiting for an agent (or hearing the abandon
/// message) when the dialer was killed were abandoned: the restarted
/// dialer's abandonment windows count them, while the one an agent had
/// taken counts as a live answer only.
#[test]
fn kill_9_while_live_answers_wait_counts_them_as_abandoned_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Every number is a live person who talks for a minute (last digit 1).
    let _carrier = Sipp::uas(
        sip_support::carrier_router(dir.path(), 60_000)
            .to_str()
            .unwrap(),
        LINES as u32,
        &["-timeout", "120s"],
    );
    // A 30 s abandon message keeps the abandoned calls up until the kill.
    let prompt = dir.path().join("abandon.wav");
    outdial::media::wav::write_mono_8k(&prompt, &vec![0i16; 8000 * 30]).unwrap();
    let config_path = dir.path().join("outdial.toml");
    let text = config(dir.path(), _carrier.port).replace(
        "default_region = \"US\"\n",
        &format!(
            "default_region = \"US\"\nabandon_prompt = \"{}\"\n",
            prompt.display()
        ),
    );
    assert!(text.contains("abandon_prompt"));
    std::fs::write(&config_path, text).unwrap();
    let mut list = String::from("id,phone\n");
    for i in 0..LINES {
        list.push_str(&format!("r{i},+12025552{i:02}1\n"));
    }
    std::fs::write(dir.path().join("list.csv"), list).unwrap();
    import_list(&config_path, &dir.path().join("list.csv"));

    // First life: three live answers, one agent; two are abandoned and
    // hear the message when the dialer dies.
    let mut first = Running::start(&config_path);
    let addr = first.wait_until_listening();
    start_campaign(addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = stats(addr);
        if stats["live_answers"] == LINES as u64 && stats["abandoned"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no three live answers: {stats}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The marks on the attempt rows are written off the engine's loop.
    std::thread::sleep(Duration::from_millis(1000));
    first.signal("KILL");
    let _ = first.child.wait();

    let mut second = Running::start(&config_path);
    let addr = second.wait_until_listening();
    let opened = second.wait_for_message("store open", Duration::from_secs(10));
    let fields = log_fields(&opened);
    assert_eq!(fields["interrupted"], LINES as u64, "{opened}");
    start_campaign(addr);
    let restored = second.wait_for_message(
        "abandonment history of the last 30 days restored",
        Duration::from_secs(10),
    );
    let fields = log_fields(&restored);
    assert_eq!(fields["answers"], LINES as u64, "{restored}");
    assert_eq!(fields["abandoned"], 2, "{restored}");
    second.signal("TERM");
    assert!(second.child.wait().unwrap().success());
}

/// The store cannot take a finished call's row (another process holds the
/// SQLite file's write lock past the busy timeout) and the dialer is
/// stopped: the row, with the agent's disposition, waits in the node's
/// spool and is written at the next start — not closed as interrupted.
#[test]
fn a_row_the_store_could_not_take_before_the_stop_is_written_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outdial.db");
    // A live person who talks for 8 s (last digit 1).
    let _carrier = Sipp::uas(
        sip_support::carrier_router(dir.path(), 8_000)
            .to_str()
            .unwrap(),
        1,
        &["-timeout", "120s"],
    );
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(&config_path, config(dir.path(), _carrier.port)).unwrap();
    std::fs::write(dir.path().join("list.csv"), "id,phone\nr0,+12025553001\n").unwrap();
    import_list(&config_path, &dir.path().join("list.csv"));

    let mut first = Running::start(&config_path);
    let addr = first.wait_until_listening();
    start_campaign(addr);
    // Connected to the simulated agent (the mark is on the attempt row):
    // take the store's write lock while the customer talks.
    wait_for_attempts_where(&db, "agent IS NOT NULL AND ended_at IS NULL", 1);
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The call ends, the agent wraps up with SALE; the row goes to the
    // spool, then waits for the store (each of the engine's store calls
    // now waits out the 10 s busy timeout). Stop the dialer meanwhile.
    let spool = dir.path().join("outdial.db.spool");
    let deadline = Instant::now() + Duration::from_secs(40);
    while !std::fs::read_to_string(&spool).is_ok_and(|s| s.contains("\"SALE\"")) {
        assert!(Instant::now() < deadline, "the row never reached the spool");
        std::thread::sleep(Duration::from_millis(50));
    }
    first.signal("TERM");
    let _ = first.child.wait();
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert!(spooled.contains("\"SALE\""), "{spooled}");
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);

    let mut second = Running::start(&config_path);
    second.wait_until_listening();
    let opened = second.wait_for_message("store open", Duration::from_secs(10));
    let fields = log_fields(&opened);
    assert_eq!(fields["spooled_written"], 1, "{opened}");
    assert_eq!(fields["interrupted"], 0, "{opened}");
    second.signal("TERM");
    assert!(second.child.wait().unwrap().success());
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0);

    let cdr = dir.path().join("attempts.csv");
    let export = outdial()
        .arg("--config")
        .arg(&config_path)
        .args(["export", "--campaign", "recovery", "--attempts", "--out"])
        .arg(&cdr)
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    let mut reader = csv::Reader::from_path(&cdr).unwrap();
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    let field = |name: &str| {
        let column = headers.iter().position(|h| h == name).unwrap();
        rows[0][column].to_string()
    };
    assert_eq!(field("outcome"), "human");
    assert_eq!(field("disposition"), "SALE");
    assert_eq!(field("agent"), "sim");
}

/// A callback whose call was ringing when the dialer was killed was not
/// delivered: after the restart it is still scheduled (the same one, with
/// its time), and its record is not redialed at once.
#[test]
fn kill_9_during_a_callbacks_call_keeps_the_callback() {
    use outdial::campaign::model::Outcome;
    use outdial::store::{AttemptResult, CallbackRequest};

    let dir = tempfile::tempdir().unwrap();
    // The number rings until cancelled (last digit 5).
    let _carrier = Sipp::uas(
        sip_support::carrier_router(dir.path(), 1000)
            .to_str()
            .unwrap(),
        1,
        &["-timeout", "120s"],
    );
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(&config_path, config(dir.path(), _carrier.port)).unwrap();
    std::fs::write(dir.path().join("list.csv"), "id,phone\nr0,+12025551005\n").unwrap();
    import_list(&config_path, &dir.path().join("list.csv"));
    // An hour ago the customer asked to be called back half an hour ago.
    let callback = {
        let (store, mut leases, earlier) = leased_an_hour_ago(dir.path());
        let lease = leases.remove(0);
        let attempt = store.begin_attempt(&lease, earlier).unwrap();
        store
            .complete_attempt(attempt, &AttemptResult::new(Outcome::Human), earlier)
            .unwrap();
        store
            .schedule_callback(
                &CallbackRequest {
                    record: lease.record_id,
                    at: earlier + jiff::SignedDuration::from_mins(30),
                    phone: None,
                    agent: None,
                },
                earlier,
            )
            .unwrap()
    };
    let pending = |addr| -> Vec<i64> {
        let (status, body) = http(
            addr,
            "GET",
            "/api/callbacks?campaign=recovery",
            Some(SUPERVISOR),
            None,
        );
        assert_eq!(status, 200, "{body}");
        json(&body)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };

    // First life: the callback's call rings, then SIGKILL.
    let mut first = Running::start(&config_path);
    let addr = first.wait_until_listening();
    assert_eq!(pending(addr), vec![callback]);
    start_campaign(addr);
    wait_for_lines(addr, 1);
    wait_for_attempt_rows(&dir.path().join("outdial.db"), 1);
    assert_eq!(pending(addr), Vec::<i64>::new(), "being delivered");
    first.signal("KILL");
    let _ = first.child.wait();

    // Second life: the call is closed as interrupted, the callback stays.
    let mut second = Running::start(&config_path);
    let addr = second.wait_until_listening();
    let opened = second.wait_for_message("store open", Duration::from_secs(10));
    assert_eq!(log_fields(&opened)["interrupted"], 1, "{opened}");
    assert_eq!(pending(addr), vec![callback]);
    start_campaign(addr);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(stats(addr)["dials"], 0, "the callback was redialed at once");
    second.signal("TERM");
    assert!(second.child.wait().unwrap().success());
}
