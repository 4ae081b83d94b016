"""Held-out noises and impairments for `generate.py --noise-set holdout`.

The analyser's constants were chosen on the default noise set (white, pink,
babble, mains hum; 20 ms packet loss, tandem mu-law, gain steps, clipping).
This set holds noises and impairments it never saw, to check that what it
learned is not specific to those: brown noise, car rumble, speech-shaped
noise, office noise with keyboard and door transients, background music
(sustained notes are tonal: the tone and beep detectors' hardest case), a
second person talking in the room, a very quiet caller, AGC level pumping,
clock drift with jitter-buffer frame drops/repeats, and bursts of 2-3 lost
packets. Only the degradation differs: classes, voices and phrases are drawn
exactly as in the default set.
"""

import numpy as np

SR = 8000


def _norm(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def _fft_filter(x, gain_of_hz):
    f = np.fft.rfft(x)
    hz = np.fft.rfftfreq(len(x), 1 / SR)
    return np.fft.irfft(f * gain_of_hz(hz), len(x))


def brown(n, rng):
    # 1/f^2 power, with a 20 Hz high-pass so the random walk has no drift
    w = rng.standard_normal(n)
    return _norm(_fft_filter(w, lambda hz: 1.0 / np.maximum(hz, 20.0)))


def car(n, rng):
    """Road/engine rumble: noise low-passed at 100-400 Hz (most of it under the
    phone band), slowly swelling, plus a weak engine harmonic that drifts."""
    fc = rng.uniform(100, 400)
    w = rng.standard_normal(n)
    x = _fft_filter(w, lambda hz: 1.0 / (1.0 + (hz / fc) ** 4))
    t = np.arange(n) / SR
    x = _norm(x) * (1 + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t + rng.uniform(0, 6.28)))
    f0 = rng.uniform(25, 60) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t))
    ph = 2 * np.pi * np.cumsum(f0) / SR
    eng = sum(np.sin(k * ph) / k for k in (1, 2, 3, 4))
    return _norm(x + rng.uniform(0.1, 0.5) * _norm(eng))


def speech_shaped(n, rng, babble):
    """Stationary noise with the long-term spectrum of speech: babble with its
    phases randomised (no syllables, no pitch: the VAD's noise-like case)."""
    f = np.fft.rfft(babble(n))
    ph = np.exp(1j * rng.uniform(0, 2 * np.pi, len(f)))
    return _norm(np.fft.irfft(np.abs(f) * ph, n))


def office(n, rng, pink):
    """Soft pink background with transients: keyboard typing bursts (5-15 ms
    clicks, 4-10 per second) and now and then a door or a dropped object (a
    low thump of 80-200 ms). Returns (background, transients), both unit scale."""
    bg = pink(n, rng)
    tr = np.zeros(n, dtype=np.float64)
    t = 0.0
    dur = n / SR
    while t < dur:
        if rng.random() < 0.7:  # a typing burst
            end = min(dur, t + rng.uniform(0.5, 2.5))
            while t < end:
                i = int(t * SR)
                m = int(rng.uniform(0.005, 0.015) * SR)
                if i + m < n:
                    c = rng.standard_normal(m) * np.exp(-np.arange(m) / (m / 4))
                    c = np.diff(c, prepend=0.0)  # clicks are bright
                    tr[i:i + m] += c * rng.uniform(0.5, 1.0)
                t += rng.uniform(0.1, 0.25)
        else:  # a door
            i = int(t * SR)
            m = int(rng.uniform(0.08, 0.2) * SR)
            if i + m < n:
                f = rng.uniform(60, 180)
                k = np.arange(m)
                th = np.sin(2 * np.pi * f * k / SR) + 0.5 * rng.standard_normal(m)
                tr[i:i + m] += 3.0 * th * np.exp(-k / (m / 5))
        t += rng.uniform(0.3, 2.0)
    peak = np.abs(tr).max()
    return bg, (tr / peak if peak > 0 else tr).astype(np.float32)


