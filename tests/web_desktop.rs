//! The web desktops in a real browser: headless Chromium driven through
//! ChromeDriver (WebDriver over HTTP), against `outdial run` with a preview
//! campaign, a SIPp carrier and a SIPp softphone for the agent. The
//! supervisor loads the list and starts the campaign from the dashboard;
//! the agent signs in, logs in, goes Ready, previews records, skips one,
//! removes one, calls a busy number, calls a live person (screen pop, call
//! guide, wrap-up form) and goes Not ready — every step by clicking, every
//! check on what the page shows; the store's CDR and record states confirm
//! what the clicks did.

mod sip_support;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sip_support::{Sipp, free_port};
use support::{Running, http};

const SUPERVISOR: &str = "web-supervisor-token";
const AGENT: &str = "web-agent-a1-token";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The tests of this file drive one headless Chromium each; two at once on
/// a 2-core runner slow both past their waits.
fn one_browser_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    BROWSER.lock().unwrap_or_else(|p| p.into_inner())
}

/// One WebDriver request; the JSON answer's `value`.
fn webdriver(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).expect("connect to chromedriver");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then exactly Content-Length bytes: ChromeDriver keeps
    // the connection open whatever the request asks.
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).expect("read from chromedriver");
        assert!(n > 0, "chromedriver closed the connection");
        response.extend_from_slice(&chunk[..n]);
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .expect("a Content-Length");
            break (end + 4, length);
        }
    };
    while response.len() < head_end + length {
        let n = stream.read(&mut chunk).expect("read from chromedriver");
        assert!(n > 0, "chromedriver closed the connection mid-body");
        response.extend_from_slice(&chunk[..n]);
    }
    let payload = String::from_utf8_lossy(&response[head_end..head_end + length]).to_string();
    let value: Value = serde_json::from_str(&payload)
        .unwrap_or_else(|_| panic!("WebDriver {method} {path}: not JSON: {payload}"));
    value["value"].clone()
}

