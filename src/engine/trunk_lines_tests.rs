//! Two campaigns on one node share its trunk: lines divided fairly, one
//! calls-per-second window for all their calls and the preview agents'.

use std::path::Path;
use std::time::{Duration, Instant};

use super::attempt::Failure;
use super::campaign_run::RunCommand;
use super::dialer::{Command, Dialer};
use super::io::{CallId, Effect, Input};
use crate::config::Config;
use crate::store::Lease;

/// Campaigns "alpha" and "zulu", progressive at 3 lines per agent, with
/// three simulated agents each; the trunk's limits are filled in.
fn config(max_lines: u32, cps: f64) -> Config {
    let mut text = super::test_node_toml(max_lines, cps);
    for campaign in ["alpha", "zulu"] {
        text.push_str(&format!(
            "[[campaign]]\nname = \"{campaign}\"\nmode = \"progressive\"\nlines_per_agent = 3.0\n"
        ));
    }
    for campaign in ["alpha", "zulu"] {
        for n in 1..=3 {
            text.push_str(&format!(
                "[[agent]]\nid = \"{campaign}{n}\"\nname = \"{campaign} {n}\"\ncampaigns = [\"{campaign}\"]\n\
                 simulated = {{ wrap_up_s = 3, disposition = \"SALE\" }}\n"
            ));
        }
    }
    Config::parse(&text, Path::new("outdial.toml")).unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn lease(campaign: i64, id: i64) -> Lease {
    Lease {
        record_id: campaign * 1000 + id,
        campaign,
        external_id: id.to_string(),
        name: String::new(),
        custom_json: "{}".into(),
        time_zones: "America/New_York".into(),
        priority: 0,
        phone: format!("+1202555{id:04}"),
        attempts: 0,
        callback: None,
        callback_agent: None,
        node: "test".into(),
        lease_until: jiff::Timestamp::UNIX_EPOCH,
        agent_required: false,
    }
}

/// The calls each campaign started among `effects`, in order.
fn dials(effects: &[Effect]) -> Vec<(String, CallId)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Dial { call, campaign, .. } => Some((campaign.clone(), *call)),
            _ => None,
        })
        .collect()
}

fn count(dials: &[(String, CallId)], campaign: &str) -> usize {
    dials.iter().filter(|(c, _)| c == campaign).count()
}

struct Node {
    dialer: Dialer,
    /// Every call started so far, by campaign.
    started: Vec<(String, CallId)>,
}

impl Node {
    /// All six agents' phones up (Ready), no campaign running.
    fn new(max_lines: u32, cps: f64, t0: Instant) -> Self {
        let mut dialer = Dialer::new(&config(max_lines, cps), t0);
        for campaign in ["alpha", "zulu"] {
            for n in 1..=3 {
                dialer.handle_input(
                    Input::AgentLeg {
                        agent: format!("{campaign}{n}"),
                        up: true,
                    },
                    t0,
                );
            }
        }
        let mut node = Node {
            dialer,
            started: Vec::new(),
        };
        node.drain();
        node
    }

    /// The effects since the last drain; the calls among them noted.
    fn drain(&mut self) -> Vec<Effect> {
        let effects: Vec<Effect> = std::iter::from_fn(|| self.dialer.poll_effect()).collect();
        self.started.extend(dials(&effects));
        effects
    }

    fn start(&mut self, campaign: &str, now: Instant) {
        self.dialer
            .handle_command(
                Command::Campaign {
                    name: campaign.into(),
                    command: RunCommand::Start,
                },
                now,
            )
            .unwrap();
    }

    fn lease(&mut self, campaign: &str, records: i64, now: Instant) {
        let id = if campaign == "alpha" { 1 } else { 2 };
        self.dialer.handle_input(
            Input::Leased {
                campaign: campaign.into(),
                leases: (1..=records).map(|n| lease(id, n)).collect(),
                for_agent: None,
            },
            now,
        );
    }