def music(n, rng):
    """Background music: chords that change every 0.5-2 s and often a melody
    line. Timbres: a sustained pad (organ-like, the tone detectors' worst
    case), a decaying piano, or a flute-like near-sine melody alone, with or
    without vibrato."""
    t = np.arange(n) / SR
    out = np.zeros(n)
    style = rng.choice(["pad", "piano", "flute"])
    key = int(rng.integers(48, 60))  # MIDI root: C3..B3
    degrees = [0, 2, 4, 5, 7, 9, 11]

    def hz(m):
        return 440.0 * 2 ** ((m - 69) / 12)

    def note(f0, i0, m, decay, harmonics, vib):
        k = np.arange(m)
        tt = k / SR
        f = f0 * (1 + vib * np.sin(2 * np.pi * 5.5 * tt))
        ph = 2 * np.pi * np.cumsum(f) / SR + rng.uniform(0, 6.28)
        s = sum(a * np.sin(h * ph) for h, a in harmonics)
        env = np.exp(-tt / decay) if decay else np.ones(m)
        r = min(int(0.03 * SR), m // 2)
        env[:r] *= np.linspace(0, 1, r)
        if r:  # a 1-sample note at the clip's end: env[-0:] would be all of it
            env[-r:] *= np.linspace(1, 0, r)
        out[i0:i0 + m] += s * env

    vib = rng.choice([0.0, rng.uniform(0.003, 0.008)])
    if style != "flute":
        harm = [(h, 1.0 / h ** 1.5) for h in range(1, 7)]
        i = 0
        while i < n:
            m = min(n - i, int(rng.uniform(0.5, 2.0) * SR))
            root = int(rng.choice(degrees))
            for step in (0, 2, 4):  # a triad on the scale
                d = degrees[(degrees.index(root) + step) % 7] + 12 * ((degrees.index(root) + step) // 7)
                note(hz(key + d), i, m, rng.uniform(0.3, 1.0) if style == "piano" else 0, harm, 0.0)
            i += m
    if style == "flute" or rng.random() < 0.6:
        harm = [(1, 1.0), (2, 0.15), (3, 0.05)]
        i = int(rng.uniform(0, 0.5) * SR)
        while i < n:
            m = min(n - i, int(rng.uniform(0.2, 0.7) * SR))
            d = int(rng.choice(degrees)) + 12 * int(rng.integers(1, 3))
            note(hz(key + d), i, m, 0 if style != "piano" else rng.uniform(0.3, 0.8), harm, vib)
            i += m + int(rng.choice([0, 0, rng.uniform(0.05, 0.3)]) * SR)
    return _norm(out + 1e-6 * rng.standard_normal(n))


def talker(n, rng, say):
    """A second person in the room: one to three phrases of another voice at
    random times (unit active level; silence between)."""
    out = np.zeros(n, dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):
        a = say()
        a = a / (active_rms(a) + 1e-9)
        at = int(rng.integers(0, max(1, n - len(a) // 2)))
        m = min(len(a), n - at)
        out[at:at + m] += a[:m]
    return out


def active_rms(x):
    if len(x) < 160:
        return float(np.sqrt((x ** 2).mean() + 1e-12))
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    e = np.sqrt((frames ** 2).mean(axis=1) + 1e-12)
    act = e[e > e.max() * 0.1]
    return float(np.sqrt((act ** 2).mean()))


# ---------------------------------------------------------------- impairments
def agc(x, rng):
    """A level-levelling AGC with fast attack and slow release: it lifts the
    line's noise in every pause (pumping) and ducks the start of each word."""
    target = 10 ** (rng.uniform(-22, -14) / 20)
    gmax = 10 ** (rng.uniform(10, 20) / 20)
    gmin = 10 ** (-10 / 20)
    blk = 16  # 2 ms blocks
    nb = len(x) // blk
    e = np.sqrt((x[: nb * blk].reshape(-1, blk) ** 2).mean(axis=1) + 1e-12)
    att = np.exp(-1 / (rng.uniform(2, 10) / 2))  # attack 2-10 ms
    rel = np.exp(-1 / (rng.uniform(200, 1000) / 2))  # release 0.2-1 s
    env = np.empty(nb)
    v = e[: 50].mean() if nb else 0.0
    for i in range(nb):
        c = att if e[i] > v else rel
        v = c * v + (1 - c) * e[i]
        env[i] = v
    g = np.clip(target / (env + 1e-9), gmin, gmax)
    gs = np.interp(np.arange(len(x)), np.arange(nb) * blk + blk / 2, g) if nb else np.ones(len(x))
    return (x * gs).astype(np.float32)


def warp(x, rng):
    """Clock drift of +-0.1..0.5 % with a slow wobble, plus an adaptive jitter
    buffer dropping or repeating a 10-20 ms chunk every 1-3 s. Returns the
    audio and the map from input sample to output time (for the labels)."""
    n = len(x)
    r0 = 1 + rng.choice([-1, 1]) * rng.uniform(0.001, 0.005)
    a = rng.uniform(0, 0.002)
    t = np.arange(int(n / r0) + SR) / SR
    rate = r0 + a * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
    pos = np.concatenate([[0.0], np.cumsum(rate)[:-1]])
    pos = pos[pos < n - 1]
    # jitter buffer: every 1-3 s, skip or repeat a chunk of input
    jumps = np.zeros(len(pos))
    at = int(rng.uniform(1, 3) * SR)
    while at < len(pos):
        jumps[at] = rng.choice([-1, 1]) * int(rng.choice([80, 160]))
        at += int(rng.uniform(1, 3) * SR)
    pos = pos + np.cumsum(jumps)
    pos = pos[(pos >= 0) & (pos < n - 1)]
    y = np.interp(pos, np.arange(n), x).astype(np.float32)
    return y, pos


def burst_loss(x, rng):
    """Bursts of 2-3 consecutive lost 20 ms packets (zeros: the shell feeds
    silence for lost packets), 0.5-2 % of packets starting a burst."""
    y = x.copy()
    p = rng.uniform(0.005, 0.02)
    i = 0
    while i < len(y) - 160:
        if rng.random() < p:
            k = int(rng.integers(2, 4))
            y[i:i + 160 * k] = 0
            i += 160 * k
        i += 160
    return y


# ---------------------------------------------------------------- the draw
NOISES = ["brown", "car", "speech_shaped", "office", "music", "talker"]
NOISE_P = [0.15, 0.15, 0.15, 0.15, 0.25, 0.15]
SNR = {"brown": (6, 40), "car": (0, 35), "speech_shaped": (10, 40), "office": (15, 40),
       "music": (10, 35), "talker": (8, 25)}


def degrade(x, cls, level, rng, meta, h):
    """Noise, level and impairments of the holdout set for one clip.

    h: helpers from generate.py (pink, babble(n), say() for the second talker).
    Returns the audio and the clip's description words; updates meta's times
    when the time base is warped."""
    desc = []
    n = len(x)
    speech = cls in ("human", "machine")
    if speech and rng.random() < 0.15:
        # a very quiet caller: active level -35..-40 dBFS (the line, not the
        # noise: the room noise stays where it is relative to the voice)
        q = rng.uniform(-40, -35)
        x = x * 10 ** ((q - level) / 20)
        level = q
        desc.append("quiet")
    if cls == "silence":
        if rng.random() < 0.5:
            kind = rng.choice(["brown", "car"])
            nz = brown(n, rng) if kind == "brown" else car(n, rng)
            lv = rng.uniform(-65, -45)
            x = x + nz * 10 ** ((lv - 3) / 20)
            desc.append(f"{kind}{lv:.0f}dBFS")
    elif rng.random() < 0.8:
        kinds = NOISES if speech else NOISES[:-1]
        p = np.array(NOISE_P[: len(kinds)])
        kind = str(rng.choice(kinds, p=p / p.sum()))
        lo, hi = SNR[kind]
        snr = float(rng.uniform(lo, hi))
        rms = 10 ** ((level - 3.0 - snr) / 20)
        if kind == "brown":
            x = x + brown(n, rng) * rms
        elif kind == "car":
            x = x + car(n, rng) * rms
        elif kind == "speech_shaped":
            x = x + speech_shaped(n, rng, h["babble"]) * rms
        elif kind == "office":
            bg, tr = office(n, rng, h["pink"])
            # background 10-20 dB under the stated SNR, clicks peaking at the voice's RMS ± 6 dB
            x = x + bg * rms * 10 ** (-rng.uniform(10, 20) / 20) + tr * 10 ** ((level - 3.0 + rng.uniform(-6, 6)) / 20)
        elif kind == "music":
            x = x + music(n, rng) * rms
        else:
            x = x + talker(n, rng, h["say"]) * rms
        desc.append(f"{kind}{snr:.0f}dB")
    if rng.random() < 0.35:
        imp = str(rng.choice(["agc", "warp", "burst"]))
        if imp == "agc":
            x = agc(x, rng)
        elif imp == "burst":
            x = burst_loss(x, rng)
        else:
            x, pos = warp(x, rng)
            for k in ("beep_ms", "speech_end_ms"):
                if k in meta:
                    j = int(np.searchsorted(pos, meta[k] * SR / 1000))
                    meta[k] = int(j * 1000 / SR)
        desc.append(imp)
    return x, desc