/// Headless Chromium under ChromeDriver; both end when this is dropped.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    /// Headless Chromium saving downloads into `downloads`.
    fn start(downloads: &Path) -> Browser {
        Browser::start_with(downloads, &[])
    }

    /// The same with more command-line switches.
    fn start_with(downloads: &Path, switches: &[&str]) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test installs it)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1300,1000",
        ];
        args.extend_from_slice(switches);
        let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
        options["prefs"] = json!({
            "download.default_directory": downloads.to_str().unwrap(),
            "download.prompt_for_download": false,
        });
        let capabilities =
            json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}});
        let created = webdriver(addr, "POST", "/session", Some(&capabilities));
        let session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_string();
        Browser {
            driver,
            addr,
            session,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        webdriver(self.addr, method, &path, body.as_ref())
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn element(&self, css: &str) -> Option<String> {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT].as_str().map(str::to_string)
    }

    fn must(&self, css: &str) -> String {
        self.element(css).unwrap_or_else(|| {
            let found = self.call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            );
            let url = self.call("GET", "/url", None);
            let source = self.call("GET", "/source", None);
            panic!("no element `{css}` ({found}) on the page {url}:\n{source}")
        })
    }

    fn click(&self, css: &str) {
        let id = self.must(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Clicks `css` (when it is there) until `done`: for buttons in tables
    /// the page redraws every few seconds, where a click can land on a row
    /// just replaced and do nothing.
    fn click_until(&self, css: &str, what: &str, done: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what} (message {:?})",
                self.text("#message")
            );
            if let Some(id) = self.element(css) {
                self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.must(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// The element's rendered text ("" when hidden).
    fn text(&self, css: &str) -> String {
        match self.element(css) {
            Some(id) => self
                .call("GET", &format!("/element/{id}/text"), None)
                .as_str()
                .unwrap_or_default()
                .to_string(),
            None => String::new(),
        }
    }

    /// With `WEB_SCREENSHOTS=DIR`, saves what the browser shows as
    /// DIR/NAME.png (to look at the pages; the test checks the DOM).
    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("WEB_SCREENSHOTS") else {
            return;
        };
        use base64::Engine as _;
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), bytes).unwrap();
    }

    /// Runs `script` in the page (for inputs WebDriver cannot type into
    /// the same way in every locale, such as datetime-local).
    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Runs `script` in the page with a callback (`arguments[0]`) that
    /// returns its value.
    fn async_script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    fn enabled(&self, css: &str) -> bool {
        let id = self.must(css);
        self.call("GET", &format!("/element/{id}/enabled"), None) == Value::Bool(true)
    }

    /// Waits until `css`'s text satisfies `check`; panics with what the
    /// page showed last.
    fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text(css);
            if check(&text) {
                return text;
            }
            if Instant::now() > deadline {
                let message = self.text("#message");
                panic!("{what}: `{css}` shows {text:?} (message {message:?})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_until(&self, what: &str, check: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "{what} (message {:?})",
                self.text("#message")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = std::panic::catch_unwind(|| webdriver(self.addr, "DELETE", &path, None));
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn config(dir: &Path, carrier_port: u16, agent_port: u16) -> String {
    let rtp_base = 26000 + (free_port() % 1000) * 8;
    format!(
        r#"
[sip]
listen = "127.0.0.1:0"
transports = ["udp"]
[rtp]
bind = "127.0.0.1"
port_min = {rtp_base}
port_max = {rtp_max}
[media]
record_dir = "{recordings}"
[trunk]
uri = "sip:127.0.0.1:{carrier_port}"
caller_id = "+15551230000"
max_concurrent_calls = 2
max_calls_per_second = 5
options_interval_s = 0
[api]
listen = "127.0.0.1:0"
[[api.token]]
token = "{SUPERVISOR}"
role = "supervisor"
[[api.token]]
token = "{AGENT}"
role = "agent"
agent = "a1"
[store]
url = "sqlite://{db}"
[[campaign]]
name = "web"
mode = "preview"
ring_timeout_s = 15
call_hours = "00:00-23:59"
call_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
default_region = "US"
caller_ids = ["+15551230007", "+15551230008"]
agents_confirm_join = true
[[campaign.guide]]
id = "interested"
question = "Is the customer interested?"
answers = [{{ text = "Yes", next = "plan" }}, {{ text = "No" }}]
[[campaign.guide]]
id = "plan"
question = "Which plan?"
answers = [{{ text = "Gold" }}, {{ text = "Silver" }}]
[[campaign.disposition]]
code = "VM_BY_HAND"
label = "Voicemail left by hand"
effect = "retry"
[[agent]]
id = "a1"
name = "Ann Agent"
sip_uri = "sip:agent@127.0.0.1:{agent_port}"
campaigns = ["web"]
"#,
        rtp_max = rtp_base + 7,
        db = dir.join("outdial.db").display(),
        recordings = dir.join("recordings").display(),
    )
}

#[test]
fn an_agent_previews_and_calls_from_the_desktop_the_supervisor_starts_the_campaign() {
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // The carrier answers by the number's last digit: 4 is busy; a live
    // person's phone rings 2.5 s, long enough to see the desktop meanwhile.
    let mut carrier = Sipp::uas(
        sip_support::carrier_router_ringing(dir.path(), 2000, 2500)
            .to_str()
            .unwrap(),
        2,
        &["-timeout", "90s"],
    );
    // The agent's softphone: answers the reservation call, echoes audio.
    let echo_port = free_port().to_string();
    let mut agent_phone = Sipp::uas(
        "uas_rtp_echo.xml",
        1,
        &["-rtp_echo", "-mp", &echo_port, "-timeout", "90s"],
    );
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(
        &config_path,
        config(dir.path(), carrier.port, agent_phone.port),
    )
    .unwrap();
    let list = dir.path().join("list.csv");
    std::fs::write(
        &list,
        "id,name,phone,plan\nr1,Lee Skipped,+12025550111,gold\nr2,Bob Removed,+12025550121,silver\nr3,Cy Busy,+12025550134,bronze\nr4,Dee Live,+12025550141,gold\nr5,Bad Number,12345,gold\n",
    )
    .unwrap();
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = Browser::start(&downloads);

    // The supervisor starts the campaign from the dashboard.
    browser.open(&format!("http://{addr}/supervisor"));
    browser.type_into("#token", SUPERVISOR);
    browser.click("#signin-button");
    browser.wait_text(
        "tr[data-campaign=web] .campaign-state",
        "campaign listed",
        |t| t == "loaded",
    );
    browser.wait_text("tr[data-agent=a1] .agent-state", "agent listed", |t| {
        t == "logged_out"
    });
    // The list is loaded from the dashboard (a bad row reported by line).
    browser.type_into("#list-file", list.to_str().unwrap());
    browser.click("#list-upload");
    browser.wait_text("#list-result", "the list loaded", |t| {
        t == "web: 4 imported, 0 updated, 1 rejected"
    });
    browser.wait_text(
        "tr[data-campaign=web] .list-progress",
        "the list's progress",
        |t| t == "4 new · 0 to retry · 0 done",
    );
    // The campaign's abandonment on every node (none has dialed yet).
    browser.wait_text(
        "tr[data-campaign=web] .all-nodes",
        "the abandonment of every node",
        |t| t == "US 0.00 % (0/0) · UK 0.00 % · 0 nodes",
    );
    assert!(
        browser.text("#list-rejected").starts_with("line 6:"),
        "{}",
        browser.text("#list-rejected")
    );
    // A number onto the campaign's do-not-call list (and a bad one refused).
    browser.click("#dnc-campaign option[value=web]");
    browser.type_into("#dnc-numbers", "(202) 555-0199\nbogus");
    browser.click("#dnc-add");
    browser.wait_text("#dnc-result", "the DNC change", |t| {
        t.starts_with("1 added, 0 unchanged; rejected: bogus")
    });
    let (status, body) = http(
        addr,
        "GET",
        "/api/dnc/+12025550199?campaign=web",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"listed\":true"), "{body}");
    // The dashboard refreshes every 2 s without replacing the row's buttons
    // (a click on a replaced one is lost).
    let export_button = browser.must("tr[data-campaign=web] button.export");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        browser.must("tr[data-campaign=web] button.export"),
        export_button,
        "the campaign row's buttons were redrawn"
    );
    // The records, downloaded as CSV from the dashboard.
    let saved = downloads.join("web-records.csv");
    browser.click_until(
        "tr[data-campaign=web] button.export",
        "the records CSV downloaded",
        |_| saved.exists(),
    );
    let mut csv = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while csv.lines().count() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        csv = std::fs::read_to_string(&saved).unwrap_or_default();
    }
    assert!(csv.starts_with("external_id,name,state"), "{csv}");
    assert_eq!(csv.lines().count(), 5, "header and 4 records: {csv}");
    browser.click_until(
        "tr[data-campaign=web] button:nth-of-type(1)",
        "campaign started",
        |b| b.text("tr[data-campaign=web] .campaign-state") == "running",
    );
    browser.screenshot("supervisor");

    // The agent's desktop: sign in, log in, Ready.
    sign_in_and_get_ready(&browser, addr);
    browser.wait_text("#campaigns", "my campaigns", |t| {
        t.contains("web preview running")
    });
    // The campaign asks its agents to confirm joining: no record before.
    assert!(!browser.enabled("#get-record"));
    browser.click_until(
        "button.join[data-campaign=web]",
        "the campaign joined",
        |b| b.element("button.join").is_none(),
    );

    // Get record: the first record, with its list column.
    browser.wait_until("Get record enabled", |b| b.enabled("#get-record"));
    get_record(&browser, "Lee Skipped");
    assert_eq!(browser.text("#preview-phone"), "+12025550111");
    // The list gave no zone: Washington's area code gives New York's clock.
    assert_shows_new_york_time(&browser.text("#preview-local-time"));
    assert!(
        browser.text("#preview-custom").contains("gold"),
        "{}",
        browser.text("#preview-custom")
    );
    assert_eq!(browser.text("#state"), "previewing");
    browser.screenshot("agent-preview");
    // Skip shows the next; Remove takes it off the list.
    browser.click("#preview-skip");
    browser.wait_text("#preview-name", "skip shows the next record", |t| {
        t == "Bob Removed"
    });
    browser.click("#preview-remove");
    browser.wait_text("#state", "ready after remove", |t| t == "ready");
    assert_eq!(browser.text("#preview-name"), "", "the preview is hidden");
    // Call: the agent is reserved for it; busy at the carrier frees her.
    get_record(&browser, "Cy Busy");
    browser.click("#preview-call");
    browser.wait_text("#log", "the call is logged", |t| {
        t.contains("record r3 called")
    });
    // Popped at the dial: the agent sees whom the call is for while it rings.
    browser.wait_text("#log", "the record popped at the dial", |t| {
        t.contains("customer Cy Busy")
    });
    browser.wait_text("#state", "ready after the busy call", |t| t == "ready");
    // A live person: the screen pop while on the call, then the wrap-up
    // form when the callee hangs up (after 2 s).
    get_record(&browser, "Dee Live");
    // The agent picks the caller ID the customer will see.
    browser.click("#preview-caller-id option[value='+15551230008']");
    browser.click("#preview-call");
    // While it rings the record is up with "connecting…" (SPEC §2).
    browser.wait_text("#call-connecting", "connecting… while it rings", |t| {
        t == "Outbound campaign call — connecting…"
    });
    assert_eq!(browser.text("#call-name"), "Dee Live");
    // ... and Hang up reads Cancel call (drawn with "connecting…").
    assert_eq!(browser.text("#hangup"), "Cancel call");
    assert!(browser.enabled("#hangup"));
    browser.wait_text("#state", "on the call", |t| t == "on call");
    assert_eq!(browser.text("#hangup"), "Hang up");
    // Hold and Resume (the customer hears the hold chime meanwhile).
    assert!(browser.enabled("#hold"));
    browser.click("#hold");
    browser.wait_text("#hold", "Resume while on hold", |t| t == "Resume");
    browser.wait_text("#on-hold", "the time on hold", |t| t.starts_with("On hold"));
    browser.click("#hold");
    browser.wait_text("#hold", "Hold after Resume", |t| t == "Hold");
    // Pause the recording (a card number is read out) and go on.
    browser.click("#pause-recording");
    browser.wait_text("#pause-recording", "Resume recording while paused", |t| {
        t == "Resume recording"
    });
    assert_eq!(browser.text("#recording-paused"), "Recording paused");
    browser.click("#pause-recording");
    browser.wait_text("#pause-recording", "Pause recording again", |t| {
        t == "Pause recording"
    });
    assert_eq!(
        browser.text("#call-connecting"),
        "",
        "connecting… is gone once the customer is on the line"
    );
    assert_eq!(browser.text("#call-name"), "Dee Live");
    // The callback can be filled in during the call (scheduled with the
    // disposition).
    assert_eq!(
        browser.script("return document.getElementById('callback-at').offsetParent !== null"),
        json!(true)
    );
    assert_eq!(browser.text("#call-phone"), "+12025550141");
    assert_shows_new_york_time(&browser.text("#call-local-time"));
    assert!(browser.text("#call-custom").contains("gold"));
    // The call guide: Yes leads to the plan question.
    browser.wait_text("#guide-question", "the guide's first question", |t| {
        t == "Is the customer interested?"
    });
    // The guide is redrawn with the agent's view: click until it moves on.
    browser.click_until(
        "#guide-choices button[data-answer=Yes]",
        "the branch",
        |b| b.text("#guide-question") == "Which plan?",
    );
    // The desktop opened again mid-call (a reload, a crashed browser) has
    // seen no screen pop: the agent's view names the customer, and the
    // guide's answers so far come back from the tab's storage.
    browser.open(&format!("http://{addr}/agent"));
    browser.wait_text("#call-name", "the customer after opening again", |t| {
        t == "Dee Live"
    });
    assert!(browser.text("#call-custom").contains("gold"));
    browser.wait_text("#guide-question", "the guide where it was", |t| {
        t == "Which plan?"
    });
    browser.click_until(
        "#guide-choices button[data-answer=Gold]",
        "the guide's end",
        |b| b.text("#guide-question") == "Guide complete.",
    );
    browser.screenshot("agent-on-call");
    browser.wait_text("#state", "wrap-up", |t| t == "wrap up");
    // The supervisor's dashboard names the customer the agent is wrapping
    // up; the desktop opened again has the wrap-up back.
    browser.open(&format!("http://{addr}/supervisor"));
    browser.script(&format!(
        "sessionStorage.setItem('outdial.token', '{SUPERVISOR}'); location.reload()"
    ));
    browser.wait_text(
        "tr[data-agent=a1] .agent-customer",
        "the agent's customer on the dashboard",
        |t| t == "Dee Live +12025550141",
    );
    browser.open(&format!("http://{addr}/agent"));
    browser.script(&format!(
        "sessionStorage.setItem('outdial.token', '{AGENT}'); location.reload()"
    ));
    browser.wait_text("#state", "wrap-up after opening again", |t| t == "wrap up");
    assert_eq!(browser.text("#call-name"), "Dee Live");
    // The agent corrects the contact: her name, a new field, a changed one.
    browser.click("#call button.edit-contact");
    browser.wait_until("the contact editor", |b| {
        b.script("return document.getElementById('contact-fields').value") == json!("plan = gold")
    });
    browser.script(
        "document.getElementById('contact-name').value = 'Dee Lively'; \
         document.getElementById('contact-fields').value = 'plan = platinum\\nemail = dee@example.test'; \
         return null",
    );
    browser.click("#contact-save");
    browser.wait_text("#call-name", "the corrected name", |t| t == "Dee Lively");
    assert!(
        browser.text("#call-custom").contains("dee@example.test"),
        "{}",
        browser.text("#call-custom")
    );
    // The campaign's own code is offered with the system's.
    browser.click("#disposition option[value=VM_BY_HAND]");
    browser.type_into("#notes", "left a voicemail by hand");
    // A personal callback on another number (national, read as US).
    browser.script("document.getElementById('callback-at').value = '2030-01-15T10:00'");
    browser.click("#callback-personal");
    browser.type_into("#callback-phone", "(202) 555-0177");
    browser.screenshot("agent-wrap-up");
    // The "do not call" box and a callback do not go together: said, and
    // the wrap-up goes on.
    browser.click("#disposition-dnc");
    browser.click("#save-disposition");
    browser.wait_text("#message", "the conflict explained", |t| {
        t.contains("gets no callback")
    });
    assert_eq!(browser.text("#state"), "wrap up");
    browser.click("#disposition-dnc");
    browser.click("#save-disposition");
    browser.wait_text("#state", "ready after the disposition", |t| t == "ready");
    // One customer this shift (the busy number never reached the agent).
    browser.wait_text("#shift", "the shift's figures", |t| {
        t.starts_with("this shift: 1 call,")
    });
    browser.wait_text("#log", "the disposition is logged", |t| {
        t.contains("disposition VM_BY_HAND")
    });
    // It is listed under My callbacks; the agent moves it a year later.
    let row = browser.wait_text("#callbacks", "the callback listed", |t| {
        t.contains("Dee Live") && t.contains("+12025550177") && t.contains("2030")
    });
    assert!(row.contains("r4"), "{row}");
    browser.click_until(
        "#callbacks button:nth-of-type(1)",
        "the callback editor open",
        |b| b.text("#callback-edit-which").contains("Dee Live"),
    );
    browser.script("document.getElementById('callback-edit-at').value = '2031-02-01T09:30'");
    browser.click("#callback-edit-save");
    browser.wait_text("#callbacks", "the callback moved", |t| {
        t.contains("Dee Live") && t.contains("2031")
    });
    browser.screenshot("agent-callbacks");
    // Cancel and leave the campaign: the record goes back, no more
    // records until she joins again.
    get_record(&browser, "Lee Skipped");
    browser.click("#preview-leave");
    browser.wait_until("the Join button back", |b| {
        b.element("button.join[data-campaign=web]").is_some()
    });
    assert_eq!(browser.text("#state"), "ready");
    assert_eq!(browser.text("#preview-name"), "", "the preview is hidden");
    assert!(!browser.enabled("#get-record"));
    browser.click_until(
        "button.join[data-campaign=web]",
        "Get record enabled again",
        |b| b.enabled("#get-record"),
    );
    // Call back later: the customer wants a call on another day; the
    // record leaves the screen and comes back as her callback then.
    get_record(&browser, "Lee Skipped");
    browser.click("#preview-postpone");
    browser.wait_text("#message", "a time is asked for", |t| {
        t == "choose when to call back"
    });
    browser.script("document.getElementById('preview-callback-at').value = '2030-03-01T10:00'");
    browser.click("#preview-callback-personal");
    browser.click("#preview-postpone");
    browser.wait_text("#state", "ready after postponing", |t| t == "ready");
    browser.wait_text("#callbacks", "the postponed record's callback", |t| {
        t.contains("Lee Skipped") && t.contains("2030")
    });
    assert_eq!(browser.text("#preview-name"), "", "the preview is hidden");
    // Not ready with a reason.
    browser.click("#not-ready");
    browser.wait_text("#state", "not ready", |t| t == "not ready");
    assert_eq!(browser.text("#reason"), "(Break)");
    assert!(!browser.enabled("#get-record"));
    // The supervisor sees the callback, whose it is, and cancels it.
    browser.open(&format!("http://{addr}/supervisor"));
    browser.script(&format!(
        "sessionStorage.setItem('outdial.token', '{SUPERVISOR}'); location.reload()"
    ));
    let row = browser.wait_text("#callbacks", "the supervisor's callbacks", |t| {
        t.contains("Dee Live")
    });
    assert!(row.contains("a1") && row.contains("2031"), "{row}");
    assert!(row.contains("Lee Skipped"), "{row}");
    // The agent's shift in the agents' table.
    browser.wait_text("tr[data-agent=a1] .shift-calls", "the agent's calls", |t| {
        t == "1"
    });
    browser.click_until("#callbacks button.danger", "the callback cancelled", |b| {
        b.text("#callbacks").contains("no callbacks scheduled")
    });
    // The agents' activity over the last day, downloaded: a1's time ready,
    // on the call, in wrap-up and on her break.
    let activity = downloads.join("agent-activity.csv");
    browser.click_until("#activity-export", "the activity CSV downloaded", |_| {
        std::fs::read_to_string(&activity).is_ok_and(|t| t.contains("not_ready,Break"))
    });
    let text = std::fs::read_to_string(&activity).unwrap();
    assert!(
        text.starts_with("agent,state,reason,started_at,ended_at,seconds,node\n"),
        "{text}"
    );
    for state in ["a1,ready,", "a1,on_call,", "a1,wrap_up,", "a1,previewing,"] {
        assert!(text.contains(state), "{state} in {text}");
    }
    drop(browser);

    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    carrier.assert_passed(Duration::from_secs(10));
    agent_phone.assert_passed(Duration::from_secs(10));
    // The store saw what the clicks did: two dials (r3 busy, r4 answered
    // and disposed, both by a1), r2 removed, r1 back on the list.
    let (headers, rows) =
        support::export_csv(&config_path, "web", true, &dir.path().join("attempts.csv"));
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(&rows[0][column("external_id")], "r3");
    assert_eq!(&rows[0][column("outcome")], "busy");
    assert_eq!(&rows[0][column("agent")], "a1");
    assert_eq!(&rows[1][column("external_id")], "r4");
    assert_eq!(&rows[1][column("outcome")], "human");
    assert_eq!(&rows[1][column("agent")], "a1");
    assert_eq!(&rows[1][column("disposition")], "VM_BY_HAND");
    assert_eq!(&rows[1][column("notes")], "left a voicemail by hand");
    assert_eq!(
        &rows[1][column("guide_answers")],
        r#"[{"question":"interested","answer":"Yes"},{"question":"plan","answer":"Gold"}]"#
    );
    let (headers, records) =
        support::export_csv(&config_path, "web", false, &dir.path().join("contacts.csv"));
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let dee = records
        .iter()
        .find(|r| &r[column("external_id")] == "r4")
        .expect("r4 exported");
    assert_eq!(&dee[column("name")], "Dee Lively", "{dee:?}");
    let fields: Value = serde_json::from_str(&dee[column("custom_fields")]).unwrap();
    assert_eq!(
        fields,
        json!({"plan": "platinum", "email": "dee@example.test"}),
        "{dee:?}"
    );
    let states = support::record_states(&config_path, "web", &dir.path().join("records.csv"));
    assert_eq!(states["r2"], "removed", "{states:?}");
    assert_eq!(
        states["r1"], "new",
        "postponed, its callback cancelled by the supervisor: {states:?}"
    );
    assert_eq!(states["r4"], "retry", "its callback cancelled: {states:?}");
}

