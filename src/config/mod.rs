//! The one TOML configuration file: its types, loading, and validation.
//!
//! Loading is strict: unknown keys are errors, and [`Config::load`] returns
//! every problem it finds (syntax, types, then semantic checks), each with the
//! file, line, column and key. Secrets may come from the environment so they
//! stay out of the file (see [`Secrets`]).

mod compliance;
pub mod definition;
mod diagnostics;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

pub use compliance::campaign_warnings;
pub use diagnostics::{ConfigError, Problem, SpanIndex};
pub use validate::campaign_problems;

/// Path used by every subcommand when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/outdial.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    #[serde(default)]
    pub media: crate::media::config::MediaConfig,
    pub trunk: TrunkConfig,
    pub api: ApiConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default, rename = "campaign")]
    pub campaigns: Vec<CampaignConfig>,
    #[serde(default, rename = "agent")]
    pub agents: Vec<AgentConfig>,
    #[serde(default)]
    pub agent_states: AgentStatesConfig,
}

/// `[agent_states]`: what agents may say when they go Not ready.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentStatesConfig {
    /// The reason codes agents pick from (SPEC §8 "Not ready (with reason
    /// code)"); any other is refused. Empty: free text.
    #[serde(default)]
    pub not_ready_reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Local address the SIP UDP socket and TCP listener bind to.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// Address written into Via/Contact when it differs from `listen` (NAT).
    #[serde(default, deserialize_with = "optional_socket_addr")]
    pub public_addr: Option<SocketAddr>,
    #[serde(default = "default_transports")]
    pub transports: Vec<Transport>,
    /// RFC 3261 timers: T1 (RTT estimate), T2 (max non-INVITE retransmit
    /// interval), T4 (max time a message stays in the network).
    #[serde(default = "default_t1")]
    pub t1_ms: u64,
    #[serde(default = "default_t2")]
    pub t2_ms: u64,
    #[serde(default = "default_t4")]
    pub t4_ms: u64,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// DNS servers (`IP` or `IP:PORT`) for SRV and address lookups of SIP
    /// hosts (RFC 3263); empty: the system's (`/etc/resolv.conf`).
    #[serde(default, deserialize_with = "dns_servers")]
    pub dns_servers: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    /// Local IP the RTP sockets bind to.
    pub bind: IpAddr,
    /// IP announced in SDP when it differs from `bind` (NAT).
    #[serde(default)]
    pub public_ip: Option<IpAddr>,
    pub port_min: u16,
    pub port_max: u16,
}