    /// Drives the node by its own timers until `end`: the calls started,
    /// with when.
    fn run_until(&mut self, from: Instant, end: Instant) -> Vec<(Instant, String)> {
        let mut starts = Vec::new();
        let mut now = from;
        while let Some(at) = self.dialer.poll_timeout().filter(|at| *at <= end) {
            now = now.max(at);
            self.dialer.handle_timeout(now);
            starts.extend(dials(&self.drain()).into_iter().map(|(c, _)| (now, c)));
        }
        starts
    }

    /// The oldest call still in flight of `campaign` ends busy.
    fn end_oldest(&mut self, campaign: &str, now: Instant) {
        self.end_oldest_with(campaign, Failure::Busy, Some(486), None, now);
    }

    /// The oldest call still in flight of `campaign` fails so.
    fn end_oldest_with(
        &mut self,
        campaign: &str,
        failure: Failure,
        sip_code: Option<u16>,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let (index, call) = self
            .started
            .iter()
            .enumerate()
            .find(|(_, (c, _))| c == campaign)
            .map(|(i, (_, call))| (i, *call))
            .unwrap();
        self.started.remove(index);
        self.dialer.handle_input(
            Input::Failed {
                call,
                failure,
                sip_code,
                retry_after,
            },
            now,
        );
    }
}

#[test]
fn two_campaigns_starting_together_get_half_the_lines_each() {
    // Each wants 9 lines (3 agents × 3); the trunk has 6. Before, the
    // campaign first by name took all six.
    let t0 = Instant::now();
    let mut node = Node::new(6, 100.0, t0);
    node.start("alpha", t0);
    node.start("zulu", t0);
    node.drain();
    node.lease("alpha", 20, t0 + ms(5));
    node.drain();
    node.lease("zulu", 20, t0 + ms(8));
    node.drain();
    assert_eq!(count(&node.started, "alpha"), 3, "{:?}", node.started);
    assert_eq!(count(&node.started, "zulu"), 3, "{:?}", node.started);
}

#[test]
fn a_campaign_started_first_gives_lines_back_as_its_calls_end() {
    let t0 = Instant::now();
    let mut node = Node::new(6, 100.0, t0);
    node.start("alpha", t0);
    node.drain();
    node.lease("alpha", 20, t0 + ms(5));
    node.drain();
    // Alone, alpha uses every line.
    assert_eq!(count(&node.started, "alpha"), 6);
    node.start("zulu", t0 + ms(100));
    node.drain();
    node.lease("zulu", 20, t0 + ms(105));
    node.drain();
    assert_eq!(count(&node.started, "zulu"), 0, "no line free");
    // Each of alpha's calls that ends frees a line for zulu until they
    // hold three each; from then on each line goes back to whose call
    // ended.
    let mut now = t0 + ms(200);
    for expected_zulu in 1..=3 {
        node.end_oldest("alpha", now);
        node.drain();
        assert_eq!(count(&node.started, "zulu"), expected_zulu);
        assert_eq!(count(&node.started, "alpha"), 6 - expected_zulu);
        now += ms(100);
    }
    node.end_oldest("alpha", now);
    node.drain();
    assert_eq!(count(&node.started, "alpha"), 3);
    assert_eq!(count(&node.started, "zulu"), 3);
    node.end_oldest("zulu", now + ms(100));
    node.drain();
    assert_eq!(count(&node.started, "alpha"), 3);
    assert_eq!(count(&node.started, "zulu"), 3);
}

