#!/usr/bin/env python3
"""Generate the CPA corpus: 8 kHz mono PCM16 WAV clips plus labels.csv.

Usage: tools/corpus/generate.py [--out corpus-out] [--split train|test|both]
                                [--count N] [--seed N]
                                [--noise-set default|holdout]
                                [--engines espeak,flite,festival]

Speech comes from TTS (espeak-ng voice variants and accents, flite voices,
festival voices):
TTS is a proxy for people, not a substitute for real calls. The train and test
splits use disjoint voices and disjoint phrases. Tones follow every plan of
TELEPHONY.md with jitter inside the published tolerances. Audio is written
under --out (ignored by git); nothing here is committed but this script and
the phrase lists in phrases.py.

labels.csv columns: file,class,beep_ms,speech_end_ms,sit_code
(speech_end_ms: end of the first utterance, for human latency; sit_code: IC,
VC, RO, NC, IO or ITU).
"""

import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import holdout  # noqa: E402
import phrases  # noqa: E402

SR = 8000

# ---------------------------------------------------------------- voices
ESPEAK_BASES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029",
                "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3",
                   "f4", "f5", "klatt", "klatt2", "klatt3", "croak", "Andy",
                   "annie", "Alex", "Denis", "edward", "grandma", "john",
                   "kaukovalta", "Lee", "linda", "max", "michel", "Mr serious",
                   "norbert", "quincy", "rob", "steph", "travis", "victor",
                   "anika", "aunty", "belinda", "boris", "david", "iven",
                   "jacky", "Marco", "Michael", "Mike", "Storm", "Tweaky"]
FLITE_VOICES = ["kal", "awb", "rms", "slt", "kal16", "awb_time"]

TEST_VARIANTS = {"m3", "m6", "f3", "f5", "klatt2", "Andy", "linda", "quincy",
                 "steph", "victor", "aunty", "jacky", "Mike"}
TEST_BASES = {"en-029", "en-gb-scotland"}
TEST_FLITE = {"slt", "rms"}
# Debian's English festival voices: two diphone voices (male, LPC residual) in
# train, the HTS voice (female, statistical) in test, so the held-out voice
# differs from the train ones in engine kind as well as speaker.
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
TEST_FESTIVAL = {"cmu_us_slt_arctic_hts"}
FESTIVAL_PACKAGES = "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
ENGINES = ["espeak", "flite", "festival"]
# Share of the voice picks given to festival when it is drawn alongside the
# other engines: picking uniformly over voices would give its 2 train voices
# ~1 % of the clips against espeak's 170 variants.
FESTIVAL_SHARE = 0.25


def voices_for(split, engines=("espeak", "flite")):
    out = []
    for b in ESPEAK_BASES:
        for v in ESPEAK_VARIANTS:
            is_test = v in TEST_VARIANTS or b in TEST_BASES
            # a voice is in the test split only if both halves say so, in the
            # train split only if neither does: disjoint by construction
            if "espeak" not in engines:
                continue
            if split == "test" and v in TEST_VARIANTS and b in TEST_BASES | {"en-us"}:
                out.append(("espeak", f"{b}+{v}"))
            elif split == "train" and not is_test:
                out.append(("espeak", f"{b}+{v}"))
    for f in FLITE_VOICES:
        if "flite" in engines and (f in TEST_FLITE) == (split == "test"):
            out.append(("flite", f))
    for f in FESTIVAL_VOICES:
        if "festival" in engines and (f in TEST_FESTIVAL) == (split == "test"):
            out.append(("festival", f))
    return out