impl RtpConfig {
    /// Media legs the port range can hold: RTP takes an even port, RTCP the
    /// odd one above it.
    pub fn leg_capacity(&self) -> usize {
        if self.port_max <= self.port_min {
            return 0;
        }
        (usize::from(self.port_max) - usize::from(self.port_min)).div_ceil(2)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Where customer calls go, e.g. `sip:carrier.example.net:5060`.
    pub uri: String,
    #[serde(default = "default_trunk_transport")]
    pub transport: Transport,
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Prefer the `OUTDIAL_TRUNK_PASSWORD` environment variable.
    #[serde(default)]
    pub password: Option<String>,
    /// Default caller ID (E.164) sent in From and P-Asserted-Identity.
    pub caller_id: String,
    #[serde(default)]
    pub caller_name: Option<String>,
    pub max_concurrent_calls: u32,
    pub max_calls_per_second: f64,
    /// Several nodes sharing the store dial through this one trunk: the
    /// limits above are the trunk's, divided among the live nodes through
    /// the store (`pacing::trunk_share`). Off: they are this node's own.
    #[serde(default)]
    pub shared_by_nodes: bool,
    /// OPTIONS keepalive interval; 0 disables it.
    #[serde(default = "default_options_interval")]
    pub options_interval_s: u64,
    /// Register with the trunk (as `username`, digest with `password`):
    /// for carriers that take calls only from a registered user agent.
    #[serde(default)]
    pub register: bool,
    /// The registration's lifetime asked for (the carrier may grant less;
    /// renewed before it lapses).
    #[serde(default = "default_register_expires")]
    pub register_expires_s: u64,
    /// The session timer asked for in every customer call's INVITE (RFC
    /// 4028): a far end that supports timers then refreshes, or is
    /// refreshed, at half of it, and a call lost on the way (an SBC that
    /// dropped it while relaying comfort noise) ends. 0: not asked.
    #[serde(default = "default_session_expires")]
    pub session_expires_s: u64,
    /// Follow a 300–302 to a call's INVITE to the `Contact`s it names
    /// (least-cost-routing and number-portability servers answer so); off:
    /// a redirect ends the call as a failure.
    #[serde(default = "yes")]
    pub follow_redirects: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    #[serde(default, rename = "token")]
    pub tokens: Vec<ApiToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Supervisor,
    Agent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// The bearer token itself; prefer `token_env`.
    #[serde(default)]
    pub token: Option<String>,
    /// Name of an environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    pub role: Role,
    /// For `role = "agent"`: the agent id this token may act as.
    #[serde(default)]
    pub agent: Option<String>,
    /// The token in force: `token`, or the value of `token_env`.
    #[serde(skip)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://outdial.db` (embedded) or `postgres://user@host/db`.
    pub url: String,
    /// This dialer node's name in the store (leases, attempts). Several
    /// nodes sharing one database need distinct names; a restarted node
    /// keeps its name so it can resolve the calls it had in flight.
    /// Default: `outdial@` + the host name.
    #[serde(default)]
    pub node: Option<String>,
    /// Where a finished call's row waits until the store has it (see
    /// `store::spool`). Default: beside the SQLite file (`FILE.spool`), or
    /// `outdial-NODE-HASH.spool` in the working directory for PostgreSQL.
    #[serde(default)]
    pub spool: Option<std::path::PathBuf>,
}

impl StoreConfig {
    /// The row spool's path, configured or the default.
    pub fn spool_path(&self) -> std::path::PathBuf {
        self.spool
            .clone()
            .unwrap_or_else(|| crate::store::spool::default_path(&self.url, &self.node_name()))
    }

    /// The configured node name, or `outdial@HOSTNAME`.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            if host.is_empty() {
                "outdial".to_string()
            } else {
                format!("outdial@{host}")
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `outdial=debug,info`; `RUST_LOG` wins.
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DialMode {
    Preview,
    PushPreview,
    Progressive,
    Predictive,
}

impl DialMode {
    /// The preview modes: an agent sees each record and places its call.
    pub fn is_preview(self) -> bool {
        matches!(self, DialMode::Preview | DialMode::PushPreview)
    }
}

impl std::fmt::Display for DialMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DialMode::Preview => "preview",
            DialMode::PushPreview => "push_preview",
            DialMode::Progressive => "progressive",
            DialMode::Predictive => "predictive",
        })
    }
}

