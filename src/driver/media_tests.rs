//! The customer and agent phone tasks against real loopback RTP: a
//! customer is never lost to an agent's phone that goes away around the
//! splice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{AgentCommand, CustomerCommand, CustomerMedia, agent_phone};
use crate::cpa::CpaSettings;
use crate::engine::io::{ConnectFailure, Input};
use crate::media::leg::LegSettings;
use crate::media::rtp::{RtpPacket, write_header};
use crate::media::tones::ZipTone;
use crate::net::rtp::{PortPool, RtpLeg};
use crate::sdp::{Direction, Negotiated, SessionDescription};

const CALL: u64 = 7;
/// What the customer says: one µ-law byte repeated (relayed untouched
/// between two PCMU legs, so the agent's phone can recognise it).
const CUSTOMER_BYTE: u8 = 0x23;

fn leg(pool: &Arc<PortPool>, ssrc: u32, remote: SocketAddr) -> RtpLeg {
    let settings = LegSettings {
        ssrc,
        inactivity_timeout: Duration::from_secs(30),
        keepalive: false,
        cname: "test".into(),
    };
    let leg = RtpLeg::open(pool, settings).unwrap();
    leg.set_negotiated(Negotiated {
        remote: Some(remote),
        law: crate::media::g711::Law::Ulaw,
        payload_type: 0,
        telephone_event: Some(101),
        ptime_ms: 20,
        direction: Direction::SendRecv,
    })
    .unwrap();
    leg
}

/// An agent's phone: its leg's far end, and the task serving the leg.
struct AgentPhone {
    socket: UdpSocket,
    commands: mpsc::UnboundedSender<AgentCommand>,
}

async fn agent(pool: &Arc<PortPool>, name: &str, ssrc: u32) -> AgentPhone {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let leg = leg(pool, ssrc, socket.local_addr().unwrap());
    let (commands, rx) = mpsc::unbounded_channel();
    tokio::spawn(agent_phone(
        name.into(),
        leg,
        None,
        ZipTone {
            duration_ms: 60,
            ..ZipTone::default()
        },
        rx,
    ));
    AgentPhone { socket, commands }
}

impl AgentPhone {
    fn connect(&self, name: &str) -> CustomerCommand {
        CustomerCommand::Connect {
            agent: name.into(),
            phone: self.commands.clone(),
            record: None,
        }
    }

    /// Whether the customer's voice reaches this phone (within 5 s: a
    /// bound for a loaded machine; it comes in ~20 ms).
    async fn hears_the_customer(&self) -> bool {
        self.hears_the_customer_within(Duration::from_secs(5)).await
    }

    async fn hears_the_customer_within(&self, wait: Duration) -> bool {
        let mut buf = [0u8; 1500];
        let until = tokio::time::Instant::now() + wait;
        while let Ok(Ok(len)) = tokio::time::timeout_at(until, self.socket.recv(&mut buf)).await {
            if let Ok(packet) = RtpPacket::parse(&buf[..len])
                && packet.payload.iter().all(|&b| b == CUSTOMER_BYTE)
            {
                return true;
            }
        }
        false
    }
}