def check_engines(engines, voices):
    """Fails with an install hint when a requested engine or voice is missing:
    dropping it silently would draw another corpus from the same seed."""
    tools = {"espeak": ("espeak-ng", "espeak-ng"), "flite": ("flite", "flite"),
             "festival": ("text2wave", FESTIVAL_PACKAGES)}
    for e in engines:
        cmd, pkgs = tools[e]
        if shutil.which(cmd) is None:
            sys.exit(f"error: engine {e} requested but `{cmd}` is not installed "
                     f"(apt-get install {pkgs}), or leave it out with --engines")
    for eng, v in voices:
        # text2wave exits 0 on an unknown voice, festival --batch does not
        if eng == "festival" and subprocess.run(
                ["festival", "--batch", f"(voice_{v})"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode != 0:
            sys.exit(f"error: festival voice {v} is not installed (apt-get install {FESTIVAL_PACKAGES}), "
                     f"or leave festival out with --engines")


CACHE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "outdial-tts-cache")


def tts(engine, voice, text, speed, pitch):
    """Returns float32 audio at 8 kHz, band-limited like a phone line."""
    os.makedirs(CACHE, exist_ok=True)
    key = hashlib.sha1(f"{engine}|{voice}|{text}|{speed}|{pitch}".encode()).hexdigest()
    path = os.path.join(CACHE, key + ".raw")
    if not os.path.exists(path):
        # Per-process names and an atomic rename: generators running at the
        # same time share the cache, and one must never read another's
        # half-written file (or have its source removed under it).
        src = f"{path}.{os.getpid()}.src.wav"
        tmp = f"{path}.{os.getpid()}.tmp"
        if engine == "espeak":
            cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", src, text]
        elif engine == "festival":
            cmd = ["text2wave", "-o", src] + festival_setup(voice, speed, pitch)
        else:
            stretch = 175.0 / speed
            cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.2f}",
                   "-t", text, "-o", src]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       input=text.encode() if engine == "festival" else None)
        if not os.path.exists(src) or os.path.getsize(src) <= 44:
            sys.exit(f"error: {engine} voice {voice} produced no audio for {text!r}")
        subprocess.run(["sox", src, "-r", str(SR), "-c", "1", "-b", "16", "-e", "signed",
                        "-t", "raw", tmp, "sinc", "250-3500"], check=True,
                       stderr=subprocess.DEVNULL)
        os.remove(src)
        os.replace(tmp, path)
    a = np.fromfile(path, dtype=np.int16).astype(np.float32) / 32768.0
    # trim TTS leading/trailing silence so timings are ours
    env = np.abs(a) > 0.01
    if env.any():
        idx = np.nonzero(env)[0]
        a = a[max(0, idx[0] - 40): idx[-1] + 80]
    return a


def festival_setup(voice, speed, pitch):
    """text2wave -eval arguments for a voice at speed (wpm-like, 175 = the
    voice's own rate) and pitch (espeak's 0-99 scale, 50 = the voice's own)."""
    args = ["-eval", f"(voice_{voice})"]
    if voice.endswith("_hts"):
        # HTS voices ignore Duration_Stretch; hts_engine's -r is a speed
        # factor. Its pitch shift (-fm) has no effect in Debian's festival 2.5,
        # so the HTS voice keeps its own pitch.
        args += ["-eval", f"(set! hts_engine_params (append hts_engine_params '((\"-r\" {speed / 175.0:.3f}))))"]
    else:
        # diphone voices: duration stretch as flite's, and the target mean of
        # the intonation model moved ±1/2 octave over the pitch range (the
        # voices' own mean is 105 Hz, std 14-15)
        f0 = 105.0 * 2 ** ((pitch - 50) / 50.0)
        args += ["-eval", f"(Parameter.set 'Duration_Stretch {175.0 / speed:.3f})",
                 "-eval", f"(set! int_lr_params '((target_f0_mean {f0:.1f}) (target_f0_std {f0 * 0.14:.1f}) "
                          f"(model_f0_mean 170) (model_f0_std 34)))"]
    return args


def active_rms(x):
    if len(x) == 0:
        return 1e-9
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    e = np.sqrt((frames ** 2).mean(axis=1) + 1e-12)
    thr = e.max() * 0.1
    act = e[e > thr]
    return float(np.sqrt((act ** 2).mean())) if len(act) else 1e-9