/// What to do when call-progress analysis hears an answering machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineAction {
    Hangup,
    /// Wait for the beep, play `voicemail_prompt`, hang up.
    LeaveMessage,
    /// Connect an agent, who may leave a voicemail by hand.
    ConnectAgent,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    pub name: String,
    pub mode: DialMode,
    /// Pacing set-point for abandoned ÷ live-answered calls (default 3 %).
    #[serde(default = "default_abandon_target")]
    pub abandon_target: f64,
    /// Progressive: lines dialed per ready agent.
    #[serde(default = "default_lines_per_agent")]
    pub lines_per_agent: f64,
    /// Progressive: each call is dialed for one Ready agent, reserved from
    /// the dial on (SPEC §2's non-ASM variant: the record pops first, the
    /// desktop shows "connecting…" until the answer). No live answer can
    /// be abandoned; the agent waits through the rings. Unset: agents are
    /// taken at the live answer (the ASM variant, the default).
    #[serde(default)]
    pub agent_reserved_at_dial: bool,
    /// This campaign's weight when running campaigns that dial by
    /// themselves share agents: shared agents are divided in proportion to
    /// the weights (counting each campaign's own agents too). Default 1.
    #[serde(default = "default_agent_share_weight")]
    pub agent_share_weight: f64,
    /// Overrides the trunk's caller ID.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Ring at least 15 s (FTC TSR / Ofcom) before giving up.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_s: u64,
    /// Calling window in the contact's local time, `HH:MM-HH:MM`.
    #[serde(default = "default_call_hours")]
    pub call_hours: String,
    #[serde(default = "default_call_days")]
    pub call_days: Vec<String>,
    /// Region for numbers imported without a country code (ISO 3166 alpha-2).
    #[serde(default = "default_region")]
    pub default_region: String,
    #[serde(default = "default_machine_action")]
    pub machine_action: MachineAction,
    /// WAV played to a live person no agent could take within 2 s.
    #[serde(default)]
    pub abandon_prompt: Option<PathBuf>,
    /// WAV left on answering machines when `machine_action = "leave_message"`.
    #[serde(default)]
    pub voicemail_prompt: Option<PathBuf>,
    /// WAV a customer on hold hears, over and over; unset: a soft chime
    /// every 4 s (silence on hold sounds like a dropped call).
    #[serde(default)]
    pub hold_music: Option<PathBuf>,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Dials per phone number of a record (chained numbers) before that
    /// number is skipped.
    #[serde(default = "default_max_attempts_per_number")]
    pub max_attempts_per_number: u32,
    /// Dials per record in one day of the contact's local time; unset: no
    /// daily limit (callbacks are exempt, as from the other limits).
    #[serde(default)]
    pub max_attempts_per_day: Option<u32>,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Call-progress analysis settings (`[campaign.cpa]`).
    #[serde(default)]
    pub cpa: crate::cpa::CpaSettings,
    /// Expected fraction of live persons CPA takes for machines; the pacer
    /// budgets them so the UK rate (which counts them) stays under the cap.
    #[serde(default)]
    pub amd_fp_estimate: f64,
    /// Preview modes: how long a record may stay on an agent's screen
    /// before `preview_timeout_action` (push preview: 30 s when unset;
    /// preview: no limit when unset).
    #[serde(default)]
    pub preview_timeout_s: Option<u64>,
    #[serde(default)]
    pub preview_timeout_action: PreviewTimeoutAction,
    /// Preview modes: `direct` (connected at the answer) or `standard`
    /// (call-progress analysis decides at the answer).
    #[serde(default)]
    pub preview_variant: PreviewVariant,
    /// Whether agents may skip a previewed record.
    #[serde(default = "yes")]
    pub preview_allow_skip: bool,
    /// Whether agents may remove a previewed record (never call it).
    #[serde(default = "yes")]
    pub preview_allow_remove: bool,
    /// Agents confirm joining the campaign (SPEC §2, "they confirm joining
    /// (OK)") before it gives them calls or records; unset: assigned agents
    /// take part as soon as they are Ready.
    #[serde(default)]
    pub agents_confirm_join: bool,
    /// The wrap-up timer: wrap-up ends by itself this long after the call
    /// (the attempt is written without a disposition); unset: only the
    /// agent's disposition ends it.
    #[serde(default)]
    pub wrap_up_timeout_s: Option<u64>,
    /// Caller IDs (E.164) an agent may pick for a previewed call, besides
    /// the campaign's own `caller_id`; with `local_presence`, the numbers
    /// the dialer picks from too.
    #[serde(default)]
    pub caller_ids: Vec<String>,
    /// Each call presents the campaign's number nearest the number dialed
    /// (same area code, else same country, else the campaign's own):
    /// `campaign::local_presence`. An agent's pick still wins.
    #[serde(default)]
    pub local_presence: bool,
    /// The call guide (`[[campaign.guide]]`): questions with branching
    /// answers, shown to the agent during the call.
    #[serde(default)]
    pub guide: Vec<crate::campaign::guide::GuideQuestion>,
    /// Record its bridged calls (when `[media] record_dir` is set); false
    /// keeps them unrecorded (two-party consent, sensitive lists).
    #[serde(default = "yes")]
    pub record_calls: bool,
    /// The campaign's own wrap-up codes (`[[campaign.disposition]]`),
    /// offered to its agents after the system ones (SPEC §7).
    #[serde(default, rename = "disposition")]
    pub dispositions: Vec<crate::campaign::model::DispositionConfig>,
    /// Ofcom's repeat-call rule (`[campaign.repeat_calls]`): how long after
    /// an abandoned call, or a machine verdict, the number is dialed only
    /// with an agent reserved for it. Off unless set.
    #[serde(default)]
    pub repeat_calls: crate::campaign::rules::RepeatCalls,
    /// Outside numbers an agent may transfer a customer to
    /// (`[[campaign.outside_transfer]]`: a name the desktop shows, an E.164
    /// number dialed through the trunk). Only these: an agent never dials
    /// a number of its own choosing on the company's trunk.
    #[serde(default, rename = "outside_transfer")]
    pub outside_transfers: Vec<OutsideTransfer>,
    /// Where the campaign was defined (not a key: the file's campaigns are
    /// `file`, those a supervisor created through the API `api`).
    #[serde(skip)]
    pub source: CampaignSource,
}