/// The customer's call: its media task, its phone talking into it, and
/// that phone's socket (to hear what the customer hears).
async fn customer(
    pool: &Arc<PortPool>,
) -> (
    mpsc::UnboundedSender<CustomerCommand>,
    mpsc::UnboundedReceiver<Input>,
    tokio::task::JoinHandle<()>,
    Arc<UdpSocket>,
) {
    let phone = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let leg = leg(pool, 0xC0, phone.local_addr().unwrap());
    let to = leg.local_addr();
    let talker = phone.clone();
    let talking = tokio::spawn(async move {
        let mut packet = [CUSTOMER_BYTE; 172];
        for n in 0u32.. {
            write_header(&mut packet, n == 0, 0, n as u16, n * 160, 0xC0C0);
            let _ = talker.send_to(&packet, to).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let offer = SessionDescription::parse(
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
          m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    )
    .unwrap();
    let (inputs, reports) = mpsc::unbounded_channel();
    let (commands, rx) = mpsc::unbounded_channel();
    let task = CustomerMedia {
        call: CALL,
        leg,
        offer,
        cpa: CpaSettings::default(),
        inputs,
    };
    tokio::spawn(task.run(rx));
    (commands, reports, talking, phone)
}

/// The report of a splice into `agent`'s phone that held.
fn spliced(agent: &str) -> Input {
    Input::Spliced {
        call: CALL,
        agent: agent.into(),
    }
}

/// The next splice report (verdicts and the like skipped).
async fn splice_report(reports: &mut mpsc::UnboundedReceiver<Input>) -> Input {
    loop {
        let input = tokio::time::timeout(Duration::from_secs(10), reports.recv())
            .await
            .expect("a splice report within 10 s")
            .expect("the customer task is running");
        if matches!(input, Input::Spliced { .. } | Input::ConnectFailed { .. }) {
            return input;
        }
    }
}

#[tokio::test]
async fn a_customer_spliced_into_a_phone_that_goes_away_reaches_the_next_agent() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47600, 47640);
    let (ann, bob) = (
        agent(&pool, "ann", 0xA1).await,
        agent(&pool, "bob", 0xB1).await,
    );
    let (customer, mut reports, talking, _) = customer(&pool).await;
    customer.send(ann.connect("ann")).unwrap();
    assert_eq!(splice_report(&mut reports).await, spliced("ann"));
    assert!(ann.hears_the_customer().await);
    // Ann's phone goes away (her reservation call dropped) before the
    // dialer heard of the splice; it gives the customer to Bob.
    ann.commands.send(AgentCommand::Close).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    customer.send(bob.connect("bob")).unwrap();
    assert_eq!(splice_report(&mut reports).await, spliced("bob"));
    assert!(bob.hears_the_customer().await, "the customer reaches Bob");
    customer.send(CustomerCommand::Close).unwrap();
    talking.abort();
}

#[tokio::test]
async fn a_splice_into_a_phone_already_gone_keeps_the_customer_for_the_next_agent() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47650, 47690);
    let (ann, bob) = (
        agent(&pool, "ann", 0xA2).await,
        agent(&pool, "bob", 0xB2).await,
    );
    let (customer, mut reports, talking, _) = customer(&pool).await;
    ann.commands.send(AgentCommand::Close).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    customer.send(ann.connect("ann")).unwrap();
    assert_eq!(
        splice_report(&mut reports).await,
        Input::ConnectFailed {
            call: CALL,
            agent: "ann".into(),
            cause: ConnectFailure::AgentPhoneGone
        }
    );
    customer.send(bob.connect("bob")).unwrap();
    assert_eq!(splice_report(&mut reports).await, spliced("bob"));
    assert!(bob.hears_the_customer().await, "the customer reaches Bob");
    customer.send(CustomerCommand::Close).unwrap();
    talking.abort();
}

#[tokio::test]
async fn a_prompt_for_a_spliced_customer_takes_it_back_from_the_agent_first() {
    // The agent drops a voicemail: the customer leaves the agent's leg and
    // hears the prompt, and the prompt's end is reported when it ends.
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47700, 47740);
    let ann = agent(&pool, "ann", 0xA3).await;
    let (customer, mut reports, talking, phone) = customer(&pool).await;
    customer.send(ann.connect("ann")).unwrap();
    assert_eq!(splice_report(&mut reports).await, spliced("ann"));
    assert!(ann.hears_the_customer().await);
    // A 600 ms message of a steady 0x55 µ-law byte's worth of samples.
    let samples = vec![crate::media::g711::ulaw_decode(0x55); 4800];
    let started = tokio::time::Instant::now();
    customer
        .send(CustomerCommand::Play(
            crate::media::prompt::Prompt::from_samples(samples),
        ))
        .unwrap();
    // The customer's phone hears the message.
    let mut buf = [0u8; 1500];
    let mut heard = 0;
    let until = started + Duration::from_secs(5);
    while heard < 10 {
        let Ok(Ok(len)) = tokio::time::timeout_at(until, phone.recv(&mut buf)).await else {
            break;
        };
        if let Ok(packet) = RtpPacket::parse(&buf[..len])
            && packet.payload.iter().all(|&b| b == 0x55)
        {
            heard += 1;
        }
    }
    assert!(
        heard >= 10,
        "the message reached the customer ({heard} packets)"
    );
    // Its end is reported as it ends, not at once.
    let done = loop {
        let input = tokio::time::timeout(Duration::from_secs(5), reports.recv())
            .await
            .expect("the prompt's end within 5 s")
            .expect("the customer task is running");
        if input == (Input::PromptDone { call: CALL }) {
            break tokio::time::Instant::now();
        }
    };
    assert!(
        done - started >= Duration::from_millis(500),
        "{:?}",
        done - started
    );
    // Ann no longer hears the customer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut drained = [0u8; 1500];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(1), ann.socket.recv(&mut drained)).await
    {}
    let mut customer_heard = false;
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Ok(len)) = tokio::time::timeout_at(until, ann.socket.recv(&mut drained)).await {
        customer_heard |= RtpPacket::parse(&drained[..len])
            .is_ok_and(|p| p.payload.iter().all(|&b| b == CUSTOMER_BYTE));
    }
    assert!(!customer_heard, "the agent is out of it");
    customer.send(CustomerCommand::Close).unwrap();
    talking.abort();
}