#[test]
fn the_calls_per_second_hold_across_campaigns() {
    // Each campaign's pacer allows itself the trunk's 2 calls a second; the
    // node starts 2 a second in all, one each.
    let t0 = Instant::now();
    let mut node = Node::new(30, 2.0, t0);
    node.start("alpha", t0);
    node.start("zulu", t0);
    node.drain();
    let mut starts: Vec<(Instant, String)> = Vec::new();
    for (campaign, at) in [("alpha", t0 + ms(5)), ("zulu", t0 + ms(8))] {
        node.lease(campaign, 20, at);
        starts.extend(dials(&node.drain()).into_iter().map(|(c, _)| (at, c)));
    }
    assert!(starts.len() <= 2, "{starts:?}");
    // Driven by its timers for 5 s: never more than 2 starts in a second,
    // 10 in all, both campaigns served.
    starts.extend(node.run_until(t0 + ms(8), t0 + ms(5_000)));
    for (i, (at, _)) in starts.iter().enumerate() {
        let in_window = starts[i..]
            .iter()
            .filter(|(t, _)| t.saturating_duration_since(*at) < ms(1000))
            .count();
        assert!(in_window <= 2, "{starts:?}");
    }
    let alpha = starts.iter().filter(|(_, c)| c == "alpha").count();
    let zulu = starts.iter().filter(|(_, c)| c == "zulu").count();
    assert!((9..=10).contains(&(alpha + zulu)), "{starts:?}");
    assert!(alpha.abs_diff(zulu) <= 1, "alpha {alpha}, zulu {zulu}");
}

/// The reason agents see for `campaign`'s calls held back.
fn held_back(node: &Node, campaign: &str) -> Option<&'static str> {
    node.dialer
        .campaign_views()
        .into_iter()
        .find(|c| c.name == campaign)
        .and_then(|c| c.held_back)
}

/// Alpha running alone with its six lines in use.
fn alpha_on_every_line(t0: Instant) -> Node {
    let mut node = Node::new(6, 100.0, t0);
    node.start("alpha", t0);
    node.drain();
    node.lease("alpha", 40, t0 + ms(5));
    node.drain();
    assert_eq!(count(&node.started, "alpha"), 6);
    node
}

#[test]
fn a_503_with_retry_after_holds_new_calls_until_then() {
    let t0 = Instant::now();
    let mut node = alpha_on_every_line(t0);
    node.end_oldest_with(
        "alpha",
        Failure::Congestion,
        Some(503),
        Some(Duration::from_secs(10)),
        t0 + ms(1000),
    );
    // The line it freed stays free: the carrier asked for 10 s.
    assert!(dials(&node.drain()).is_empty());
    assert_eq!(
        held_back(&node, "alpha"),
        Some("trunk congested: the carrier asked for a pause (503 Retry-After)")
    );
    let starts = node.run_until(t0 + ms(1000), t0 + ms(11_500));
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0].0, t0 + ms(11_000), "at the end of the pause");
    assert_eq!(
        held_back(&node, "alpha"),
        Some("max concurrent calls reached: waiting for a free line"),
        "its agents want more lines than the trunk has"
    );
}

#[test]
fn calls_failing_in_a_row_back_off_and_one_call_probes_the_trunk() {
    let t0 = Instant::now();
    let mut node = alpha_on_every_line(t0);
    // Five calls time out with no response (Timer B): the trunk is gone.
    // The first four lines are taken again at once; the fifth is not.
    for i in 0..5 {
        node.end_oldest_with(
            "alpha",
            Failure::NetworkFailure,
            None,
            None,
            t0 + ms(32_000 + i),
        );
    }
    node.drain();
    let redialed = count(&node.started, "alpha");
    assert_eq!(redialed, 5, "four redialed, one line left free");
    assert_eq!(
        held_back(&node, "alpha"),
        Some("trunk failing: calls get no answer or 503, dialing backs off")
    );
    // After the 2 s wait a single call probes the trunk.
    let opened = t0 + ms(32_004);
    let starts = node.run_until(opened, opened + ms(10_000));
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0].0, opened + ms(2000));
    // It rings: the trunk is back, the free line is taken at once.
    let probe = node.started.last().unwrap().1;
    node.dialer
        .handle_input(Input::Ringing { call: probe }, opened + ms(10_500));
    node.drain();
    assert_eq!(node.dialer.calls_in_flight(), 6);
    assert_eq!(
        held_back(&node, "alpha"),
        Some("max concurrent calls reached: waiting for a free line")
    );
}