/// Ann (a1, the desktop's agent) and Bob (a2, Ready through the API), each
/// on a SIPp echo phone, in campaign `web` (started) with the records of
/// `list` (a CSV with a header) and a voicemail message; a SIPp carrier
/// for `calls` calls.
struct TwoAgents {
    carrier: Sipp,
    ann_phone: Sipp,
    bob_phone: Sipp,
    running: Running,
    addr: std::net::SocketAddr,
}

impl TwoAgents {
    fn start(dir: &Path, list: &str, calls: u32) -> TwoAgents {
        TwoAgents::start_with(dir, list, calls, "")
    }

    /// `start` with `campaign_tables` (TOML) added to campaign `web`.
    fn start_with(dir: &Path, list: &str, calls: u32, campaign_tables: &str) -> TwoAgents {
        let carrier = Sipp::uas(
            sip_support::carrier_router_ringing(dir, 20_000, 300)
                .to_str()
                .unwrap(),
            calls,
            &["-timeout", "90s"],
        );
        let message = dir.join("vm.wav");
        outdial::media::wav::write_mono_8k(&message, &vec![1000i16; 8000]).unwrap();
        let echo = || {
            let port = free_port().to_string();
            Sipp::uas(
                "uas_rtp_echo.xml",
                1,
                &["-rtp_echo", "-mp", &port, "-timeout", "90s"],
            )
        };
        let ann_phone = echo();
        let bob_phone = echo();
        let config_path = dir.join("outdial.toml");
        let text = config(dir, carrier.port, ann_phone.port).replace(
            "agents_confirm_join = true",
            &format!(
                "agents_confirm_join = false\nvoicemail_prompt = \"{}\"\n{campaign_tables}",
                message.display()
            ),
        );
        std::fs::write(
            &config_path,
            format!(
                "{text}[[agent]]\nid = \"a2\"\nname = \"Bob Agent\"\n\
                 sip_uri = \"sip:agent@127.0.0.1:{}\"\ncampaigns = [\"web\"]\n",
                bob_phone.port
            ),
        )
        .unwrap();
        support::import_list(&config_path, "web", list, dir);
        let mut running = Running::start(&config_path);
        let addr = running.wait_until_listening();
        let two = TwoAgents {
            carrier,
            ann_phone,
            bob_phone,
            running,
            addr,
        };
        let (status, body) = two.supervisor("POST", "/api/campaigns/web/start");
        assert_eq!(status, 200, "{body}");
        let (status, body) = two.supervisor("POST", "/api/agents/a2/login");
        assert_eq!(status, 200, "{body}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while two.supervisor("GET", "/api/agents/a2").1["phone_connected"] != true {
            assert!(Instant::now() < deadline, "a2's phone never came up");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, body) = two.supervisor("POST", "/api/agents/a2/ready");
        assert_eq!(status, 200, "{body}");
        two
    }

