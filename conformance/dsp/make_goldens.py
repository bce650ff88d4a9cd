#!/usr/bin/env python3
"""Golden files for edgeflow-dsp, from reference implementations.

What this writes (conformance/dsp/goldens/), all float32 .npy unless noted, every
time-frequency array laid out (frames, features) as edgeflow outputs it:

  speech.json            which recording, its CRC-32 and how it is turned into 1 s of
                         16 kHz int16 (the recording itself is not committed: it is read
                         from the Debian package at test time)
  mel_slaney.npy         librosa.feature.melspectrogram, Slaney scale + Slaney norm  (49, 40)
  mel_htk.npy            librosa, htk=True, norm=None                                (49, 40)
  mel_htk_numpy.npy      an independent numpy HTK filterbank (2595 log10(1 + f/700))  (49, 40)
  mfcc.npy               librosa.feature.mfcc on power_to_db(mel_slaney), 13 coeffs   (49, 13)
  mfcc_lifter.npy        the same with lifter=22                                      (49, 13)
  kws_mfcc.npy           the KWS pipeline: pre-emphasis 0.97 (zi=0), Hann 512, power
                         spectrum, 40 Slaney mels 20..8000 Hz, dB, DCT-II ortho, 10    (49, 10)
  spectrogram.npy        |librosa.stft| (n_fft 512, hop 320, Hann, center=False)     (49, 257)
  imu_input.npy          a synthetic 3-axis accelerometer record (seeded)            (256, 3)
  stats.npy              numpy / scipy.stats statistics of each axis                 (3, 9)
  iir_lowpass.npy        scipy.signal.sosfilt with butter(4, 5 Hz, fs=100) per axis  (3, 256)
  iir_highpass.npy       the same with butter(2, 0.5 Hz, 'highpass')                 (3, 256)
  fft_mag.npy            |numpy.fft.rfft(x * hann_periodic(128), 128)| of axis windows (3, 65)
  band_power.npy         sums of |X|^2 over bands [0.5, 2, 5, 10, 20, 50] Hz        (3, 5)
  image.npy              a synthetic 30x40 RGB image, uint8                          (30, 40, 3)
  resize_bilinear.npy    tf.image.resize(image, (48, 48), 'bilinear')                (48, 48, 3)
  resize_nearest.npy     tf.image.resize(image, (48, 48), 'nearest')                 (48, 48, 3)
  resize_down.npy        tf.image.resize(crop(image, y=2, x=3, 24, 32), (12, 13))    (12, 13, 3)
  gray.npy               tf.image.rgb_to_grayscale(image) (float)                    (30, 40, 1)

Reference versions are pinned in conformance/dsp/requirements.txt (Python 3.11):
numpy 2.4.6, scipy 1.17.1, librosa 0.11.0, tensorflow-cpu 2.21.0.

The speech comes from Debian's alsa-utils package (/usr/share/sounds/alsa/Front_Center.wav,
a 48 kHz mono 16-bit recording of a human voice): `apt-get install alsa-utils`.
It is decimated to 16 kHz exactly as the Rust test does: the floor of the mean of three
consecutive samples (integer arithmetic), first 16000 samples.

Run from the repository root:
    python3 -m venv .venv-dsp && .venv-dsp/bin/pip install -r conformance/dsp/requirements.txt
    .venv-dsp/bin/python conformance/dsp/make_goldens.py
"""

import json
import os
import wave
import zlib

import numpy as np
import scipy.signal
import scipy.stats
import librosa

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "goldens")
WAV = "/usr/share/sounds/alsa/Front_Center.wav"

SR = 16000
N_FFT = 512
HOP = 320
N_MELS = 40


def save(name, a):
    a = np.ascontiguousarray(a)
    np.save(os.path.join(OUT, name), a)
    print(f"{name}: {a.dtype} {a.shape}")