def at_level(x, dbfs):
    """Scales so the active RMS sits at dbfs (re full-scale sine = -3 dB RMS)."""
    return x * (10 ** ((dbfs - 3.0) / 20) / active_rms(x))


def sil(ms):
    return np.zeros(int(SR * ms / 1000), dtype=np.float32)


def tone(freqs, ms, level_db, rng, am=None, reversals_ms=None, phase0=None):
    n = int(SR * ms / 1000)
    t = np.arange(n) / SR
    out = np.zeros(n, dtype=np.float64)
    amp = 10 ** (level_db / 20)
    for f in freqs:
        ph = rng.uniform(0, 2 * np.pi) if phase0 is None else phase0
        sig = np.sin(2 * np.pi * f * t + ph)
        if reversals_ms:
            flips = np.floor(t * 1000 / reversals_ms) % 2
            sig = np.sin(2 * np.pi * f * t + ph + np.pi * flips)
        out += amp * sig
    if am is not None:
        rate, depth = am
        out *= 1 + depth * np.sin(2 * np.pi * rate * t)
    # 5 ms ramps, as real generators do
    r = min(40, n // 2)
    if r > 0:
        ramp = np.linspace(0, 1, r)
        out[:r] *= ramp
        out[-r:] *= ramp[::-1]
    return out.astype(np.float32)


def cadence(freqs, pattern, total_ms, level_db, rng, jitter=0.08, am=None, start_on=True):
    parts = []
    t = 0
    i = 0 if start_on else 1
    fj = [f * (1 + rng.uniform(-0.01, 0.01)) for f in freqs]
    scale = 1 + rng.uniform(-jitter, jitter)
    while t < total_ms:
        d = pattern[i % len(pattern)] * scale
        if i % 2 == 0:
            parts.append(tone(fj, d, level_db, rng, am=am))
        else:
            parts.append(sil(d))
        t += d
        i += 1
    return np.concatenate(parts)[: int(SR * total_ms / 1000)]


# ---------------------------------------------------------------- noise
def pink(n, rng):
    w = rng.standard_normal(n)
    f = np.fft.rfft(w)
    k = np.arange(len(f))
    k[0] = 1
    f /= np.sqrt(k)
    x = np.fft.irfft(f, n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def babble(n, rng, voices, split):
    out = np.zeros(n, dtype=np.float32)
    texts = phrases.BABBLE
    for _ in range(rng.integers(4, 7)):
        eng, v = voices[rng.integers(len(voices))]
        a = tts(eng, v, texts[rng.integers(len(texts))], int(rng.integers(150, 200)), 50)
        a = a / (np.std(a) + 1e-9)
        reps = int(np.ceil(n / len(a))) + 1
        a = np.tile(a, reps)
        off = rng.integers(0, len(a) - n)
        out += a[off:off + n] * rng.uniform(0.5, 1.0)
    return out / (np.std(out) + 1e-9)


def hum(n, rng):
    f0 = rng.choice([50.0, 60.0])
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.28)) / k for k in (1, 2, 3, 5))
    return (x / np.std(x)).astype(np.float32)


def add_noise(x, kind, snr_db, rng, voices, split, signal_db):
    n = len(x)
    if kind == "white":
        nz = rng.standard_normal(n).astype(np.float32)
    elif kind == "pink":
        nz = pink(n, rng)
    elif kind == "babble":
        nz = babble(n, rng, voices, split)
    else:
        nz = hum(n, rng)
    nz_rms = 10 ** ((signal_db - 3.0 - snr_db) / 20)
    return x + nz * nz_rms