    fn supervisor(&self, method: &str, path: &str) -> (u16, Value) {
        let (status, body) = http(self.addr, method, path, Some(SUPERVISOR), None);
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    }

    /// Stops the dialer; every SIPp passed.
    fn stop(mut self) {
        self.running.signal("TERM");
        assert!(self.running.child.wait().unwrap().success());
        self.carrier.assert_passed(Duration::from_secs(10));
        self.ann_phone.assert_passed(Duration::from_secs(10));
        self.bob_phone.assert_passed(Duration::from_secs(10));
    }
}

#[test]
fn an_agent_transfers_the_customer_and_drops_a_voicemail_from_the_desktop() {
    // Ann (a1, the desktop) talks to a live SIPp customer, picks Bob (a2,
    // Ready through the API, a second SIPp phone) in "Transfer to" and
    // clicks Transfer: Bob has the customer, Ann is Ready at once. On her
    // next call she hears a greeting and clicks Drop voicemail: the
    // campaign's message goes to it and she is Ready again.
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let two = TwoAgents::start(
        dir.path(),
        "id,name,phone\nr4,Dee Live,+12025550141\nr6,Vic Mail,+12025550161\n",
        2,
    );
    let addr = two.addr;
    let supervisor = |method: &str, path: &str| two.supervisor(method, path);

    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = Browser::start(&downloads);
    sign_in_and_get_ready(&browser, addr);
    // Nobody on the line: nothing to transfer.
    assert!(!browser.enabled("#transfer"));
    get_record(&browser, "Dee Live");
    browser.click("#preview-call");
    browser.wait_text("#state", "on the call", |t| t == "on call");
    browser.wait_until("Bob offered in Transfer to", |b| {
        b.element("#transfer-to option[value=a2]").is_some()
    });
    assert!(browser.enabled("#transfer"));
    assert_eq!(
        browser.text("#transfer-to option[value=a2]"),
        "Bob Agent (a2)"
    );
    // Digits to the customer's line (an IVR menu) from the keypad.
    browser.click("#keypad button[data-key='1']");
    browser.wait_text("#log", "the digit logged", |t| t.contains("sent 1"));
    browser.click("#transfer-to option[value=a2]");
    browser.screenshot("agent-transfer");
    browser.click("#transfer");
    browser.wait_text("#log", "the transfer logged", |t| {
        t.contains("transfer to a2 done")
    });
    browser.wait_text("#state", "Ann ready at once", |t| t == "ready");
    assert_eq!(browser.text("#call-name"), "", "the customer is Bob's");
    browser.screenshot("agent-transferred");
    let bob = supervisor("GET", "/api/agents/a2").1;
    assert_eq!(
        (&bob["state"], &bob["call"]["record"]),
        (&json!("on_call"), &json!("r4")),
        "{bob}"
    );
    let (status, body) = supervisor("POST", "/api/agents/a2/hangup");
    assert_eq!(status, 200, "{body}");

    // The next call: a greeting, so Ann drops the campaign's message.
    get_record(&browser, "Vic Mail");
    assert!(
        !browser.enabled("#drop-voicemail"),
        "nobody on the line yet"
    );
    browser.click("#preview-call");
    browser.wait_text("#state", "on the next call", |t| t == "on call");
    browser.wait_until("Drop voicemail enabled", |b| b.enabled("#drop-voicemail"));
    browser.click("#drop-voicemail");
    browser.wait_text("#state", "Ann ready after the drop", |t| t == "ready");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, cdr) = http(
            addr,
            "GET",
            "/api/campaigns/web/export?attempts=true",
            Some(SUPERVISOR),
            None,
        );
        if cdr.contains("voicemail left") {
            break;
        }
        assert!(Instant::now() < deadline, "no voicemail left in {cdr}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(browser);
    two.stop();
}

#[test]
fn an_agent_transfers_the_customer_to_an_outside_number_from_the_desktop() {
    // Ann (a1, the desktop) talks to a live SIPp customer, picks the
    // campaign's outside number "Slow" in "Transfer to" (Consult is off
    // for it), clicks Transfer and, as it rings on, Cancel transfer: the
    // customer is hers again. Then "Billing": the SIPp carrier answers it,
    // the customer is put through and Ann wraps the call up while the two
    // talk. The CDR, written when the customer hangs up, names Billing's
    // number and Ann's code.
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let two = TwoAgents::start_with(
        dir.path(),
        "id,name,phone\nr4,Dee Live,+12025550141\n",
        3,
        "[[campaign.outside_transfer]]\nname = \"Billing\"\nnumber = \"+12025550172\"\n\
         [[campaign.outside_transfer]]\nname = \"Slow\"\nnumber = \"+12025550175\"",
    );
    let addr = two.addr;
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = Browser::start(&downloads);
    sign_in_and_get_ready(&browser, addr);
    get_record(&browser, "Dee Live");
    browser.click("#preview-call");
    browser.wait_text("#state", "on the call", |t| t == "on call");
    let billing = "#transfer-to option[value='outside Billing']";
    browser.wait_until("Billing offered in Transfer to", |b| {
        b.element(billing).is_some()
    });
    assert_eq!(browser.text(billing), "Billing (outside number)");
    // A number that rings on (the carrier's numbers ending in 5): called
    // off.
    browser.click("#transfer-to option[value='outside Slow']");
    browser.wait_until("Consult off for an outside number", |b| {
        b.enabled("#transfer") && !b.enabled("#consult")
    });
    browser.click("#transfer");
    let cancel_shown = |b: &Browser| {
        b.script("return !document.getElementById('cancel-transfer').classList.contains('hidden')")
            == json!(true)
    };
    browser.wait_until("Cancel transfer offered while it rings", cancel_shown);
    browser.wait_text("#transferring", "the number ringing", |t| {
        t.contains("+12025550175")
    });
    browser.click("#cancel-transfer");
    browser.wait_text("#log", "the cancel logged", |t| {
        t.contains("transfer to +12025550175 cancelled")
    });
    browser.wait_until("Cancel transfer gone", |b| !cancel_shown(b));
    assert_eq!(browser.text("#state"), "on call");
    browser.click(billing);
    browser.click("#transfer");
    browser.wait_text("#log", "the transfer logged", |t| {
        t.contains("transfer to +12025550172 done")
    });
    browser.wait_text("#state", "Ann wraps up", |t| t == "wrap up");
    assert_eq!(browser.text("#call-name"), "Dee Live");
    browser.screenshot("agent-outside-transfer");
    browser.click("#disposition option[value=SALE]");
    browser.click("#save-disposition");
    browser.wait_text("#state", "ready after the disposition", |t| t == "ready");
    // The customer talks 20 s, then hangs up: the call is written.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, cdr) = http(
            addr,
            "GET",
            "/api/campaigns/web/export?attempts=true",
            Some(SUPERVISOR),
            None,
        );
        if cdr.contains("+12025550172") {
            assert!(cdr.contains(",SALE,"), "{cdr}");
            break;
        }
        assert!(Instant::now() < deadline, "no outside transfer in {cdr}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(browser);
    two.stop();
}

