//! G.711 μ-law (PCMU) and A-law (PCMA), table-driven.
//!
//! Every table is computed at compile time from the ITU-T G.711 reference
//! algorithm, so the per-sample cost is one indexed load: decoding is a
//! 256-entry lookup, encoding a lookup on the top bits of the magnitude, and
//! PCMU↔PCMA transcoding a direct 256-entry byte map (no trip through PCM).

/// μ-law bias added before the segment search (G.711 §A.1).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude μ-law can represent before clipping.
const ULAW_CLIP: i32 = 32635;

const fn ulaw_encode_reference(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    // μ-law codes are stored inverted; negative samples clear the top bit.
    let sign_mask = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    if pcm > ULAW_CLIP {
        pcm = ULAW_CLIP;
    }
    pcm += ULAW_BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && pcm & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(((exponent << 4) | mantissa) as u8) & sign_mask
}

const fn ulaw_decode_reference(code: u8) -> i16 {
    let code = !code;
    let sign = code & 0x80;
    let exponent = ((code >> 4) & 0x07) as i32;
    let mantissa = (code & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_encode_reference(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    if pcm > 32767 {
        pcm = 32767;
    }
    let code = if pcm < 256 {
        (pcm >> 4) as u8
    } else {
        let mut exponent = 7;
        let mut mask = 0x4000;
        while pcm & mask == 0 {
            exponent -= 1;
            mask >>= 1;
        }
        ((exponent << 4) | ((pcm >> (exponent + 3)) & 0x0F)) as u8
    };
    code ^ sign
}

const fn alaw_decode_reference(code: u8) -> i16 {
    let code = code ^ 0x55;
    let exponent = ((code >> 4) & 0x07) as i32;
    let mantissa = (code & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_reference(i as u8);
        i += 1;
    }
    table
};

const ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode_reference(i as u8);
        i += 1;
    }
    table
};

/// Encoder tables indexed by the whole sample (as `u16`). The 14-bit
/// shortcut some codecs take (`sample >> 2`) is off by one code at segment
/// edges for negative samples; 64 KiB per law buys exactness.
static ULAW_ENCODE: [u8; 65536] = {
    let mut table = [0u8; 65536];
    let mut i = 0;
    while i < 65536 {
        table[i] = ulaw_encode_reference(i as u16 as i16);
        i += 1;
    }
    table
};

static ALAW_ENCODE: [u8; 65536] = {
    let mut table = [0u8; 65536];
    let mut i = 0;
    while i < 65536 {
        table[i] = alaw_encode_reference(i as u16 as i16);
        i += 1;
    }
    table
};

const ULAW_TO_ALAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_encode_reference(ulaw_decode_reference(i as u8));
        i += 1;
    }
    table
};

const ALAW_TO_ULAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_encode_reference(alaw_decode_reference(i as u8));
        i += 1;
    }
    table
};

#[inline]
fn encode_index(sample: i16) -> usize {
    usize::from(sample as u16)
}

#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENCODE[encode_index(sample)]
}

#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[encode_index(sample)]
}

#[inline]
pub fn ulaw_to_alaw(code: u8) -> u8 {
    ULAW_TO_ALAW[usize::from(code)]
}

#[inline]
pub fn alaw_to_ulaw(code: u8) -> u8 {
    ALAW_TO_ULAW[usize::from(code)]
}

/// The two G.711 laws, as named by their RTP static payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// PCMU, payload type 0 (North America, Japan).
    Ulaw,
    /// PCMA, payload type 8 (most of the rest of the world).
    Alaw,
}

impl Law {
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode(code),
            Law::Alaw => alaw_decode(code),
        }
    }

    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(sample),
            Law::Alaw => alaw_encode(sample),
        }
    }

    /// Decodes `codes` into `out` (which must be at least as long).
    pub fn decode_into(self, codes: &[u8], out: &mut [i16]) {
        let table = match self {
            Law::Ulaw => &ULAW_DECODE,
            Law::Alaw => &ALAW_DECODE,
        };
        for (sample, code) in out.iter_mut().zip(codes) {
            *sample = table[usize::from(*code)];
        }
    }

    /// Encodes `samples` into `out` (which must be at least as long).
    pub fn encode_into(self, samples: &[i16], out: &mut [u8]) {
        let table = match self {
            Law::Ulaw => &ULAW_ENCODE,
            Law::Alaw => &ALAW_ENCODE,
        };
        for (code, sample) in out.iter_mut().zip(samples) {
            *code = table[encode_index(*sample)];
        }
    }

    /// Rewrites payload bytes of law `self` into law `to`, in place.
    pub fn transcode_in_place(self, to: Law, payload: &mut [u8]) {
        let table = match (self, to) {
            (Law::Ulaw, Law::Alaw) => &ULAW_TO_ALAW,
            (Law::Alaw, Law::Ulaw) => &ALAW_TO_ULAW,
            _ => return,
        };
        for code in payload {
            *code = table[usize::from(*code)];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_the_reference_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(
                ulaw_encode(sample),
                ulaw_encode_reference(sample),
                "{sample}"
            );
            assert_eq!(
                alaw_encode(sample),
                alaw_encode_reference(sample),
                "{sample}"
            );
        }
    }

    #[test]
    fn known_code_points() {
        // Silence codes and full-scale values from G.711.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
    }

    #[test]
    fn every_code_survives_a_decode_encode_round_trip() {
        for code in 0..=255u8 {
            let ulaw = ulaw_encode(ulaw_decode(code));
            // 0x7F (negative zero) legitimately re-encodes as 0xFF.
            if code != 0x7F {
                assert_eq!(ulaw, code, "ulaw {code:#x}");
            }
            assert_eq!(alaw_encode(alaw_decode(code)), code, "alaw {code:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        // G.711's step is at most 1/16 of the segment: relative error < 7 %.
        for sample in (-32000i32..32000).step_by(7) {
            let sample = sample as i16;
            for law in [Law::Ulaw, Law::Alaw] {
                let back = law.decode(law.encode(sample)) as i32;
                let error = (back - sample as i32).abs();
                assert!(
                    error <= 16 || error * 100 <= (sample as i32).abs() * 7,
                    "{law:?} {sample} -> {back}"
                );
            }
        }
    }

    #[test]
    fn transcoding_matches_decode_then_encode() {
        for code in 0..=255u8 {
            assert_eq!(ulaw_to_alaw(code), alaw_encode(ulaw_decode(code)));
            assert_eq!(alaw_to_ulaw(code), ulaw_encode(alaw_decode(code)));
        }
        let mut payload: Vec<u8> = (0..=255).collect();
        Law::Ulaw.transcode_in_place(Law::Alaw, &mut payload);
        assert_eq!(payload[0xFF], ulaw_to_alaw(0xFF));
    }
}