def impair(x, kind, rng):
    if kind == "loss":
        y = x.copy()
        for i in range(0, len(y) - 160, 160):
            if rng.random() < rng.uniform(0.01, 0.05):
                y[i:i + 160] = 0
        return y
    if kind == "tandem":
        y = x
        for _ in range(2):
            y = mulaw(y * rng.uniform(0.8, 1.25))
        return y
    if kind == "gain":
        y = x.copy()
        at = rng.integers(len(y) // 4, 3 * len(y) // 4)
        y[at:] *= 10 ** (rng.choice([-6, -3, 3, 6]) / 20)
        return y
    if kind == "clip":
        g = 10 ** (rng.uniform(6, 14) / 20)
        lim = float(np.abs(x).max())
        return np.clip(x * g, -lim, lim)
    return x


def mulaw(x):
    mu = 255.0
    x = np.clip(x, -1, 1)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * 127) / 127
    return (np.sign(y) * (1 / mu) * ((1 + mu) ** np.abs(y) - 1)).astype(np.float32)


# ---------------------------------------------------------------- plans
PLANS = {
    # country: (busy, reorder, ringback); each (freqs, pattern, am)
    "NA": (([480, 620], [500, 500]), ([480, 620], [250, 250]), ([440, 480], [2000, 4000])),
    "UK": (([400], [375, 375]), ([400], [400, 350, 225, 525]), ([400, 450], [400, 200, 400, 2000])),
    "DE": (([425], [480, 480]), ([425], [240, 240]), ([425], [1000, 4000])),
    "FR": (([440], [500, 500]), ([440], [250, 250]), ([440], [1500, 3500])),
    "NL": (([425], [500, 500]), ([425], [250, 250]), ([425], [1000, 4000])),
    "BE": (([425], [500, 500]), ([425], [167, 167]), ([425], [1000, 3000])),
    "CH": (([425], [500, 500]), ([425], [200, 200]), ([425], [1000, 4000])),
    "PT": (([425], [500, 500]), ([425], [200, 200]), ([425], [1000, 5000])),
    "ES": (([425], [200, 200]), ([425], [200, 200, 200, 200, 200, 600]), ([425], [1500, 3000])),
    "IT": (([425], [500, 500]), ([425], [200, 200]), ([425], [1000, 4000])),
    "AU": (([425], [375, 375]), ([425], [375, 375]), ([413, 438], [400, 200, 400, 2000])),
    "JP": (([400], [500, 500]), ([400], [500, 500]), ([400], [1000, 2000])),
    "RU": (([425], [350, 350]), ([425], [175, 175]), ([425], [1000, 4000])),
    "CN": (([450], [350, 350]), ([450], [700, 700]), ([450], [1000, 4000])),
    "IN": (([400], [750, 750]), ([400], [250, 250]), ([400], [400, 200, 400, 2000])),
}
# Plans that are indistinguishable from another class by design (ES busy is
# CH reorder, JP/AU reorder is their busy) are generated under the class the
# analyser reports for them, and noted in the README.
SIT_CODES = {
    "IC": ((913.8, 274), (1370.6, 274)), "VC": ((985.2, 380), (1370.6, 274)),
    "RO1": ((913.8, 274), (1428.5, 380)), "RO2": ((985.2, 274), (1370.6, 380)),
    "NC1": ((985.2, 380), (1428.5, 380)), "NC2": ((913.8, 380), (1370.6, 380)),
    "IO": ((913.8, 380), (1428.5, 274)),
}