#[test]
fn an_agent_consults_another_then_confers_then_completes_the_transfer_from_the_desktop() {
    // Ann (a1, the desktop) on a call with a live SIPp customer picks Bob
    // (a2, Ready, a second SIPp phone) and clicks Consult: the customer
    // waits on hold while Bob's phone is heard in Ann's call; Ann clicks
    // Conference (all three talk), then Complete transfer: Bob has the
    // customer and Ann is Ready.
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let two = TwoAgents::start(dir.path(), "id,name,phone\nr4,Dee Live,+12025550141\n", 1);
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = Browser::start(&downloads);
    sign_in_and_get_ready(&browser, two.addr);
    assert!(!browser.enabled("#consult"), "nobody on the line yet");
    get_record(&browser, "Dee Live");
    browser.click("#preview-call");
    browser.wait_text("#state", "on the call", |t| t == "on call");
    browser.wait_until("Bob offered", |b| {
        b.element("#transfer-to option[value=a2]").is_some() && b.enabled("#consult")
    });
    browser.click("#transfer-to option[value=a2]");
    browser.click("#consult");
    browser.wait_text("#consultation-note", "the consultation shown", |t| {
        t.contains("Consulting a2") && t.contains("on hold")
    });
    assert!(!browser.enabled("#hangup"), "no hang-up while consulting");
    assert!(!browser.enabled("#transfer"), "no blind transfer meanwhile");
    assert_eq!(browser.text("#hold"), "Conference");
    browser.screenshot("agent-consulting");
    let bob = two.supervisor("GET", "/api/agents/a2").1;
    assert_eq!(
        (
            &bob["state"],
            &bob["consultation"]["role"],
            &bob["consultation"]["with"]
        ),
        (&json!("reserved"), &json!("consulted"), &json!("a1")),
        "{bob}"
    );
    assert_eq!(
        bob["call"]["record"],
        json!("r4"),
        "Bob sees the customer: {bob}"
    );

    browser.click("#hold");
    browser.wait_text("#consultation-note", "the conference shown", |t| {
        t.contains("all three")
    });
    let bob = two.supervisor("GET", "/api/agents/a2").1;
    assert_eq!(bob["consultation"]["conference"], json!(true), "{bob}");

    browser.click("#complete-transfer");
    browser.wait_text("#log", "the transfer logged", |t| {
        t.contains("transfer to a2 done")
    });
    browser.wait_text("#state", "Ann ready at once", |t| t == "ready");
    let bob = two.supervisor("GET", "/api/agents/a2").1;
    assert_eq!(
        (&bob["state"], &bob["call"]["record"], &bob["consultation"]),
        (&json!("on_call"), &json!("r4"), &Value::Null),
        "{bob}"
    );
    let (status, body) = two.supervisor("POST", "/api/agents/a2/hangup");
    assert_eq!(status, 200, "{body}");
    drop(browser);
    two.stop();
}

#[test]
fn an_agent_uses_the_browser_as_phone() {
    // Ann (a1) has no softphone: `browser_phone = true`. Her desktop, in a
    // headless Chromium whose microphone plays a recorded voice, connects
    // the browser as her phone (WebRTC to the dialer), logs in — the
    // reservation call comes up on the browser at once — and calls a live
    // SIPp customer from a preview, who "talks" a 1 kHz tone. The tone
    // keeps reaching the browser's speaker after the zip tone; the
    // microphone's voice reaches the customer's side of the bridge, in the
    // agent's channel of the call's stereo recording.
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut carrier = sip_support::customer_talking_a_tone(dir.path());
    let config_path = dir.path().join("outdial.toml");
    let text = config(dir.path(), carrier.port, 9)
        .replace("agents_confirm_join = true", "agents_confirm_join = false")
        .replace(
            "sip_uri = \"sip:agent@127.0.0.1:9\"",
            "browser_phone = true",
        );
    assert!(text.contains("browser_phone = true"));
    let (mut running, addr) = run_web_campaign_for_dee(&config_path, &text, dir.path());

    // A recorded greeting (not the customer's "Hello?", which the browser's
    // echo canceller would take for its own echo), as 16-bit PCM: Chromium's
    // fake microphone reads no μ-law.
    let greeting = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/audio/machine.wav");
    let greeting = outdial::media::wav::Wav::read(&greeting)
        .unwrap()
        .to_mono_8k();
    let voice = dir.path().join("microphone.wav");
    outdial::media::wav::write_mono_8k(&voice, &greeting).unwrap();
    let microphone = format!("--use-file-for-fake-audio-capture={}", voice.display());
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = start_with_browser_phone(
        &downloads,
        &[&microphone, "--autoplay-policy=no-user-gesture-required"],
    );
    sign_in(&browser, addr);
    browser.click("#browser-phone");
    browser.wait_text("#browser-phone-state", "the browser phone connects", |t| {
        t == "browser phone connected"
    });
    // The browser may see the connection up a moment before the dialer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !browser_phones_are(addr, 1) {
        assert!(Instant::now() < deadline, "no browser phone in /metrics");
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.click("#login");
    browser.wait_text("#phone", "the reservation call up on the browser", |t| {
        t == "connected"
    });
    browser.click("#ready");
    browser.wait_text("#state", "ready", |t| t == "ready");
    get_record(&browser, "Dee Live");
    browser.click("#preview-call");
    browser.wait_text("#state", "on the call", |t| t == "on call");
    browser.screenshot("agent-browser-phone");

    // What the browser's speaker got: the zip tone, then the customer.
    let heard = |b: &Browser| {
        b.async_script(
            "const done = arguments[arguments.length - 1];
             browserPhone.pc.getStats().then((stats) => {
               let got = { packets: 0, energy: 0 };
               stats.forEach((s) => {
                 if (s.type === 'inbound-rtp' && s.kind === 'audio') {
                   got = { packets: s.packetsReceived || 0, energy: s.totalAudioEnergy || 0 };
                 }
               });
               done(got);
             });",
        )
    };
    browser.wait_until("the browser hears the call", |b| {
        let got = heard(b);
        got["packets"].as_u64().unwrap_or(0) > 100 && got["energy"].as_f64().unwrap_or(0.0) > 0.0
    });
    // The zip tone is long over: the energy that keeps arriving is the
    // customer's tone (silence adds next to nothing).
    let before = heard(&browser)["energy"].as_f64().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let after = heard(&browser)["energy"].as_f64().unwrap();
    assert!(
        after - before > 0.005,
        "the customer is not heard: {before} then {after}"
    );
    let playing = browser.script(
        "const audio = document.getElementById('browser-audio');
         return audio.srcObject !== null && !audio.paused;",
    );
    assert_eq!(playing, Value::Bool(true), "the speaker plays the call");
    // Let the microphone's voice cross for a while, then hang up.
    std::thread::sleep(Duration::from_secs(3));
    browser.click("#hangup");
    browser.wait_text("#state", "wrap-up", |t| t == "wrap up");

    // The agent's channel (right) of the call's recording is the browser's
    // microphone: the recorded voice, not silence.
    let recordings = dir.path().join("recordings");
    let deadline = Instant::now() + Duration::from_secs(15);
    let recording = loop {
        let found = std::fs::read_dir(&recordings).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "wav"))
        });
        if let Some(path) = found
            && let Ok(wav) = outdial::media::wav::Wav::read(&path)
            && wav.frames() > 8000
        {
            break wav;
        }
        assert!(Instant::now() < deadline, "no recording in {recordings:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(recording.channels, 2);
    let loud_agent_frames = recording
        .samples
        .chunks(2)
        .filter(|frame| frame.get(1).is_some_and(|s| s.unsigned_abs() > 1000))
        .count();
    assert!(
        loud_agent_frames > 800,
        "the agent's channel is near silent: {loud_agent_frames} loud samples of {}",
        recording.frames()
    );

    // Ann stops using the browser: her reservation call ends with it. She
    // takes it up again: the dialer calls her on it at once.
    browser.click("#browser-phone");
    browser.wait_text("#phone", "the reservation call ended", |t| {
        t == "not connected"
    });
    browser.click("#browser-phone");
    browser.wait_text("#browser-phone-state", "the browser phone again", |t| {
        t == "browser phone connected"
    });
    browser.wait_text("#phone", "the reservation call up again", |t| {
        t == "connected"
    });

    drop(browser);
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    carrier.assert_passed(Duration::from_secs(10));
}