/// An outside number a campaign's agents may transfer customers to (a
/// partner's line, the billing department on the PBX, a supervisor's
/// mobile).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutsideTransfer {
    /// What the agent picks (unique in the campaign).
    pub name: String,
    /// E.164, dialed through the trunk.
    pub number: String,
}

/// Where a campaign was defined: its settings can be changed through the
/// API only if it was created there (the file is the truth for the rest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignSource {
    #[default]
    File,
    Api,
}

impl CampaignSource {
    pub fn name(self) -> &'static str {
        match self {
            CampaignSource::File => "file",
            CampaignSource::Api => "api",
        }
    }
}

/// Push preview's default time on screen before the automatic action.
pub const DEFAULT_PUSH_PREVIEW_TIMEOUT_S: u64 = 30;

impl CampaignConfig {
    /// The audio files the campaign plays, by key (`run` loads them at
    /// start: one it cannot read stops it).
    pub fn prompt_files(&self) -> [(&'static str, Option<&Path>); 3] {
        [
            ("abandon_prompt", self.abandon_prompt.as_deref()),
            ("voicemail_prompt", self.voicemail_prompt.as_deref()),
            ("hold_music", self.hold_music.as_deref()),
        ]
    }

    /// The outside number an agent may transfer this campaign's customers
    /// to, by its name.
    pub fn outside_transfer(&self, name: &str) -> Option<&OutsideTransfer> {
        self.outside_transfers.iter().find(|t| t.name == name)
    }

    /// Whether an agent may present `caller_id` on this campaign's calls.
    pub fn allows_caller_id(&self, caller_id: &str) -> bool {
        self.caller_ids.iter().any(|c| c == caller_id)
            || self.caller_id.as_deref() == Some(caller_id)
    }

    /// How long a record may be previewed before the automatic action.
    pub fn preview_timeout(&self) -> Option<std::time::Duration> {
        match (self.mode, self.preview_timeout_s) {
            (_, Some(seconds)) => Some(std::time::Duration::from_secs(seconds)),
            (DialMode::PushPreview, None) => Some(std::time::Duration::from_secs(
                DEFAULT_PUSH_PREVIEW_TIMEOUT_S,
            )),
            _ => None,
        }
    }
}

/// How a previewed record's call reaches its agent (SPEC §2, Webex's
/// reservation variants).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewVariant {
    /// The agent hears the progress and is connected the moment the
    /// customer answers; a machine is the agent's to judge.
    #[default]
    Direct,
    /// The agent hears the progress; at the answer call-progress analysis
    /// decides: a person goes to the agent, a machine as `machine_action`
    /// says (the agent is free again at the verdict).
    Standard,
}