#[test]
fn a_trunk_refusing_every_call_backs_off_instead_of_spending_the_list() {
    let t0 = Instant::now();
    let mut node = alpha_on_every_line(t0);
    // Wrong credentials: every call gets a 403 (or a challenge our
    // credentials cannot answer). Before, each refusal counted as a
    // response, the line was taken again at once, and the dialer ran
    // through the list at the trunk's calls per second.
    for (i, code) in [403u16, 407, 403, 401, 403].into_iter().enumerate() {
        node.end_oldest_with(
            "alpha",
            Failure::Rejected,
            Some(code),
            None,
            t0 + ms(1000 + i as u64),
        );
    }
    node.drain();
    assert_eq!(count(&node.started, "alpha"), 5, "the fifth line left free");
    assert_eq!(
        held_back(&node, "alpha"),
        Some(
            "trunk refuses our calls (403, 401/407, 488): check its credentials, account and codecs; dialing backs off"
        )
    );
    let opened = t0 + ms(1004);
    let starts = node.run_until(opened, opened + ms(10_000));
    assert_eq!(starts.len(), 1, "one probe: {starts:?}");
    // The probe is refused too: the wait doubles.
    let (_, probe) = node.started.pop().unwrap();
    node.dialer.handle_input(
        Input::Failed {
            call: probe,
            failure: Failure::Rejected,
            sip_code: Some(403),
            retry_after: None,
        },
        opened + ms(2100),
    );
    let starts = node.run_until(opened + ms(2100), opened + ms(6000));
    assert!(starts.is_empty(), "{starts:?}");
    let starts = node.run_until(opened + ms(6000), opened + ms(6200));
    assert_eq!(starts.len(), 1, "the next probe 4 s later: {starts:?}");
}

/// Alpha on every line, then five of its calls fail so in a row.
fn five_in_a_row(failure: Failure, sip_code: u16) -> Node {
    let t0 = Instant::now();
    let mut node = alpha_on_every_line(t0);
    for i in 0..5 {
        node.end_oldest_with("alpha", failure, Some(sip_code), None, t0 + ms(1000 + i));
    }
    node.drain();
    node
}

#[test]
fn a_trunk_refusing_our_media_offer_backs_off_too() {
    // A trunk that takes only G.729 answers every PCMU/PCMA offer 488.
    let node = five_in_a_row(Failure::NetworkFailure, 488);
    assert_eq!(count(&node.started, "alpha"), 5, "the fifth line left free");
    assert!(held_back(&node, "alpha").is_some_and(|r| r.contains("488")));
}

#[test]
fn a_callee_declining_is_not_the_trunk_refusing() {
    // 603 Decline is the person's: their lines are taken again at once.
    let node = five_in_a_row(Failure::Rejected, 603);
    assert_eq!(count(&node.started, "alpha"), 6);
    assert_eq!(node.dialer.calls_in_flight(), 6);
}

#[test]
fn a_trunk_that_stops_answering_options_gets_no_new_calls() {
    let t0 = Instant::now();
    let mut node = alpha_on_every_line(t0);
    node.dialer
        .handle_input(Input::TrunkPing { answered: true }, t0 + ms(100));
    node.dialer
        .handle_input(Input::TrunkPing { answered: false }, t0 + ms(200));
    // A line frees without a word from the trunk (the call could not be
    // placed here): it stays free.
    let call = node.started.remove(0).1;
    node.dialer.handle_input(
        Input::NotPlaced {
            call,
            reason: "no RTP port".into(),
        },
        t0 + ms(300),
    );
    assert!(dials(&node.drain()).is_empty());
    assert_eq!(
        held_back(&node, "alpha"),
        Some("trunk down: no answer to OPTIONS")
    );
    assert!(node.run_until(t0 + ms(300), t0 + ms(10_000)).is_empty());
    node.dialer
        .handle_input(Input::TrunkPing { answered: true }, t0 + ms(10_000));
    assert_eq!(dials(&node.drain()).len(), 1);
}