def speech_16k():
    raw = open(WAV, "rb").read()
    with wave.open(WAV) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (48000, 2, 1)
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int64)
    n = 16000
    y = (x[: 3 * n : 3] + x[1 : 3 * n : 3] + x[2 : 3 * n : 3]) // 3
    meta = {
        "file": WAV,
        "package": "alsa-utils (Debian)",
        "crc32": zlib.crc32(raw),
        "bytes": len(raw),
        "decimation": "y[n] = floor((x[3n] + x[3n+1] + x[3n+2]) / 3), n < 16000",
        "samples": n,
        "sum_int16": int(y.sum()),
    }
    with open(os.path.join(OUT, "speech.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return y.astype(np.int16)


def htk_filterbank_numpy(sr, n_fft, n_mels, fmin, fmax):
    """Triangles between HTK-mel-spaced edges, peak 1, sampled at k * sr / n_fft."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
    return fb


def audio_goldens():
    pcm = speech_16k()
    y = pcm.astype(np.float32) / np.float32(32768.0)
    common = dict(n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, window="hann", center=False)
    stft = librosa.stft(y, **common)
    save("spectrogram.npy", np.abs(stft).T.astype(np.float32))
    power = np.abs(stft) ** 2
    mel_s = librosa.feature.melspectrogram(
        S=power, sr=SR, n_mels=N_MELS, fmin=20.0, fmax=8000.0, htk=False, norm="slaney"
    )
    save("mel_slaney.npy", mel_s.T.astype(np.float32))
    mel_h = librosa.feature.melspectrogram(
        S=power, sr=SR, n_mels=N_MELS, fmin=20.0, fmax=8000.0, htk=True, norm=None
    )
    save("mel_htk.npy", mel_h.T.astype(np.float32))
    fb = htk_filterbank_numpy(SR, N_FFT, N_MELS, 20.0, 8000.0)
    save("mel_htk_numpy.npy", (fb @ power.astype(np.float64)).T.astype(np.float32))
    db = librosa.power_to_db(mel_s, ref=1.0, amin=1e-10, top_db=None)
    save("mfcc.npy", librosa.feature.mfcc(S=db, n_mfcc=13, dct_type=2, norm="ortho").T)
    save(
        "mfcc_lifter.npy",
        librosa.feature.mfcc(S=db, n_mfcc=13, dct_type=2, norm="ortho", lifter=22).T,
    )
    pre = librosa.effects.preemphasis(y, coef=0.97, zi=0.0)
    p2 = np.abs(librosa.stft(pre, **common)) ** 2
    m2 = librosa.feature.melspectrogram(S=p2, sr=SR, n_mels=40, fmin=20.0, fmax=8000.0)
    d2 = librosa.power_to_db(m2, ref=1.0, amin=1e-10, top_db=None)
    save("kws_mfcc.npy", librosa.feature.mfcc(S=d2, n_mfcc=10, norm="ortho").T)


def imu_goldens():
    rng = np.random.default_rng(20240601)
    t = np.arange(256) / 100.0
    x = np.stack(
        [
            0.3 * np.sin(2 * np.pi * 1.5 * t) + 0.05 * rng.standard_normal(256),
            9.81 + 0.2 * np.sin(2 * np.pi * 7.0 * t) + 0.05 * rng.standard_normal(256),
            0.1 * np.cumsum(rng.standard_normal(256)) / 16.0 + 0.4 * np.sign(np.sin(2 * np.pi * 3.0 * t)),
        ],
        axis=1,
    ).astype(np.float32)
    save("imu_input.npy", x)
    a = x.T.astype(np.float64)
    zcr = [np.count_nonzero((r[1:] < 0) != (r[:-1] < 0)) / (len(r) - 1) for r in a]
    stats = np.stack(
        [
            a.mean(axis=1),
            a.min(axis=1),
            a.max(axis=1),
            np.sqrt((a * a).mean(axis=1)),
            a.std(axis=1),
            scipy.stats.skew(a, axis=1),
            scipy.stats.kurtosis(a, axis=1),
            np.array(zcr),
            np.ptp(a, axis=1),
        ],
        axis=1,
    )
    save("stats.npy", stats.astype(np.float32))
    lp = scipy.signal.butter(4, 5.0, btype="lowpass", fs=100.0, output="sos")
    save("iir_lowpass.npy", scipy.signal.sosfilt(lp, a, axis=1).astype(np.float32))
    hp = scipy.signal.butter(2, 0.5, btype="highpass", fs=100.0, output="sos")
    save("iir_highpass.npy", scipy.signal.sosfilt(hp, a, axis=1).astype(np.float32))
    w = a[:, :128] * scipy.signal.get_window("hann", 128, fftbins=True)
    mag = np.abs(np.fft.rfft(w, 128, axis=1))
    save("fft_mag.npy", mag.astype(np.float32))
    freqs = np.arange(65) * 100.0 / 128
    edges = [0.5, 2.0, 5.0, 10.0, 20.0, 50.0]
    bp = np.stack(
        [((mag**2) * ((freqs >= lo) & (freqs < hi))).sum(axis=1) for lo, hi in zip(edges, edges[1:])],
        axis=1,
    )
    save("band_power.npy", bp.astype(np.float32))


def image_goldens():
    import tensorflow as tf

    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:30, 0:40]
    img = np.stack(
        [
            (255 * xx / 39),
            (255 * yy / 29),
            (128 + 100 * np.sin(xx / 3.0) * np.cos(yy / 2.5)),
        ],
        axis=-1,
    )
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    save("image.npy", img)
    t = tf.constant(img)
    save("resize_bilinear.npy", tf.image.resize(t, (48, 48), method="bilinear").numpy())
    save("resize_nearest.npy", tf.image.resize(t, (48, 48), method="nearest").numpy().astype(np.float32))
    crop = tf.image.crop_to_bounding_box(t, 2, 3, 24, 32)
    save("resize_down.npy", tf.image.resize(crop, (12, 13), method="bilinear").numpy())
    save("gray.npy", tf.image.rgb_to_grayscale(tf.cast(t, tf.float32)).numpy())


def main():
    os.makedirs(OUT, exist_ok=True)
    audio_goldens()
    imu_goldens()
    image_goldens()


if __name__ == "__main__":
    main()