#[test]
fn two_desktops_of_one_agent_do_not_fight_over_the_browser_phone() {
    // Ann's desktop in one tab uses the browser as her phone. A second tab
    // of hers opens: it remembers the choice and connects by itself, but
    // as a reconnect, which the dialer refuses while the first tab is the
    // phone — the second tab says so and the first keeps it. Then the
    // first tab is reloaded: it replaces its own session and is the phone
    // again (neither a 409 nor its own `pagehide` closing the new one).
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("outdial.toml");
    let text = config(dir.path(), 9, 9).replace(
        "sip_uri = \"sip:agent@127.0.0.1:9\"",
        "browser_phone = true",
    );
    std::fs::write(&config_path, text).unwrap();
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = start_with_browser_phone(&downloads, &[]);
    let desktop = format!("http://{addr}/agent");
    let connected = |t: &str| t == "browser phone connected";
    sign_in(&browser, addr);
    browser.click("#browser-phone");
    browser.wait_text("#browser-phone-state", "the first tab's phone", connected);
    let first = browser.call("GET", "/window", None);
    let second = browser.call("POST", "/window/new", Some(json!({ "type": "tab" })));
    browser.call(
        "POST",
        "/window",
        Some(json!({ "handle": second["handle"] })),
    );
    sign_in(&browser, addr);
    browser.wait_text("#browser-phone-state", "the second tab gives way", |t| {
        t.starts_with("another browser is your phone")
    });
    assert_eq!(browser.text("#browser-phone"), "Use this browser as phone");
    browser.call("POST", "/window", Some(json!({ "handle": first })));
    // Longer than the desktop's 3 s retry after a lost connection: the
    // first tab was never disturbed.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        browser.text("#browser-phone-state"),
        "browser phone connected"
    );
    assert!(browser_phones_are(addr, 1), "one browser phone");

    // A reload of the first tab: its page goes (pagehide closes its
    // session), the new page replaces it and is the phone again.
    browser.open(&desktop);
    browser.wait_text("#state", "desktop open again", |t| t == "logged out");
    browser.wait_text(
        "#browser-phone-state",
        "the reloaded tab's phone",
        connected,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !browser_phones_are(addr, 1) {
        assert!(
            Instant::now() < deadline,
            "no browser phone after the reload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        browser.text("#browser-phone-state"),
        "browser phone connected",
        "the reloaded tab kept its phone"
    );
    drop(browser);
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}

#[test]
fn a_browser_phone_waits_while_the_softphone_has_the_call() {
    // Ann is logged in on her softphone (SIPp, echoing) when she presses
    // "Use this browser as phone": the desktop says the softphone keeps the
    // call; after a logout and login the call is the browser's, and the
    // desktop says so once audio arrives.
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let rtp = free_port().to_string();
    let mut softphone = Sipp::uas(
        "uas_rtp_echo.xml",
        1,
        &["-rtp_echo", "-mp", &rtp, "-timeout", "60s"],
    );
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(&config_path, config(dir.path(), 9, softphone.port)).unwrap();
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = start_with_browser_phone(&downloads, &[]);
    sign_in(&browser, addr);
    browser.click("#login");
    browser.wait_text("#phone", "the softphone's reservation call", |t| {
        t == "connected"
    });
    browser.click("#browser-phone");
    browser.wait_text("#browser-phone-state", "standby", |t| {
        t.contains("your softphone has the call")
    });
    browser.click("#logout");
    browser.wait_text("#state", "logged out", |t| t == "logged out");
    softphone.assert_passed(Duration::from_secs(10));
    browser.click("#login");
    browser.wait_text("#browser-phone-state", "the call is the browser's", |t| {
        t == "browser phone connected"
    });
    assert_eq!(browser.text("#phone"), "connected");
    drop(browser);
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}

/// Agent a1 signs in to the desktop (in the browser's current tab).
fn sign_in(browser: &Browser, addr: SocketAddr) {
    browser.open(&format!("http://{addr}/agent"));
    browser.type_into("#agent-id", "a1");
    browser.type_into("#token", AGENT);
    browser.click("#signin-button");
    browser.wait_text("#state", "desktop open", |t| t == "logged out");
}

/// Headless Chromium whose WebRTC works here: a fake microphone (a beep,
/// unless `switches` name a file), the permission granted, and loopback
/// candidates, the test machine's only network.
fn start_with_browser_phone(downloads: &Path, switches: &[&str]) -> Browser {
    let mut all = vec![
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
    ];
    all.extend_from_slice(switches);
    Browser::start_with(downloads, &all)
}

/// Whether `/metrics` counts `count` connected browser phones.
fn browser_phones_are(addr: SocketAddr, count: usize) -> bool {
    let (_, metrics) = http(addr, "GET", "/metrics", None, None);
    metrics.contains(&format!("\noutdial_browser_phones {count}\n"))
}

/// Agent a1 signs in to the desktop, logs in, waits for the phone and
/// goes Ready.
fn sign_in_and_get_ready(browser: &Browser, addr: SocketAddr) {
    sign_in(browser, addr);
    browser.click("#login");
    browser.wait_text("#state", "logged in", |t| t == "not ready");
    // Logging in rang the agent's phone: Ready once it is up.
    browser.wait_text("#phone", "the reservation call up", |t| t == "connected");
    browser.click("#ready");
    browser.wait_text("#state", "ready", |t| t == "ready");
}

/// Clicks Get record until `name` is on screen (the first ask may find
/// the hopper still loading: the page then says so and nothing shows).
fn get_record(browser: &Browser, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        browser.click("#get-record");
        std::thread::sleep(Duration::from_millis(300));
        let shown = browser.text("#preview-name");
        if shown == name {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {name:?} on screen, got {shown:?} (message {:?})",
            browser.text("#message")
        );
    }
}

