//! The agent registrar: REGISTER with digest auth against the agents'
//! passwords from the configuration, bindings with expiry, refresh and
//! unregister. An agent without a live binding is reached at its static
//! `sip_uri`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::auth::{self, DigestParams};
use super::codec::{Message, NameAddr, SipUri, param};
use super::endpoint::TransportKind;

/// Nonces we issued stay valid this long.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);
const DEFAULT_EXPIRES: u32 = 3600;
const MAX_EXPIRES: u32 = 7200;

#[derive(Debug, Clone)]
pub struct AgentCredentials {
    pub id: String,
    pub password: String,
    /// The static `sip_uri`, used while the agent has no binding.
    pub static_uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub contact: String,
    pub expires_at: Instant,
    /// Where the REGISTER came from.
    pub received: Received,
}

/// The transport address a REGISTER arrived from: where the phone is
/// reached (its NAT's pinhole, or its own TCP connection), whatever private
/// address its Contact names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub addr: SocketAddr,
    pub transport: TransportKind,
}

/// What the endpoint should answer to one REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterReply {
    /// 401 with this `WWW-Authenticate` value.
    Challenge(String),
    /// 200 OK; `Contact` values with their expires, and what changed.
    Ok {
        contacts: Vec<(String, u32)>,
        change: BindingChange,
    },
    /// 403 (unknown agent or wrong password) or 400.
    Reject(u16, &'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    Registered {
        agent: String,
        contact: String,
        expires: u32,
        received: Received,
    },
    Unregistered {
        agent: String,
    },
    Queried,
}

#[derive(Debug)]
pub struct Registrar {
    realm: String,
    agents: HashMap<String, AgentCredentials>,
    bindings: HashMap<String, Binding>,
    nonces: HashMap<String, Instant>,
}

