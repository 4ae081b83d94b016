//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 8760):
//! answering a 401/407 challenge as a client (MD5, MD5-sess, SHA-256,
//! SHA-256-sess; qop=auth or none) and checking a client's credentials as the
//! registrar.

use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::codec::split_list;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the challenge is not a Digest challenge")]
    NotDigest,
    #[error("the challenge has no realm or nonce")]
    MissingField,
    #[error("unsupported digest algorithm {0:?} (MD5, MD5-sess, SHA-256, SHA-256-sess are)")]
    Algorithm(String),
    #[error("unsupported qop {0:?} (auth is)")]
    Qop(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Algorithm> {
        match name.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, input: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(input.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(input.as_bytes())),
        }
    }

    fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The fields of one `Digest` challenge or credentials header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestParams {
    pub fields: Vec<(String, String)>,
}

impl DigestParams {
    /// Parses `Digest realm="x", nonce="y", …`.
    pub fn parse(value: &str) -> Result<DigestParams, AuthError> {
        let value = value.trim();
        let (scheme, rest) = value.split_once([' ', '\t']).ok_or(AuthError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NotDigest);
        }
        let fields = split_list(rest)
            .filter_map(|item| {
                let (key, value) = item.split_once('=')?;
                Some((
                    key.trim().to_ascii_lowercase(),
                    value.trim().trim_matches('"').to_string(),
                ))
            })
            .collect();
        Ok(DigestParams { fields })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a client needs to answer a challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// `Some("auth")` when the server offers qop=auth.
    pub qop_auth: bool,
    pub stale: bool,
}

impl Challenge {
    pub fn parse(header_value: &str) -> Result<Challenge, AuthError> {
        let params = DigestParams::parse(header_value)?;
        let realm = params.get("realm").ok_or(AuthError::MissingField)?;
        let nonce = params.get("nonce").ok_or(AuthError::MissingField)?;
        let algorithm = match params.get("algorithm") {
            Some(name) => {
                Algorithm::parse(name).ok_or_else(|| AuthError::Algorithm(name.into()))?
            }
            None => Algorithm::Md5,
        };
        let qop_auth = match params.get("qop") {
            None => false,
            Some(list) => {
                if list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    true
                } else {
                    return Err(AuthError::Qop(list.into()));
                }
            }
        };
        Ok(Challenge {
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: params.get("opaque").map(str::to_string),
            algorithm,
            qop_auth,
            stale: params
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization`/`Proxy-Authorization` value for one request.
    /// `nonce_count` starts at 1 per nonce; `cnonce` is any fresh token.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nonce_count: u32,
        cnonce: &str,
    ) -> String {
        let alg = self.algorithm;
        let mut ha1 = alg.hash(&format!("{username}:{}:{password}", self.realm));
        if alg.is_session() {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        let nc = format!("{nonce_count:08x}");
        let response = if self.qop_auth {
            alg.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut out = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            alg.name()
        );
        if self.qop_auth || alg.is_session() {
            let _ = write!(out, ", cnonce=\"{cnonce}\"");
        }
        if self.qop_auth {
            let _ = write!(out, ", qop=auth, nc={nc}");
        }
        if let Some(opaque) = &self.opaque {
            let _ = write!(out, ", opaque=\"{opaque}\"");
        }
        out
    }
}

/// Server side: true when `credentials` (an Authorization value) answers a
/// challenge we issued with `nonce` in `realm` for this password and method.
pub fn verify(
    credentials: &DigestParams,
    method: &str,
    realm: &str,
    nonce: &str,
    password: &str,
) -> bool {
    let (Some(username), Some(uri), Some(response)) = (
        credentials.get("username"),
        credentials.get("uri"),
        credentials.get("response"),
    ) else {
        return false;
    };
    if credentials.get("realm") != Some(realm) || credentials.get("nonce") != Some(nonce) {
        return false;
    }
    let algorithm = credentials
        .get("algorithm")
        .map_or(Some(Algorithm::Md5), Algorithm::parse);
    let Some(algorithm) = algorithm else {
        return false;
    };
    let challenge = Challenge {
        realm: realm.into(),
        nonce: nonce.into(),
        opaque: None,
        algorithm,
        qop_auth: credentials.get("qop").is_some(),
        stale: false,
    };
    let nc = credentials
        .get("nc")
        .and_then(|nc| u32::from_str_radix(nc, 16).ok())
        .unwrap_or(1);
    let cnonce = credentials.get("cnonce").unwrap_or("");
    let expected = challenge.answer(username, password, method, uri, nc, cnonce);
    DigestParams::parse(&expected)
        .ok()
        .and_then(|p| p.get("response").map(|r| r.eq_ignore_ascii_case(response)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_without_qop_variant_matches_known_md5() {
        // RFC 2617 §3.5 example, with qop=auth.
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let answer = challenge.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert!(
            answer.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{answer}"
        );
        assert!(answer.contains("qop=auth, nc=00000001"));
    }

    #[test]
    fn sha256_and_sessions_verify_round_trip() {
        for algorithm in ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"] {
            let challenge = Challenge::parse(&format!(
                "Digest realm=\"outdial\", nonce=\"abc\", qop=\"auth\", algorithm={algorithm}"
            ))
            .unwrap();
            let answer = challenge.answer("1001", "pw", "REGISTER", "sip:outdial", 1, "cn");
            let params = DigestParams::parse(&answer).unwrap();
            assert!(
                verify(&params, "REGISTER", "outdial", "abc", "pw"),
                "{algorithm}"
            );
            assert!(
                !verify(&params, "REGISTER", "outdial", "abc", "wrong"),
                "{algorithm}"
            );
        }
    }

    #[test]
    fn rfc8760_sha256_known_answer() {
        // RFC 7616 §3.9.1 example (SHA-256, qop=auth).
        let challenge = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        let answer = challenge.answer(
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert!(
            answer.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{answer}"
        );
    }

    #[test]
    fn rejects_other_schemes_and_qops() {
        assert_eq!(
            Challenge::parse("Basic realm=x").unwrap_err(),
            AuthError::NotDigest
        );
        assert!(matches!(
            Challenge::parse("Digest realm=x, nonce=y, qop=\"auth-int\""),
            Err(AuthError::Qop(_))
        ));
    }
}
