//! The media side of `outdial call --play FILE --record OUT`: one RTP leg
//! whose SDP offer goes into the INVITE, negotiated from the 18x/200 answer,
//! recording what comes back and playing a file to the callee once answered.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};

use crate::config::Config;
use crate::media::leg::LegEvent;
use crate::media::prompt::Prompt;
use crate::net::rtp::{self, LegReport, PortPool, RtpLeg};
use crate::sdp::{Codec, Direction, MediaSession, Negotiated, SessionDescription, process_answer};

/// After the file has played, keep listening this long so the far end's
/// answer to the last words (an echo, a reply) is recorded too.
pub const RECORD_TAIL: Duration = Duration::from_millis(800);

pub struct CallMedia {
    leg: RtpLeg,
    offer: SessionDescription,
    prompt: Option<Prompt>,
    record: Option<PathBuf>,
    negotiated: bool,
}

/// What the call loop should do after a media event.
pub enum MediaNext {
    Nothing,
    /// The file has played: hang up after [`RECORD_TAIL`].
    HangUpSoon,
    /// The media died (no RTP, or RTCP BYE): hang up now.
    HangUpNow(&'static str),
}

impl CallMedia {
    /// Opens the leg and loads the file before anything is dialed, so a bad
    /// WAV is an error before the phone rings.
    pub fn open(
        config: &Config,
        play: Option<PathBuf>,
        record: Option<PathBuf>,
    ) -> anyhow::Result<CallMedia> {
        let prompt = play
            .map(|path| Prompt::load(&path).with_context(|| format!("--play {}", path.display())))
            .transpose()?;
        let pool = PortPool::new(config.rtp.bind, config.rtp.port_min, config.rtp.port_max);
        let leg = RtpLeg::open(&pool, rtp::leg_settings(&config.media, fastrand::u32(..)))?;
        let announced = SocketAddr::new(
            config.rtp.public_ip.unwrap_or(config.rtp.bind),
            leg.local_addr().port(),
        );
        let codec = Codec {
            ptime_ms: config.media.ptime_ms,
            ..Codec::default()
        };
        let offer = MediaSession::new(announced, fastrand::u64(1..u64::MAX / 2), codec)
            .offer(Direction::SendRecv);
        Ok(CallMedia {
            leg,
            offer,
            prompt,
            record,
            negotiated: false,
        })
    }

    /// The SDP offer for the INVITE.
    pub fn offer_sdp(&self) -> Vec<u8> {
        self.offer.to_string().into_bytes()
    }

    /// Whether the call should be hung up by us when the file has played
    /// (rather than after `--hold`).
    pub fn plays(&self) -> bool {
        self.prompt.is_some()
    }

    /// An SDP answer arrived (in a 183 for early media, or in the 200). A
    /// later answer replaces an earlier one: the 200 may move the media.
    pub fn on_answer_sdp(&mut self, sdp: &[u8]) -> anyhow::Result<()> {
        let answer = SessionDescription::parse(sdp).map_err(|e| anyhow!("SDP answer: {e}"))?;
        let negotiated =
            process_answer(&self.offer, &answer).map_err(|e| anyhow!("SDP answer: {e}"))?;
        self.leg.set_negotiated(negotiated)?;
        self.negotiated = true;
        Ok(())
    }

    /// The far end re-offered (hold, unhold, a new address); the endpoint
    /// has answered it.
    pub fn on_media_changed(&mut self, media: Negotiated) -> anyhow::Result<()> {
        self.leg.set_negotiated(media)?;
        Ok(())
    }

    /// The call was answered: start recording and playing.
    pub fn on_answered(&mut self) -> anyhow::Result<()> {
        if !self.negotiated {
            return Err(anyhow!("the call was answered without an SDP answer"));
        }
        if let Some(path) = &self.record {
            self.leg.record(path.clone())?;
        }
        if let Some(prompt) = self.prompt.take() {
            self.leg.play(prompt)?;
        }
        Ok(())
    }

    pub async fn next_event(&mut self) -> Option<LegEvent> {
        self.leg.next_event().await
    }

    pub fn on_event(&self, event: LegEvent) -> MediaNext {
        match event {
            LegEvent::PlaybackFinished => MediaNext::HangUpSoon,
            LegEvent::Inactive => MediaNext::HangUpNow("no RTP from the far end"),
            LegEvent::RemoteBye => MediaNext::HangUpNow("RTCP BYE from the far end"),
            LegEvent::Latched(_) => MediaNext::Nothing,
        }
    }

    /// Closes the leg: the recording is written and the stream's statistics
    /// returned.
    pub async fn close(self) -> anyhow::Result<LegReport> {
        Ok(self.leg.close().await?)
    }
}