impl Registrar {
    pub fn new(realm: impl Into<String>, agents: Vec<AgentCredentials>) -> Self {
        Registrar {
            realm: realm.into(),
            agents: agents.into_iter().map(|a| (a.id.clone(), a)).collect(),
            bindings: HashMap::new(),
            nonces: HashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Where to reach an agent now: its live binding, else its static URI.
    pub fn contact_for(&self, agent: &str, now: Instant) -> Option<String> {
        match self.bindings.get(agent) {
            Some(binding) if binding.expires_at > now => Some(binding.contact.clone()),
            _ => self.agents.get(agent).map(|a| a.static_uri.clone()),
        }
    }

    pub fn binding(&self, agent: &str, now: Instant) -> Option<&Binding> {
        self.bindings.get(agent).filter(|b| b.expires_at > now)
    }

    /// Handles one REGISTER. `fresh_nonce` is a random token from the
    /// endpoint (the core owns no randomness of its own).
    pub fn handle(
        &mut self,
        request: &Message<'_>,
        received: Received,
        fresh_nonce: String,
        now: Instant,
    ) -> RegisterReply {
        self.nonces
            .retain(|_, issued| now.duration_since(*issued) < NONCE_LIFETIME);
        let Some(to) = request.to() else {
            return RegisterReply::Reject(400, "Bad Request");
        };
        let Some(agent_id) = SipUri::parse(to.uri).and_then(|u| u.user) else {
            return RegisterReply::Reject(400, "Bad Request");
        };
        let Some(agent) = self.agents.get(agent_id) else {
            return RegisterReply::Reject(403, "Forbidden");
        };
        let credentials = request
            .header("Authorization")
            .and_then(|v| DigestParams::parse(v).ok());
        let authorised = credentials.as_ref().is_some_and(|c| {
            let nonce = c.get("nonce").unwrap_or_default();
            c.get("username") == Some(agent.id.as_str())
                && self.nonces.contains_key(nonce)
                && auth::verify(c, "REGISTER", &self.realm, nonce, &agent.password)
        });
        if !authorised {
            if credentials
                .is_some_and(|c| c.get("nonce").is_some_and(|n| self.nonces.contains_key(n)))
            {
                return RegisterReply::Reject(403, "Forbidden");
            }
            let challenge = format!(
                "Digest realm=\"{}\", nonce=\"{fresh_nonce}\", algorithm=MD5, qop=\"auth\"",
                self.realm
            );
            self.nonces.insert(fresh_nonce, now);
            return RegisterReply::Challenge(challenge);
        }
        let agent_id = agent.id.clone();
        let header_expires = request
            .header("Expires")
            .and_then(|v| v.trim().parse::<u32>().ok());
        let contact = request.header_values("Contact").next();
        match contact {
            None => RegisterReply::Ok {
                contacts: self.current(&agent_id, now),
                change: BindingChange::Queried,
            },
            Some("*") => {
                self.bindings.remove(&agent_id);
                RegisterReply::Ok {
                    contacts: Vec::new(),
                    change: BindingChange::Unregistered { agent: agent_id },
                }
            }
            Some(value) => {
                let Some(addr) = NameAddr::parse(value) else {
                    return RegisterReply::Reject(400, "Bad Request");
                };
                let expires = param(addr.params, "expires")
                    .and_then(|e| e.parse::<u32>().ok())
                    .or(header_expires)
                    .unwrap_or(DEFAULT_EXPIRES)
                    .min(MAX_EXPIRES);
                if expires == 0 {
                    self.bindings.remove(&agent_id);
                    return RegisterReply::Ok {
                        contacts: Vec::new(),
                        change: BindingChange::Unregistered { agent: agent_id },
                    };
                }
                let contact = addr.uri.to_string();
                self.bindings.insert(
                    agent_id.clone(),
                    Binding {
                        contact: contact.clone(),
                        expires_at: now + Duration::from_secs(u64::from(expires)),
                        received,
                    },
                );
                RegisterReply::Ok {
                    contacts: vec![(contact.clone(), expires)],
                    change: BindingChange::Registered {
                        agent: agent_id,
                        contact,
                        expires,
                        received,
                    },
                }
            }
        }
    }

    fn current(&self, agent: &str, now: Instant) -> Vec<(String, u32)> {
        self.binding(agent, now)
            .map(|b| {
                let left = b.expires_at.saturating_duration_since(now).as_secs();
                vec![(b.contact.clone(), u32::try_from(left).unwrap_or(u32::MAX))]
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: Received = Received {
        addr: SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9)),
            40000,
        ),
        transport: TransportKind::Udp,
    };
    use crate::sip::auth::Challenge;

    fn registrar() -> Registrar {
        Registrar::new(
            "outdial",
            vec![AgentCredentials {
                id: "1001".into(),
                password: "secret".into(),
                static_uri: "sip:1001@127.0.0.1:5081".into(),
            }],
        )
    }

    fn register(authorization: Option<&str>, contact: &str) -> String {
        let mut text = String::from(
            "REGISTER sip:outdial SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5081;branch=z9hG4bK1\r\nFrom: <sip:1001@outdial>;tag=a\r\nTo: <sip:1001@outdial>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\n",
        );
        text.push_str(&format!("Contact: {contact}\r\n"));
        if let Some(a) = authorization {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        text
    }

    #[test]
    fn challenge_then_register_then_expire_then_unregister() {
        let now = Instant::now();
        let mut r = registrar();
        let text = register(None, "<sip:1001@127.0.0.1:6000>;expires=60");
        let RegisterReply::Challenge(challenge) = r.handle(
            &Message::parse(text.as_bytes()).unwrap(),
            RECEIVED,
            "n1".into(),
            now,
        ) else {
            panic!("expected a challenge");
        };
        let answer = Challenge::parse(&challenge).unwrap().answer(
            "1001",
            "secret",
            "REGISTER",
            "sip:outdial",
            1,
            "c",
        );
        let text = register(Some(&answer), "<sip:1001@127.0.0.1:6000>;expires=60");
        let reply = r.handle(
            &Message::parse(text.as_bytes()).unwrap(),
            RECEIVED,
            "n2".into(),
            now,
        );
        assert!(
            matches!(
                reply,
                RegisterReply::Ok {
                    change: BindingChange::Registered { .. },
                    ..
                }
            ),
            "{reply:?}"
        );
        assert_eq!(
            r.contact_for("1001", now).unwrap(),
            "sip:1001@127.0.0.1:6000"
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(
            r.contact_for("1001", later).unwrap(),
            "sip:1001@127.0.0.1:5081"
        );

        let text = register(Some(&answer), "*");
        let reply = r.handle(
            &Message::parse(text.as_bytes()).unwrap(),
            RECEIVED,
            "n3".into(),
            now,
        );
        assert!(matches!(
            reply,
            RegisterReply::Ok {
                change: BindingChange::Unregistered { .. },
                ..
            }
        ));
    }

    #[test]
    fn wrong_password_and_strangers_are_forbidden() {
        let now = Instant::now();
        let mut r = registrar();
        let text = register(None, "<sip:1001@127.0.0.1:6000>");
        let RegisterReply::Challenge(challenge) = r.handle(
            &Message::parse(text.as_bytes()).unwrap(),
            RECEIVED,
            "n1".into(),
            now,
        ) else {
            panic!();
        };
        let answer = Challenge::parse(&challenge).unwrap().answer(
            "1001",
            "wrong",
            "REGISTER",
            "sip:outdial",
            1,
            "c",
        );
        let text = register(Some(&answer), "<sip:1001@127.0.0.1:6000>");
        assert_eq!(
            r.handle(
                &Message::parse(text.as_bytes()).unwrap(),
                RECEIVED,
                "n2".into(),
                now
            ),
            RegisterReply::Reject(403, "Forbidden")
        );
        let text = register(None, "<sip:1001@127.0.0.1:6000>")
            .replace("sip:1001@outdial>\r\nCall", "sip:666@outdial>\r\nCall");
        assert_eq!(
            r.handle(
                &Message::parse(text.as_bytes()).unwrap(),
                RECEIVED,
                "n3".into(),
                now
            ),
            RegisterReply::Reject(403, "Forbidden")
        );
    }
}