#[test]
fn a_supervisor_defines_changes_and_removes_a_campaign_from_the_dashboard() {
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let config_path = support::write_config(dir.path(), &support::ephemeral_config(dir.path()));
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    let supervisor = "demo-supervisor-token";
    let browser = Browser::start(dir.path());
    browser.open(&format!("http://{addr}/supervisor"));
    browser.type_into("#token", supervisor);
    browser.click("#signin-button");
    browser.wait_until("the agents to pick from", |b| {
        b.element("input[data-agent-choice='1001']").is_some()
    });
    // The dialer nodes on the store: this one, with its process, alive.
    let pid = running.child.id().to_string();
    browser.wait_text("#nodes", "this node listed", |t| {
        t.contains("(this one)") && t.contains(&pid) && t.contains("alive")
    });
    // A bad caller ID: nothing is created, the problem is shown by its key.
    browser.type_into("#define-name", "autumn");
    browser.click("#define-mode option[value=progressive]");
    browser.type_into("#define-target", "2.5");
    browser.type_into("#define-lines", "2");
    browser.type_into("#define-share-weight", "2.5");
    browser.type_into("#define-caller-id", "555-CALL");
    browser.click("input[data-agent-choice='1001']");
    browser.click("#define-record");
    browser.click("#define-days input[value=sun]");
    // Retries, attempts, the machine action, the wrap-up timer and codes.
    browser.click("#define-machine option[value=connect_agent]");
    browser.type_into("#define-attempts", "7");
    browser.type_into("#define-attempts-number", "2");
    browser.type_into("#define-retry-busy", "10");
    browser.type_into("#define-wrap-up", "45");
    // Preview settings (kept for a later switch to a preview mode).
    browser.type_into("#define-preview-timeout", "40");
    browser.click("#define-preview-action option[value=remove]");
    browser.click("#define-preview-skip");
    browser.click("#define-cpa-sensitivity option[value=conservative]");
    browser.click("#define-cpa-connect-first");
    browser.type_into(
        "#define-dispositions",
        "PROMISE, Promise to pay, final\nLATER, Call me later, please, retry",
    );
    browser.click("#define-save");
    browser.wait_text("#define-problems", "the problem listed", |t| {
        t.starts_with("caller_id:")
    });
    assert!(browser.element("tr[data-campaign=autumn]").is_none());
    browser.type_into("#define-caller-id", "+15551230077");
    browser.type_into("#define-caller-ids", "+14155550100, +12125550100");
    browser.click("#define-local-presence");
    browser.click("#define-save");
    browser.wait_text(
        "tr[data-campaign=autumn] .campaign-state",
        "the new campaign listed",
        |t| t == "loaded",
    );
    assert_eq!(browser.text("#define-save"), "Create", "the form is reset");
    // Saved, with the compliance warning of a progressive campaign with no
    // abandon message under the form.
    let warnings = browser.text("#define-problems");
    assert!(
        warnings.starts_with("warning: campaign `autumn`: no `abandon_prompt`"),
        "{warnings}"
    );
    let definition = |addr| {
        let (status, body) = http(
            addr,
            "GET",
            "/api/campaigns/autumn/definition",
            Some(supervisor),
            None,
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let created = definition(addr);
    assert_eq!(created["mode"], "progressive", "{created}");
    assert_eq!(created["lines_per_agent"], 2.0, "{created}");
    assert_eq!(created["agent_share_weight"], 2.5, "{created}");
    assert_eq!(created["abandon_target"], 0.025, "{created}");
    assert_eq!(created["caller_id"], "+15551230077", "{created}");
    assert_eq!(
        created["caller_ids"],
        json!(["+14155550100", "+12125550100"]),
        "{created}"
    );
    assert_eq!(created["local_presence"], true, "{created}");
    assert_eq!(created["agents"], json!(["1001"]), "{created}");
    assert_eq!(created["record_calls"], false, "{created}");
    assert_eq!(created["machine_action"], "connect_agent", "{created}");
    assert_eq!(created["max_attempts"], 7, "{created}");
    assert_eq!(created["max_attempts_per_number"], 2, "{created}");
    assert_eq!(created["max_attempts_per_day"], Value::Null, "{created}");
    assert_eq!(created["retry"]["busy_s"], 600, "{created}");
    assert_eq!(created["retry"]["no_answer_s"], 1800, "{created}");
    assert_eq!(created["wrap_up_timeout_s"], 45, "{created}");
    assert_eq!(created["cpa"]["sensitivity"], "conservative", "{created}");
    assert_eq!(created["cpa"]["connect_first"], true, "{created}");
    assert_eq!(created["cpa"]["max_analysis_ms"], 6000, "{created}");
    assert_eq!(created["cpa"]["machine_mode"], "wait_for_beep", "{created}");
    assert_eq!(
        created["disposition"],
        json!([
            {"code": "PROMISE", "label": "Promise to pay", "effect": "final"},
            {"code": "LATER", "label": "Call me later, please", "effect": "retry"},
        ]),
        "{created}"
    );
    assert_eq!(
        created["call_days"],
        json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        "{created}"
    );
    // The file's campaign has no Edit button; this one does.
    assert!(
        browser
            .element("tr[data-campaign=demo] button.edit")
            .is_none()
    );
    browser.screenshot("define-campaign");

    // Edit: the form shows its settings; predictive, another agent.
    browser.click_until(
        "tr[data-campaign=autumn] button.edit",
        "the form opened for the campaign",
        |b| b.text("#define-save") == "Save changes",
    );
    assert_eq!(
        browser.text("#define-title").to_lowercase(),
        "change campaign autumn"
    );
    assert_eq!(
        browser.script("return document.getElementById('define-lines').value"),
        json!("2")
    );
    assert_eq!(
        browser.script("return document.getElementById('define-share-weight').value"),
        json!("2.5")
    );
    assert_eq!(
        browser.script("return document.getElementById('define-caller-ids').value"),
        json!("+14155550100 +12125550100")
    );
    assert_eq!(
        browser.script("return document.getElementById('define-local-presence').checked"),
        json!(true)
    );
    assert_eq!(
        browser.script("return document.getElementById('define-dispositions').value"),
        json!("PROMISE, Promise to pay, final\nLATER, Call me later, please, retry")
    );
    assert_eq!(
        browser.script("return document.getElementById('define-retry-busy').value"),
        json!("10")
    );
    // An agent reserved at the dial needs one line per agent: refused,
    // the problem shown by its key.
    browser.click("#define-reserved-at-dial");
    browser.click("#define-save");
    browser.wait_text(
        "#define-problems",
        "the reserved-at-dial problem listed",
        |t| t.starts_with("agent_reserved_at_dial:") && t.contains("lines_per_agent must be 1"),
    );
    browser.click("#define-reserved-at-dial");
    browser.click("#define-mode option[value=predictive]");
    browser.click("input[data-agent-choice='1002']");
    browser.type_into("#define-retry-machine", "60");
    // A UK campaign's 72 hours before an abandoned call is tried again.
    browser.type_into("#define-retry-abandoned", "4320");
    // ... or called again sooner, with an agent reserved for the call.
    browser.type_into("#define-repeat-abandoned", "72");
    browser.type_into("#define-repeat-machine", "24");
    browser.click("#define-cpa-machine-mode option[value=verdict_only]");
    browser.type_into("#define-cpa-max", "4.5");
    browser.script("document.getElementById('define-wrap-up').value = ''; return null");
    let abandon_message = dir.path().join("autumn-abandon.wav");
    outdial::media::wav::write_mono_8k(&abandon_message, &vec![0i16; 8000]).unwrap();
    browser.type_into("#define-abandon", abandon_message.to_str().unwrap());
    let hold_music = dir.path().join("autumn-hold.wav");
    outdial::media::wav::write_mono_8k(&hold_music, &vec![0i16; 8000]).unwrap();
    browser.type_into("#define-hold", hold_music.to_str().unwrap());
    browser.click("#define-save");
    browser.wait_until("the change saved", |b| {
        b.text("tr[data-campaign=autumn]").contains("predictive")
    });
    assert_eq!(browser.text("#define-problems"), "", "no warning left");
    let changed = definition(addr);
    assert_eq!(
        changed["abandon_prompt"],
        abandon_message.to_str().unwrap(),
        "{changed}"
    );
    assert_eq!(
        changed["hold_music"],
        hold_music.to_str().unwrap(),
        "{changed}"
    );
    assert_eq!(changed["warnings"], json!([]), "{changed}");
    assert_eq!(changed["agents"], json!(["1001", "1002"]), "{changed}");
    assert_eq!(changed["caller_id"], "+15551230077", "{changed}");
    assert_eq!(
        changed["record_calls"], false,
        "kept by the edit: {changed}"
    );
    assert_eq!(changed["agent_reserved_at_dial"], false, "{changed}");
    // Loaded into the form by the edit and saved again as they were.
    assert_eq!(changed["preview_timeout_s"], 40, "{changed}");
    assert_eq!(changed["preview_timeout_action"], "remove", "{changed}");
    assert_eq!(changed["preview_allow_skip"], false, "{changed}");
    assert_eq!(changed["preview_allow_remove"], true, "{changed}");
    assert_eq!(changed["preview_variant"], "direct", "{changed}");
    assert_eq!(changed["retry"]["machine_s"], 3600, "{changed}");
    assert_eq!(changed["retry"]["abandoned_s"], 259_200, "{changed}");
    assert_eq!(
        changed["repeat_calls"],
        json!({"agent_after_abandoned_s": 259_200, "agent_after_machine_s": 86_400}),
        "{changed}"
    );
    assert_eq!(changed["cpa"]["machine_mode"], "verdict_only", "{changed}");
    assert_eq!(changed["cpa"]["max_analysis_ms"], 4500, "{changed}");
    assert_eq!(
        changed["cpa"]["sensitivity"], "conservative",
        "kept: {changed}"
    );
    assert_eq!(changed["cpa"]["connect_first"], true, "kept: {changed}");
    assert_eq!(changed["retry"]["busy_s"], 600, "kept: {changed}");
    assert_eq!(
        changed["wrap_up_timeout_s"],
        Value::Null,
        "cleared: {changed}"
    );
    assert_eq!(
        changed["disposition"][1]["code"], "LATER",
        "kept: {changed}"
    );

    // An agent of two running campaigns that dial by themselves dials for
    // one at a time, and the agents table marks which ("(dialing)"): Alice
    // (1001), logged in, is in both demo and autumn; Bob (1002), logged
    // out, is counted by neither. Stopping autumn leaves her demo's alone.
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/login",
        Some("demo-agent-1001-token"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    for name in ["demo", "autumn"] {
        browser.click(&format!("tr[data-campaign={name}] button.command-start"));
        browser.wait_text(
            &format!("tr[data-campaign={name}] .campaign-state"),
            "the campaign started",
            |t| t == "running",
        );
    }
    let shared = browser.wait_text(
        "tr[data-agent='1001'] .agent-campaigns",
        "Alice dialing for one of her campaigns",
        |t| t.matches("(dialing)").count() == 1,
    );
    assert!(
        shared.contains("demo") && shared.contains("autumn"),
        "{shared}"
    );
    let (_, body) = http(addr, "GET", "/api/agents/1001", Some(supervisor), None);
    let dialing_for = serde_json::from_str::<Value>(&body).unwrap()["dialing_for"].clone();
    assert!(
        shared.contains(&format!("{} (dialing)", dialing_for.as_str().unwrap())),
        "{shared} vs {dialing_for}"
    );
    assert!(
        !browser
            .text("tr[data-agent='1002'] .agent-campaigns")
            .contains("(dialing)")
    );
    browser.screenshot("shared-agent");
    browser.click("tr[data-campaign=autumn] button.command-stop");
    browser.wait_text(
        "tr[data-agent='1001'] .agent-campaigns",
        "Alice no longer shared",
        |t| t.contains("autumn") && !t.contains("(dialing)"),
    );

    // Remove (the confirmation accepted): gone from the table and the API.
    browser.script("window.confirm = () => true; return null");
    browser.click_until(
        "tr[data-campaign=autumn] button.remove",
        "the campaign removed",
        |b| b.element("tr[data-campaign=autumn]").is_none(),
    );
    let (status, _) = http(
        addr,
        "GET",
        "/api/campaigns/autumn/definition",
        Some(supervisor),
        None,
    );
    assert_eq!(status, 404);
}

/// `shown` is "HH:MM (America/New_York)", within a minute of New York's clock.
fn assert_shows_new_york_time(shown: &str) {
    let clock = shown
        .strip_suffix(" (America/New_York)")
        .unwrap_or_else(|| panic!("not New York's local time: {shown:?}"));
    let (hour, minute) = clock
        .split_once(':')
        .and_then(|(h, m)| Some((h.parse::<i64>().ok()?, m.parse::<i64>().ok()?)))
        .unwrap_or_else(|| panic!("not HH:MM: {shown:?}"));
    let now = jiff::Timestamp::now().in_tz("America/New_York").unwrap();
    let expected = i64::from(now.hour()) * 60 + i64::from(now.minute());
    let apart = (hour * 60 + minute - expected).rem_euclid(24 * 60);
    assert!(apart <= 1 || apart >= 24 * 60 - 1, "{shown:?} at {now}");
}

#[test]
fn a_supervisor_listens_in_from_the_dashboard() {
    // Ann (a1) is on a call with a SIPp customer who "talks" 1 kHz, on her
    // softphone (SIPp, echoing). The supervisor, in a headless Chromium
    // whose microphone is a fake beep, presses Listen on her row: the
    // browser connects and hears the call; whisper makes the microphone
    // live; Stop ends it. (Who hears what in each mode is checked sample
    // by sample in `media_rtp` and `browser_phone_e2e`.)
    let _one_browser = one_browser_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let carrier = sip_support::customer_talking_a_tone(dir.path());
    let rtp = free_port().to_string();
    let softphone = Sipp::uas(
        "uas_rtp_echo.xml",
        1,
        &["-rtp_echo", "-mp", &rtp, "-timeout", "60s"],
    );
    let config_path = dir.path().join("outdial.toml");
    let mut text = config(dir.path(), carrier.port, softphone.port)
        .replace("agents_confirm_join = true", "agents_confirm_join = false");
    // Room for the supervisor's two port pairs besides the call's.
    let port_max = text
        .lines()
        .find_map(|line| line.strip_prefix("port_max = "))
        .and_then(|max| max.parse::<u16>().ok())
        .unwrap();
    text = text.replace(
        &format!("port_max = {port_max}"),
        &format!("port_max = {}", port_max + 8),
    );
    let (mut running, addr) = run_web_campaign_for_dee(&config_path, &text, dir.path());
    let post = |path: &str, token: &str| http(addr, "POST", path, Some(token), None);
    let agent_is = |state: &str| {
        let (_, body) = http(addr, "GET", "/api/agents/a1", Some(AGENT), None);
        let view: Value = serde_json::from_str(&body).unwrap();
        view["state"] == json!(state) && view["phone_connected"] == json!(true)
    };
    assert_eq!(post("/api/agents/a1/login", AGENT).0, 200);
    wait_until("the reservation call up", || agent_is("not_ready"));
    assert_eq!(post("/api/agents/a1/ready", AGENT).0, 200);
    wait_until("a record to preview", || {
        post("/api/agents/a1/preview", AGENT).0 == 200
    });
    assert_eq!(post("/api/agents/a1/preview/call", AGENT).0, 200);
    wait_until("on the call", || agent_is("on_call"));

    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser =
        start_with_browser_phone(&downloads, &["--autoplay-policy=no-user-gesture-required"]);
    browser.open(&format!("http://{addr}/supervisor"));
    browser.type_into("#token", SUPERVISOR);
    browser.click("#signin-button");
    browser.wait_text("tr[data-agent=a1] .agent-state", "on the call", |t| {
        t == "on_call"
    });
    browser.click("tr[data-agent=a1] button.command-listen");
    browser.wait_text("#listen-state", "hearing", |t| t == "hearing a1");
    browser.wait_text("tr[data-agent=a1] .agent-phone", "marked", |t| {
        t == "connected · supervisor: monitor"
    });
    let heard = |b: &Browser| {
        b.async_script(
            "const done = arguments[arguments.length - 1];
             listening.pc.getStats().then((stats) => {
               let energy = 0;
               stats.forEach((s) => {
                 if (s.type === 'inbound-rtp' && s.kind === 'audio') energy = s.totalAudioEnergy || 0;
               });
               done(energy);
             });",
        )
        .as_f64()
        .unwrap_or(0.0)
    };
    let first = heard(&browser);
    wait_until("the supervisor hears the call", || {
        heard(&browser) > first + 0.01
    });
    let microphone_live = |b: &Browser| {
        b.script("return listening.stream.getAudioTracks()[0].enabled;") == json!(true)
    };
    assert!(!microphone_live(&browser), "muted while monitoring");
    browser.screenshot("supervisor-listening");

    browser.click("input[name=listen-mode][value=whisper]");
    let mode_is = |mode: &str| {
        let (_, body) = http(addr, "GET", "/api/listen-ins", Some(SUPERVISOR), None);
        let listen_ins: Value = serde_json::from_str(&body).unwrap();
        listen_ins[0]["mode"] == json!(mode)
    };
    wait_until("whispering", || mode_is("whisper"));
    wait_until("the microphone live", || microphone_live(&browser));

    // Ann's desktop, in a second tab, says her supervisor is coaching her.
    let dashboard = browser.call("GET", "/window", None);
    let desktop = browser.call("POST", "/window/new", Some(json!({ "type": "tab" })));
    let switch_to = |handle: &Value| {
        browser.call("POST", "/window", Some(json!({ "handle": handle })));
    };
    switch_to(&desktop["handle"]);
    browser.open(&format!("http://{addr}/agent"));
    browser.type_into("#agent-id", "a1");
    browser.type_into("#token", AGENT);
    browser.click("#signin-button");
    browser.wait_text("#state", "the desktop open", |t| t == "on call");
    browser.wait_text("#supervisor-note", "the agent told", |t| {
        t == "your supervisor is coaching you (the customer does not hear)"
    });
    switch_to(&dashboard);

    browser.click("#listen-stop");
    wait_until("listening ended", || {
        let (_, body) = http(addr, "GET", "/api/listen-ins", Some(SUPERVISOR), None);
        body == "[]"
    });
    browser.wait_text("tr[data-agent=a1] .agent-phone", "unmarked", |t| {
        t == "connected"
    });
    assert_eq!(browser.script("return listening.pc;"), Value::Null);
    switch_to(&desktop["handle"]);
    browser.wait_text("#supervisor-note", "the note gone", |t| t.is_empty());
    drop(browser);
    drop(softphone);
    drop(carrier);
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}

/// `outdial run` on `text` (written to `config_path`) with one live
/// customer, Dee, on the `web` campaign's list, and that campaign started.
fn run_web_campaign_for_dee(config_path: &Path, text: &str, dir: &Path) -> (Running, SocketAddr) {
    std::fs::write(config_path, text).unwrap();
    support::import_list(
        config_path,
        "web",
        "id,name,phone\nr1,Dee Live,+12025550141\n",
        dir,
    );
    let mut running = Running::start(config_path);
    let addr = running.wait_until_listening();
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/web/start",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
    (running, addr)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