/// What happens to a record nobody acted on within the preview timeout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewTimeoutAction {
    /// Back to the top of the list (SPEC: "no action" in push preview).
    #[default]
    Skip,
    /// Dial it as if the agent pressed Call.
    Accept,
    /// Never call it.
    Remove,
}

/// Delay before a record is dialed again, per outcome.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_retry_busy")]
    pub busy_s: u64,
    #[serde(default = "default_retry_no_answer")]
    pub no_answer_s: u64,
    #[serde(default = "default_retry_machine")]
    pub machine_s: u64,
    #[serde(default = "default_retry_congestion")]
    pub congestion_s: u64,
    #[serde(default = "default_retry_congestion")]
    pub network_failure_s: u64,
    /// After a live answer no agent took in time; `no_answer_s` when
    /// unset. (Ofcom: a repeat call within 72 h of an abandoned one needs
    /// a guaranteed agent — `[campaign.repeat_calls]` — or is not made:
    /// 259200.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandoned_s: Option<u64>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            busy_s: default_retry_busy(),
            no_answer_s: default_retry_no_answer(),
            machine_s: default_retry_machine(),
            congestion_s: default_retry_congestion(),
            network_failure_s: default_retry_congestion(),
            abandoned_s: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub id: String,
    pub name: String,
    /// Where the agent's phone is reached when it has no registration.
    #[serde(default)]
    pub sip_uri: Option<String>,
    /// Registration password; prefer `OUTDIAL_AGENT_<ID>_PASSWORD`.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub campaigns: Vec<String>,
    /// LOAD TESTS ONLY: a simulated agent whose desktop actions the dialer
    /// takes itself (see [`SimulatedAgent`]).
    #[serde(default)]
    pub simulated: Option<SimulatedAgent>,
    /// How customers reach the agent's phone (SPEC §3).
    #[serde(default)]
    pub connection: AgentConnection,
    /// The agent's phone is the web desktop (WebRTC) rather than a SIP
    /// softphone. Any agent may connect the desktop as its phone; this
    /// says an agent without `sip_uri` or `password` has one.
    #[serde(default)]
    pub browser_phone: bool,
}

/// How customers reach an agent's phone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentConnection {
    /// One call to the phone at login, kept up; every customer is bridged
    /// into it (sub-second connect).
    #[default]
    Reservation,
    /// The phone is rung for each customer and hung up after the call. Its
    /// ring and answer time eat into the 2-second window: an auto-answering
    /// phone is needed for live answers to reach the agent in time.
    PerCall,
}

impl AgentConfig {
    /// Whether the phone is rung for each customer rather than held on a
    /// reservation call.
    pub fn per_call(&self) -> bool {
        self.connection == AgentConnection::PerCall && self.has_phone()
    }

    /// Whether customers reach this agent through a phone (a reservation
    /// call); a simulated agent without `sip_uri` or `password` has none,
    /// and bridged customers hear silence.
    pub fn has_phone(&self) -> bool {
        self.sip_uri.is_some() || self.password.is_some() || self.browser_phone
    }
}

/// For load tests: the dialer logs the agent in at start, makes it Ready as
/// soon as it can be, and ends each wrap-up after `wrap_up_s` with
/// `disposition`. Never use on a real agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedAgent {
    #[serde(default = "default_simulated_wrap_up")]
    pub wrap_up_s: u64,
    #[serde(default = "default_simulated_disposition")]
    pub disposition: String,
}

fn default_agent_share_weight() -> f64 {
    1.0
}

fn default_simulated_wrap_up() -> u64 {
    5
}
fn default_simulated_disposition() -> String {
    "SALE".into()
}

