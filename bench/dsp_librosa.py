#!/usr/bin/env python3
"""librosa computing the KWS MFCC of crates/edgeflow-dsp/pipelines/kws_mfcc.toml on the
same 1 s of 16 kHz int16 audio (raw little-endian file given as argv[1]); prints the
median time per clip. Run by `cargo xtask bench-dsp` (versions: conformance/dsp/requirements.txt)."""

import sys
import time

import numpy as np
import librosa


def mfcc(y):
    pre = librosa.effects.preemphasis(y, coef=0.97, zi=0.0)
    s = np.abs(librosa.stft(pre, n_fft=512, hop_length=320, window="hann", center=False)) ** 2
    m = librosa.feature.melspectrogram(S=s, sr=16000, n_mels=40, fmin=20.0, fmax=8000.0)
    d = librosa.power_to_db(m, ref=1.0, amin=1e-10, top_db=None)
    return librosa.feature.mfcc(S=d, n_mfcc=10, norm="ortho")


def main():
    y = np.fromfile(sys.argv[1], dtype="<i2").astype(np.float32) / np.float32(32768.0)
    assert mfcc(y).shape == (10, 49)
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < 2.0 and len(times) < 10000):
        t = time.perf_counter()
        mfcc(y)
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(f"host, librosa {librosa.__version__}: {med * 1e6:.1f} µs per 1 s clip ({1 / med:.0f} clips/s)")


if __name__ == "__main__":
    main()