#[tokio::test]
async fn a_consultation_ended_before_its_lent_leg_came_sends_the_leg_home() {
    // The end reaches the consulting phone (Ann's) straight from the shell,
    // while the consulted phone's leg (Bob's) comes through Bob's phone
    // task: here after the end. The leg goes home, and the customer then
    // reaches Bob through it (were it held in Ann's task, Bob's leg would
    // wait for it, and the splice with it).
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47750, 47790);
    let (ann, bob) = (
        agent(&pool, "ann", 0xA4).await,
        agent(&pool, "bob", 0xB4).await,
    );
    let (customer, mut reports, talking, _) = customer(&pool).await;
    customer.send(ann.connect("ann")).unwrap();
    assert_eq!(splice_report(&mut reports).await, spliced("ann"));
    ann.commands
        .send(AgentCommand::EndConsultation((CALL, 1)))
        .unwrap();
    bob.commands
        .send(AgentCommand::LendTo {
            consultation: (CALL, 1),
            consulting: ann.commands.clone(),
            failed: mpsc::unbounded_channel().0,
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(ann.hears_the_customer().await, "Ann still has the customer");
    assert!(
        !bob.hears_the_customer_within(Duration::from_millis(500))
            .await,
        "Bob's leg is not in Ann's call"
    );
    customer.send(bob.connect("bob")).unwrap();
    assert_eq!(splice_report(&mut reports).await, spliced("bob"));
    assert!(bob.hears_the_customer().await, "the customer reaches Bob");
    customer.send(CustomerCommand::Close).unwrap();
    talking.abort();
}

#[tokio::test]
async fn a_leg_that_cannot_be_lent_is_reported() {
    // Bob's leg has a customer in it (a report the engine has not seen):
    // it is not lent, and the engine is told the consultation failed.
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47800, 47840);
    let (ann, bob) = (
        agent(&pool, "ann", 0xA5).await,
        agent(&pool, "bob", 0xB5).await,
    );
    let (customer, mut reports, talking, _) = customer(&pool).await;
    customer.send(bob.connect("bob")).unwrap();
    assert_eq!(splice_report(&mut reports).await, spliced("bob"));
    let (failed, mut failures) = mpsc::unbounded_channel();
    bob.commands
        .send(AgentCommand::LendTo {
            consultation: (99, 2),
            consulting: ann.commands.clone(),
            failed,
        })
        .unwrap();
    let failure = tokio::time::timeout(Duration::from_secs(5), failures.recv())
        .await
        .expect("told within 5 s");
    assert_eq!(
        failure,
        Some(Input::ConsultationFailed {
            call: 99,
            number: 2
        })
    );
    assert!(bob.hears_the_customer().await, "Bob keeps his customer");
    customer.send(CustomerCommand::Close).unwrap();
    talking.abort();
}

#[tokio::test]
async fn a_prompt_the_customer_hears_alone_ends_when_it_is_spliced() {
    // An outside transfer whose agent's phone went: the customer waits
    // with the hold audio on its own leg, then is spliced into the
    // outside line (here a phone that says nothing) — the audio stops
    // (the bridge takes over what the customer's leg sends).
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47760, 47800);
    let line = agent(&pool, "outside +15557770001", 0xA4).await;
    let (customer, mut reports, talking, phone) = customer(&pool).await;
    // 5 s of a steady 0x55 µ-law byte's worth of samples.
    let samples = vec![crate::media::g711::ulaw_decode(0x55); 40_000];
    customer
        .send(CustomerCommand::Play(
            crate::media::prompt::Prompt::from_samples(samples),
        ))
        .unwrap();
    let hears_the_prompt = |wait: Duration| {
        let phone = phone.clone();
        async move {
            let mut buf = [0u8; 1500];
            let until = tokio::time::Instant::now() + wait;
            while let Ok(Ok(len)) = tokio::time::timeout_at(until, phone.recv(&mut buf)).await {
                if RtpPacket::parse(&buf[..len]).is_ok_and(|p| p.payload.iter().all(|&b| b == 0x55))
                {
                    return true;
                }
            }
            false
        }
    };
    assert!(hears_the_prompt(Duration::from_secs(5)).await);
    customer.send(line.connect("outside +15557770001")).unwrap();
    assert_eq!(
        splice_report(&mut reports).await,
        spliced("outside +15557770001")
    );
    assert!(line.hears_the_customer().await);
    // What was on its way is drained; then no more of the prompt.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut drained = [0u8; 1500];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(1), phone.recv(&mut drained)).await
    {}
    assert!(
        !hears_the_prompt(Duration::from_millis(600)).await,
        "the hold audio goes on after the splice"
    );
    customer.send(CustomerCommand::Close).unwrap();
    talking.abort();
}