/// Secrets read from the environment at load time, overriding the file.
#[derive(Debug, Default, Clone)]
pub struct Secrets;

impl Secrets {
    pub const TRUNK_PASSWORD: &'static str = "OUTDIAL_TRUNK_PASSWORD";

    /// `OUTDIAL_AGENT_<ID>_PASSWORD`, the id upper-cased with non-alphanumerics as `_`.
    pub fn agent_password_var(agent_id: &str) -> String {
        let id: String = agent_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("OUTDIAL_AGENT_{id}_PASSWORD")
    }
}

impl Config {
    /// Reads, parses and validates a configuration file, then applies
    /// secrets from the environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::single(
                path,
                Problem {
                    key: String::new(),
                    position: None,
                    message: format!("cannot read the configuration file: {error}"),
                },
            )
        })?;
        Config::parse_with_env(&text, path, |name| std::env::var(name).ok())
    }

    /// Parses and validates configuration text with no secrets from the
    /// environment; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse_with_env(text, path, |_| None)
    }

    /// Parses, applies secrets from `lookup` (the environment, or a map in
    /// tests), then validates.
    pub fn parse_with_env(
        text: &str,
        path: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let index = match SpanIndex::build(text) {
            Some(index) => index,
            None => {
                // Broken TOML: report the syntax error with its position.
                let error = toml::from_str::<toml::Table>(text).err();
                let problem = match error {
                    Some(error) => diagnostics::problem_from_syntax(&error, text),
                    None => Problem {
                        key: String::new(),
                        position: None,
                        message: "the file is not valid TOML".into(),
                    },
                };
                return Err(ConfigError::single(path, problem));
            }
        };
        let mut config: Config = toml::from_str(text).map_err(|error| {
            ConfigError::single(path, diagnostics::problem_from_toml(&error, &index))
        })?;
        config.apply_environment(lookup);
        let problems = validate::validate(&config, &index);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                file: path.to_path_buf(),
                problems,
            })
        }
    }

    /// Overrides secrets with environment variables.
    fn apply_environment(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        if let Some(password) = lookup(Secrets::TRUNK_PASSWORD) {
            self.trunk.password = Some(password);
        }
        for agent in &mut self.agents {
            if let Some(password) = lookup(&Secrets::agent_password_var(&agent.id)) {
                agent.password = Some(password);
            }
        }
        for token in &mut self.api.tokens {
            token.secret = match &token.token_env {
                Some(var) => lookup(var),
                None => token.token.clone(),
            };
        }
    }

    /// A one-screen summary for `outdial check-config`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let transports: Vec<String> = self.sip.transports.iter().map(|t| t.to_string()).collect();
        out.push_str(&format!(
            "sip      listen {} ({})\n",
            self.sip.listen,
            transports.join(", ")
        ));
        out.push_str(&format!(
            "rtp      {} ports {}-{} ({} media legs)\n",
            self.rtp.bind,
            self.rtp.port_min,
            self.rtp.port_max,
            self.rtp.leg_capacity()
        ));
        out.push_str(&format!(
            "trunk    {} via {}, caller id {}, max {} calls, {} calls/s, auth {}{}\n",
            self.trunk.uri,
            self.trunk.transport,
            self.trunk.caller_id,
            self.trunk.max_concurrent_calls,
            self.trunk.max_calls_per_second,
            if self.trunk.username.is_some() {
                "digest"
            } else {
                "none"
            },
            if self.trunk.register {
                format!(", registers for {} s", self.trunk.register_expires_s)
            } else {
                String::new()
            }
        ));
        out.push_str(&format!(
            "api      http://{} ({} token{})\n",
            self.api.listen,
            self.api.tokens.len(),
            if self.api.tokens.len() == 1 { "" } else { "s" }
        ));
        out.push_str(&format!("store    {}\n", redact_url(&self.store.url)));
        out.push_str(&format!("campaigns {}\n", self.campaigns.len()));
        for campaign in &self.campaigns {
            let agents = self
                .agents
                .iter()
                .filter(|a| a.campaigns.iter().any(|c| c == &campaign.name))
                .count();
            out.push_str(&format!(
                "  {:<16} {:<12} abandon target {:.1} %, hours {} {}, {} agent{}\n",
                campaign.name,
                campaign.mode.to_string(),
                campaign.abandon_target * 100.0,
                campaign.call_hours,
                campaign.call_days.join(","),
                agents,
                if agents == 1 { "" } else { "s" }
            ));
        }
        out.push_str(&format!("agents   {}\n", self.agents.len()));
        for agent in &self.agents {
            let phone = match (
                &agent.sip_uri,
                agent.password.is_some(),
                agent.browser_phone,
            ) {
                (Some(uri), _, _) => uri.as_str(),
                (None, true, _) => "(registers)",
                (None, false, true) => "(the web desktop)",
                (None, false, false) => "(no phone)",
            };
            out.push_str(&format!("  {:<8} {:<20} {phone}\n", agent.id, agent.name));
        }
        out
    }
}