class Gen:
    def __init__(self, split, rng, engines):
        self.split = split
        self.rng = rng
        self.voices = voices_for(split, engines)
        check_engines(engines, self.voices)
        self.festival = [ev for ev in self.voices if ev[0] == "festival"]
        self.others = [ev for ev in self.voices if ev[0] != "festival"]
        self.ph = phrases.split(split)

    def voice(self):
        # without festival this is the same draw as before festival was added,
        # so --engines espeak,flite reproduces the earlier corpora of a seed
        if not self.festival:
            eng, v = self.voices[self.rng.integers(len(self.voices))]
        elif not self.others or self.rng.random() < FESTIVAL_SHARE:
            eng, v = self.festival[self.rng.integers(len(self.festival))]
        else:
            eng, v = self.others[self.rng.integers(len(self.others))]
        speed = int(self.rng.integers(140, 215))
        pitch = int(self.rng.integers(25, 75))
        return eng, v, speed, pitch

    def say(self, text, voice=None):
        eng, v, speed, pitch = voice or self.voice()
        return tts(eng, v, text, speed, pitch)

    def human(self):
        r = self.rng
        voice = self.voice()
        kind = r.choice(["short", "short", "three", "business"], p=[0.35, 0.2, 0.3, 0.15])
        text = r.choice(self.ph["human_" + kind])
        lead = r.uniform(150, 1200)
        utt = self.say(text, voice)
        level = r.uniform(-32, -12)
        parts = [sil(lead), at_level(utt, level)]
        end_ms = lead + len(utt) * 1000 / SR
        if r.random() < 0.3:
            parts += [sil(r.uniform(1200, 2500)), at_level(self.say(r.choice(self.ph["human_short"]), voice), level)]
        parts.append(sil(r.uniform(1500, 3000)))
        return np.concatenate(parts), level, {"speech_end_ms": int(end_ms)}

    def machine(self):
        r = self.rng
        voice = self.voice()
        kind = r.choice(["personal", "business", "carrier", "short"], p=[0.4, 0.25, 0.25, 0.1])
        text = r.choice(self.ph["machine_" + kind])
        lead = r.uniform(200, 1200)
        g = self.say(text, voice)
        if kind == "carrier":
            # carrier greetings often splice in the number or name, read by another voice
            g = np.concatenate([g, sil(r.uniform(150, 400)), self.say(r.choice(self.ph["machine_tail"]), voice)])
        level = r.uniform(-30, -12)
        parts = [sil(lead), at_level(g, level)]
        meta = {}
        t = lead + len(g) * 1000 / SR
        if r.random() < 0.7 or kind == "short":
            gap = r.uniform(100, 900)
            f = r.choice([r.uniform(400, 2000), 1000.0, 440.0, 850.0, 1400.0])
            d = r.uniform(120, 1000)
            parts += [sil(gap), tone([f], d, level + r.uniform(-6, 3), r)]
            meta["beep_ms"] = int(t + gap)
        parts.append(sil(r.uniform(1000, 2500)))
        return np.concatenate(parts), level, meta

    def progress(self, which):
        r = self.rng
        country = r.choice(list(PLANS))
        freqs, pattern = PLANS[country][["busy", "reorder", "ringback"].index(which)]
        level = r.uniform(-28, -10)
        if which == "busy" and country == "ES":
            which_label = "reorder"  # identical to CH/DK/NO/IT congestion
        elif which == "reorder" and country in ("JP", "AU"):
            which_label = "busy"  # identical to busy at the same frequency
        else:
            which_label = which
        total = r.uniform(4000, 6000) if which != "ringback" else r.uniform(6500, 9000)
        am = None
        if which == "ringback" and country in ("JP", "IN"):
            am = (16.0 if country == "JP" else 25.0, 0.8)
        x = cadence(freqs, pattern, total, level, r, am=am)
        lead = sil(r.uniform(0, 400))
        return np.concatenate([lead, x]), level, {"class": which_label}

    def sit(self):
        r = self.rng
        level = r.uniform(-26, -12)
        if r.random() < 0.2:
            segs = [(950, 330), (1400, 330), (1800, 330)]
            code = "ITU"
        else:
            name = r.choice(list(SIT_CODES))
            (f1, d1), (f2, d2) = SIT_CODES[name]
            segs = [(f1, d1), (f2, d2), (1776.7, 380)]
            code = name.rstrip("12")
        parts = [sil(r.uniform(0, 500))]
        for f, d in segs:
            parts.append(tone([f * (1 + r.uniform(-0.004, 0.004))], d * (1 + r.uniform(-0.04, 0.04)), level, r))
            parts.append(sil(r.uniform(0, 25)))
        if r.random() < 0.6:
            parts += [sil(r.uniform(100, 300)), at_level(self.say(r.choice(self.ph["announcement"])), level)]
        else:
            parts.append(sil(1000))
        parts.append(sil(1000))
        return np.concatenate(parts), level, {"sit_code": code}

    def v21(self, ms, flags_only=True):
        bits = []
        nbits = int(ms / 1000 * 300)
        while len(bits) < nbits:
            if flags_only or len(bits) < 300:
                bits += [0, 1, 1, 1, 1, 1, 1, 0]
            else:
                bits += list(self.rng.integers(0, 2, 8))
        spb = SR / 300
        n = int(nbits * spb)
        t = np.arange(n)
        b = np.array(bits)[np.minimum((t / spb).astype(int), nbits - 1)]
        freq = np.where(b == 1, 1650.0, 1850.0)
        phase = 2 * np.pi * np.cumsum(freq) / SR
        return np.sin(phase).astype(np.float32)

    def fax(self):
        r = self.rng
        level = r.uniform(-24, -9)
        amp = 10 ** (level / 20)
        kind = r.choice(["ced", "ced_rev", "ansam", "v21", "cng"])
        parts = [sil(r.uniform(100, 300))]
        if kind in ("ced", "ced_rev", "ansam"):
            d = r.uniform(2600, 4000)
            am = (15.0, 0.2) if kind == "ansam" else None
            rev = 450 * (1 + r.uniform(-0.05, 0.05)) if kind == "ced_rev" or (kind == "ansam" and r.random() < 0.5) else None
            parts += [tone([2100 * (1 + r.uniform(-0.006, 0.006))], d, level, r, am=am, reversals_ms=rev), sil(75),
                      self.v21(1500) * amp]
        elif kind == "v21":
            parts += [self.v21(r.uniform(1000, 2000), flags_only=False) * amp, sil(r.uniform(1500, 3000)),
                      self.v21(1200) * amp]
        else:
            for _ in range(2):
                parts += [tone([1100 * (1 + r.uniform(-0.02, 0.02))], 500 * (1 + r.uniform(-0.12, 0.12)), level, r),
                          sil(3000 * (1 + r.uniform(-0.12, 0.12)))]
        return np.concatenate(parts), level, {"fax": kind}

    def silence(self):
        r = self.rng
        n = int(SR * r.uniform(5000, 7000) / 1000)
        if r.random() < 0.4:
            return np.zeros(n, dtype=np.float32), -70, {"digital": True}
        lvl = r.uniform(-70, -50)
        return pink(n, r) * 10 ** ((lvl - 3) / 20), lvl, {}


