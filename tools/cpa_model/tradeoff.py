#!/usr/bin/env python3
"""How early can a machine verdict come? Reads the per-frame dumps of
`outdial cpa --eval LABELS.csv --dump-features > DUMP.tsv` and prints, for
the human and machine clips:

1. the answer-to-speech-onset delay and the first utterance's speech span by
   class (how many live answers are still talking at 1.2 ... 3.2 s of span);
2. an oracle bound: the machine-verdict median if every machine were called
   the moment its span reaches X (a perfect classifier at X), against the
   share of humans still talking, undecided, at X (what any classifier at X
   must tell apart);
3. a logistic model on 13 structural and spectral features at span
   checkpoints, trained on the first dump and scored on the others: the share
   of machines it catches at X when its threshold lets through 1, 2 or 3 % of
   all humans (thresholds set on each scored set itself: an optimistic bound).

Only numpy. Usage:
  tools/cpa_model/tradeoff.py TRAIN.tsv TEST.tsv [TEST2.tsv ...]
"""

import csv
import sys

import numpy as np

FRAME_MS = 20
SPANS = [1200, 1600, 2000, 2400, 2800, 3200]
CHECKPOINTS = [1400, 1600, 1800, 2000, 2400]
FEATURES = ["longest gap", "gaps >= 100 ms", "gaps >= 200 ms", "speech share", "onset delay",
            "level spread", "energy peaks/s", "last run", "high-band share", "level slope",
            "f1 spread", "harmonic share", "SNR"]


def load(path):
    """Clips of class human/machine: dict of per-frame arrays plus the normal verdict."""
    clips = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["class"] not in ("human", "machine"):
                continue
            c = clips.setdefault(r["clip"], {"cls": r["class"], "verdict": r["verdict"],
                                             "verdict_ms": int(r["verdict_ms"]), "rows": []})
            c["rows"].append([float(r[k]) for k in (
                "at_ms", "in_speech", "span_ms", "onset_ms", "band_db", "floor_db", "f1",
                "series", "high")])
    out = []
    for c in clips.values():
        a = np.array(c.pop("rows"))
        c.update(at=a[:, 0], sp=a[:, 1] > 0, span=a[:, 2], onset=a[:, 3], db=a[:, 4],
                 floor=a[:, 5], f1=a[:, 6], series=a[:, 7], high=a[:, 8])
        out.append(c)
    return out


def first_span(c):
    """Span of the first utterance: at the first 700 ms pause, else the longest."""
    started = np.nonzero(c["onset"] >= 0)[0]
    if len(started) == 0:
        return 0.0
    sp = c["sp"]
    for i in started:
        if not sp[i] and i >= 35 and not sp[i - 34:i + 1].any():
            return c["span"][i]
    return c["span"].max()


def at_span(c, x):
    """Frame index where the span first reaches x while speaking and the normal
    analyser had not decided yet, or None."""
    w = np.nonzero((c["span"] >= x) & c["sp"] & (c["at"] < c["verdict_ms"]))[0]
    return w[0] if len(w) else None


def features(c, i):
    o = max(int(c["onset"][i]) // FRAME_MS - 1, 0)
    s = c["sp"][o:i + 1]
    span = max(c["span"][i], FRAME_MS)
    idx = np.nonzero(s)[0]
    d = np.diff(idx) - 1
    gaps = d[d > 0] * FRAME_MS if (d > 0).any() else np.array([0])
    last_run = (len(s) - idx[np.nonzero(d > 0)[0][-1] + 1]) * FRAME_MS if (d > 0).any() else len(s) * FRAME_MS
    db = c["db"][o:i + 1]
    sdb = db[s]
    peaks = sum(1 for k in range(2, len(db) - 2)
                if s[k] and db[k] >= db[k - 2:k + 3].max() and db[k] - min(db[k - 2], db[k + 2]) > 3)
    slope = np.polyfit(np.arange(len(sdb)), sdb, 1)[0] * 50 if len(sdb) > 3 else 0.0
    return np.array([gaps.max(), (gaps >= 100).sum(), (gaps >= 200).sum(), s.sum() * FRAME_MS / span,
                     c["onset"][i], sdb.std(), peaks / (span / 1000), last_run, c["high"][o:i + 1][s].mean(),
                     slope, np.log(c["f1"][o:i + 1][s] + 50).std(), c["series"][o:i + 1][s].mean(),
                     sdb.mean() - c["floor"][i]])


def fit(x, y, l2=3.0):
    """L2-regularised logistic regression by Newton's method (standardised inputs)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = l2 * np.r_[np.ones(len(w) - 1), 0.0]
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ w))
        h = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg)
        w -= np.linalg.solve(h, z.T @ (p - y) + reg * w)
    return mu, sd, w


def predict(m, x):
    mu, sd, w = m
    return 1 / (1 + np.exp(-(((x - mu) / sd) @ w[:-1] + w[-1])))


def checkpoint_set(clips, x):
    rows = [(features(c, i), c["cls"] == "machine") for c in clips if (i := at_span(c, x)) is not None]
    return np.array([f for f, _ in rows]), np.array([m for _, m in rows], float)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sets = [(p, load(p)) for p in sys.argv[1:]]
    print("## 1. onset delay and first-utterance span")
    for path, clips in sets:
        for cls in ("human", "machine"):
            g = [c for c in clips if c["cls"] == cls]
            on = np.array([c["onset"][c["onset"] >= 0][0] for c in g if (c["onset"] >= 0).any()])
            fs = np.array([first_span(c) for c in g])
            over = " ".join(f">{x / 1000:.1f}s {100 * (fs > x).mean():.1f}%" for x in SPANS)
            print(f"{path} {cls} n={len(g)} onset median {np.median(on):.0f} ms (p10 {np.percentile(on, 10):.0f}, "
                  f"p90 {np.percentile(on, 90):.0f}); span median {np.median(fs):.0f} ms; {over}")
    print("\n## 2. oracle: machine median if called at span X | humans still talking, undecided, at X")
    for path, clips in sets:
        m = [c for c in clips if c["cls"] == "machine"]
        h = [c for c in clips if c["cls"] == "human"]
        cells = []
        for x in CHECKPOINTS + [2800, 3200]:
            t = [c["at"][i] if (i := at_span(c, x)) is not None else c["verdict_ms"] for c in m]
            still = sum(at_span(c, x) is not None for c in h)
            cells.append(f"{x}: {np.median(t):.0f} ms | {100 * still / len(h):.1f}%")
        print(path, "; ".join(cells))
    print("\n## 3. logistic model at span X: machines caught at 1/2/3 % of all humans called machine")
    train = sets[0][1]
    for x in CHECKPOINTS:
        a, y = checkpoint_set(train, x)
        m = fit(a, y)
        cells = []
        for path, clips in sets[1:]:
            b, z = checkpoint_set(clips, x)
            p = predict(m, b)
            nh = sum(c["cls"] == "human" for c in clips)
            nm = sum(c["cls"] == "machine" for c in clips)
            hp = np.sort(p[z == 0])[::-1]
            got = []
            for fp in (0.01, 0.02, 0.03):
                k = int(fp * nh)
                thr = hp[k] if k < len(hp) else 0.0
                got.append(f"{100 * (p[z == 1] > thr).sum() / nm:.0f}%")
            cells.append(f"{path} {'/'.join(got)}")
        top = np.argsort(-np.abs(m[2][:-1]))[:3]
        print(f"X={x}: " + "; ".join(cells) + " (largest weights: "
              + ", ".join(f"{FEATURES[k]} {m[2][k]:+.2f}" for k in top) + ")")


if __name__ == "__main__":
    main()