/// Hides the password in a database URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>().map_err(|_| {
        let port_problem = text
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u64>().ok())
            .filter(|port| *port > 65535);
        match port_problem {
            Some(port) => format!("port {port} in `{text}` is out of range (0–65535)"),
            None => format!("`{text}` is not an address; expected IP:PORT like 127.0.0.1:5060"),
        }
    })
}

fn socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_socket_addr(&text).map_err(serde::de::Error::custom)
}

/// `IP:PORT`, or a bare `IP` for port 53.
fn dns_servers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SocketAddr>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| match text.parse::<IpAddr>() {
            Ok(ip) => Ok(SocketAddr::new(ip, 53)),
            Err(_) => parse_socket_addr(text).map_err(|_| {
                format!(
                    "`{text}` is not a DNS server; expected an IP or IP:PORT like 192.0.2.53:53"
                )
            }),
        })
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn optional_socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_socket_addr(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn default_transports() -> Vec<Transport> {
    vec![Transport::Udp, Transport::Tcp]
}
fn default_t1() -> u64 {
    500
}
fn default_t2() -> u64 {
    4000
}
fn default_t4() -> u64 {
    5000
}
fn default_user_agent() -> String {
    format!("outdial/{}", env!("CARGO_PKG_VERSION"))
}
fn default_trunk_transport() -> Transport {
    Transport::Udp
}
fn default_register_expires() -> u64 {
    3600
}
fn default_session_expires() -> u64 {
    1800
}

impl TrunkConfig {
    /// The session timer to ask for (`session_expires_s`), if any.
    pub fn session_timer_asked(&self) -> Option<std::time::Duration> {
        (self.session_expires_s > 0).then(|| std::time::Duration::from_secs(self.session_expires_s))
    }
}

fn default_options_interval() -> u64 {
    30
}
fn default_log_level() -> String {
    "info".into()
}
fn default_abandon_target() -> f64 {
    0.03
}
fn default_lines_per_agent() -> f64 {
    1.0
}
fn default_ring_timeout() -> u64 {
    25
}
fn default_call_hours() -> String {
    "08:00-21:00".into()
}
fn default_call_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri", "sat"]
        .iter()
        .map(|d| d.to_string())
        .collect()
}
fn default_region() -> String {
    "US".into()
}
fn default_machine_action() -> MachineAction {
    MachineAction::Hangup
}
fn yes() -> bool {
    true
}
fn default_max_attempts() -> u32 {
    5
}
fn default_max_attempts_per_number() -> u32 {
    3
}
fn default_retry_busy() -> u64 {
    300
}
fn default_retry_no_answer() -> u64 {
    1800
}
fn default_retry_machine() -> u64 {
    7200
}
fn default_retry_congestion() -> u64 {
    300
}

#[cfg(test)]
mod tests;