COMPOSITION = [("human", 0.30), ("machine", 0.30), ("fax", 0.07), ("busy", 0.065), ("reorder", 0.065),
               ("sit", 0.065), ("ringback", 0.07), ("silence", 0.065)]


def generate(split, count, out_dir, seed, engines, noise_set="default", classes=None, snr_range=None,
             espeak_voices=None):
    rng = np.random.default_rng(seed)
    gen = Gen(split, rng, engines)
    if espeak_voices:
        # voices no split uses (other languages' espeak voices reading the
        # English phrases, say): a held-out-voice draw
        gen.voices = gen.others = [("espeak", v) for v in espeak_voices]
        gen.festival = []
    os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    rows = []
    mix = [(c, p) for c, p in COMPOSITION if not classes or c in classes]
    names = [c for c, _ in mix]
    probs = np.array([p for _, p in mix])
    probs /= probs.sum()
    for i in range(count):
        cls = names[i % len(names)] if i < len(names) else rng.choice(names, p=probs)
        if cls == "human":
            x, level, meta = gen.human()
        elif cls == "machine":
            x, level, meta = gen.machine()
        elif cls in ("busy", "reorder", "ringback"):
            x, level, meta = gen.progress(cls)
        elif cls == "sit":
            x, level, meta = gen.sit()
        elif cls == "fax":
            x, level, meta = gen.fax()
        else:
            x, level, meta = gen.silence()
        label = meta.get("class", cls)
        desc = []
        if noise_set == "holdout":
            x, desc = holdout.degrade(x, cls, level, rng, meta, holdout_helpers(gen, rng, split))
        elif cls != "silence" and (snr_range or rng.random() < 0.75):
            kind = rng.choice(["white", "pink", "babble", "hum"], p=[0.3, 0.3, 0.25, 0.15])
            snr = float(rng.uniform(6, 45)) if kind != "babble" else float(rng.uniform(10, 45))
            if snr_range:
                snr = float(rng.uniform(*snr_range)) if kind != "babble" else float(rng.uniform(max(10, snr_range[0]), max(10, snr_range[1])))
            x = add_noise(x, kind, snr, rng, gen.voices, split, level)
            desc.append(f"{kind}{snr:.0f}dB")
        if noise_set != "holdout" and rng.random() < 0.3:
            imp = rng.choice(["loss", "tandem", "gain", "clip"])
            x = impair(x, imp, rng)
            desc.append(imp)
        x = np.clip(x, -1, 1)
        name = f"{split}/{i:04d}_{label}{'_' + '_'.join(desc) if desc else ''}.wav"
        pcm = (x * 32767).astype("<i2")
        write_wav(os.path.join(out_dir, name), pcm)
        rows.append([name, label, meta.get("beep_ms", ""), meta.get("speech_end_ms", ""),
                     meta.get("sit_code", "")])
    with open(os.path.join(out_dir, f"{split}.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "class", "beep_ms", "speech_end_ms", "sit_code"])
        w.writerows(rows)
    print(f"{split}: {count} clips in {out_dir}/{split}, labels in {out_dir}/{split}.csv")


def holdout_helpers(gen, rng, split):
    """What holdout.py borrows from here: pink noise, babble, another voice."""
    def say():
        eng, v = gen.voices[rng.integers(len(gen.voices))]
        return tts(eng, v, phrases.BABBLE[rng.integers(len(phrases.BABBLE))], int(rng.integers(150, 200)), 50)
    return {"pink": pink, "babble": lambda n: babble(n, rng, gen.voices, split), "say": say}


def write_wav(path, pcm):
    import struct
    data = pcm.tobytes()
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16))
        f.write(b"data" + struct.pack("<I", len(data)) + data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="corpus-out")
    ap.add_argument("--split", default="both", choices=["train", "test", "both"])
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--noise-set", default="default", choices=["default", "holdout"],
                    help="holdout: noises and impairments the analyser was not tuned on (holdout.py)")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help="comma list of TTS engines (default: all, festival included; "
                         "espeak,flite draws the corpora of before festival)")
    ap.add_argument("--classes", default="",
                    help="comma list: draw only these classes (a stress corpus), e.g. sit,busy,reorder")
    ap.add_argument("--snr", default="",
                    help="LO:HI dB: noise on every clip but silence, its SNR drawn from this range "
                         "instead of 6-45 on 75 %% of clips (babble stays at 10 dB or more)")
    ap.add_argument("--espeak-voices", default="",
                    help="comma list of espeak-ng voices (e.g. de+m3,fr+f2,hi): every voice of the draw "
                         "is one of these instead of the split's voices (a held-out-voice draw)")
    a = ap.parse_args()
    espeak_voices = [v.strip() for v in a.espeak_voices.split(",") if v.strip()]
    classes = [c.strip() for c in a.classes.split(",") if c.strip()]
    known = [c for c, _ in COMPOSITION]
    if any(c not in known for c in classes):
        ap.error(f"--classes: choose from {','.join(known)}")
    snr_range = None
    if a.snr:
        try:
            lo, hi = (float(v) for v in a.snr.split(":"))
        except ValueError:
            ap.error("--snr: LO:HI in dB, e.g. 6:12")
        if not lo <= hi:
            ap.error("--snr: LO must not exceed HI")
        snr_range = (lo, hi)
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        ap.error(f"--engines: unknown {','.join(bad) or '(empty)'}; choose from {','.join(ENGINES)}")
    for i, s in enumerate(["train", "test"]):
        if a.split in (s, "both"):
            generate(s, a.count, a.out, a.seed * 10 + i, engines, a.noise_set, classes, snr_range,
                     espeak_voices)


if __name__ == "__main__":
    main()
