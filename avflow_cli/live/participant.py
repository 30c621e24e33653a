"""The participant as the live session hears and sees it: audio → tokens, camera frames → face features.

Both are computed incrementally and kept on the session timeline (participant audio sample ``i``
is at ``i / rate`` seconds; a camera frame at the ``t`` it was pushed with):

- :class:`StreamResampler` brings audio of any rate to the recogniser's 16 kHz chunk by chunk
  (polyphase filter with carried context: equal to resampling the whole signal, bar its first
  samples).
- :class:`ParticipantTokens` turns the words of :class:`~.recognizer.StreamingRecognizer` into the
  same alignment-form token logits as offline (``ctc_logits`` over each utterance's words); rows
  of times the recogniser has not settled yet are its best guess so far (the caller revises them).
- :class:`ParticipantFace` runs the landmark tracker (participant/face_tracker.py's detector and
  shape predictor, searching near the last face first: :class:`CropTracker`) on at most
  ``rate`` frames per second (a backlog keeps the newest ``MAX_BACKLOG``); a frame in which the
  detector finds no face holds the last features (before any face: none, the model's "no guidance"
  value).

Letters: n model frames, D = 56 participant features, 29 token labels.
"""

from __future__ import annotations

import io
import threading
from math import gcd
from typing import Any

import numpy as np

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.live.recognizer import StreamingRecognizer, HeardUtterance

FACE_RATE = 10.0  # tracked camera frames per second at most (dlib HOG + 68 landmarks: ~25 ms each at 320 px)
MAX_BACKLOG = 8  # frames waiting to be tracked at most (a slower tracker drops the oldest)
TRACK_SIDE = 320  # frames are downscaled so their longer side is at most this before tracking
FILTER_HALF = 16  # input samples of filter context kept each side by the stream resampler (× down/up)


class StreamResampler:
    """Mono float audio at ``rate`` → 16 kHz, chunk by chunk, never re-reading old samples twice."""

    def __init__(self, rate: int, target: int = K.TOKEN_SAMPLE_RATE) -> None:
        g = gcd(int(rate), int(target))
        self.up, self.down = int(target) // g, int(rate) // g
        self.ctx = self.down * max(1, -(-FILTER_HALF * 10 // max(self.down, 1)))  # a multiple of down, ≥ 10·FILTER_HALF
        self.buf = np.zeros(self.ctx, np.float32)  # left context (zeros before the start) + unprocessed
        self.identity = self.up == self.down == 1

    def push(self, x: np.ndarray) -> np.ndarray:
        """(n,) at ``rate`` → the 16 kHz samples now final (m,)."""
        x = np.asarray(x, np.float32).reshape(-1)
        if self.identity:
            return x
        from scipy.signal import resample_poly

        self.buf = np.concatenate([self.buf, x])
        units = (len(self.buf) - 2 * self.ctx) // self.down  # whole groups with right context
        if units <= 0:
            return np.zeros(0, np.float32)
        end = self.ctx + units * self.down
        y = resample_poly(self.buf[: end + self.ctx], self.up, self.down)  # (len·up/down,)
        a = self.ctx * self.up // self.down
        out = y[a : a + units * self.up].astype(np.float32)
        self.buf = self.buf[end - self.ctx :]
        return out

    def flush(self) -> np.ndarray:
        """The rest, with zeros as right context."""
        if self.identity:
            return np.zeros(0, np.float32)
        pad = (-(len(self.buf) - self.ctx)) % self.down
        tail = len(self.buf) - self.ctx
        out = self.push(np.zeros(pad + self.ctx, np.float32))
        return out[: int(np.ceil(tail * self.up / self.down))]


class ParticipantTokens:
    """Participant audio (any rate) → recogniser words → token rows at FPS (module docstring)."""

    def __init__(self, sample_rate: int, token_source: str, recognizer: StreamingRecognizer | None = None) -> None:
        from avflow_cli.participant.tokens import silence_tokens

        self.rate = int(sample_rate)
        self.resampler = StreamResampler(self.rate)
        self.recognizer = recognizer if recognizer is not None else StreamingRecognizer()
        self.blank = silence_tokens(1, token_source)[0]  # (29,)
        self.received = 0  # samples at `rate`
        self._cache: dict[int, tuple[tuple, float, np.ndarray]] = {}  # id(utt) → (words, start, logits at 50 Hz)

    @property
    def received_s(self) -> float:
        return self.received / self.rate

    def push(self, pcm: np.ndarray) -> None:
        self.received += len(pcm)
        self.recognizer.push(self.resampler.push(pcm))

    def finish(self) -> None:
        self.recognizer.push(self.resampler.flush())
        self.recognizer.finish()

    def _logits(self, utt: HeardUtterance) -> tuple[float, np.ndarray]:
        from avflow_cli.audio.alignment_tokens import ctc_logits, normalize_word, num_token_frames, phone_spans

        key = tuple(utt.words)
        hit = self._cache.get(id(utt))
        if hit is not None and hit[0] == key and len(hit[2]) >= num_token_frames(utt.end - utt.start):
            return hit[1], hit[2]
        spans = [s for s in ((normalize_word(w), a - utt.start, b - utt.start) for w, a, b in utt.words) if s[0]]
        phones = phone_spans({"words": spans})
        logits = ctc_logits(spans, num_token_frames(utt.end - utt.start), phones)  # (N_tok, 29)
        self._cache[id(utt)] = (key, utt.start, logits)
        return utt.start, logits

    def rows(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token rows (n, 29) at session ``times`` (n,) from the words recognised so far (partial ones
        included: the best guess), the blank row outside utterances; and which rows will not change
        any more (n,) bool (settled by the recogniser)."""
        times = np.asarray(times, np.float64)
        out = np.repeat(self.blank[None], len(times), axis=0).astype(np.float32)
        known = times < min(self.recognizer.settled_s, self.received_s)
        utts = self.recognizer.all_utterances()
        live = {id(u) for u in utts}
        self._cache = {k: v for k, v in self._cache.items() if k in live}
        for utt in utts:
            inside = (times >= utt.start) & (times < utt.end)
            if not inside.any() or not utt.words:
                continue
            t0, logits = self._logits(utt)
            tt = t0 + np.arange(len(logits)) / K.TOKEN_RATE  # (N_tok,)
            idx = np.flatnonzero(inside)
            out[idx] = np.stack([np.interp(times[idx], tt, logits[:, d]) for d in range(logits.shape[1])], axis=1)
        return out, known

    def forget(self, before_s: float) -> None:
        self.recognizer.forget(before_s)


class CropTracker:
    """68 landmarks per frame at live cost: the face is searched (dlib HOG, public attributes of the
    offline :class:`~avflow_cli.participant.face_tracker.LandmarkTracker`) in a crop twice its last
    box, upsampled only when the face is small, and in the whole frame only when the crop has none.
    A frame whose search finds no face returns None (the caller holds the last features); the
    offline tracker instead keeps fitting inside the last box for half a second.
    Measured on franck.mp4 at 320 px: docs/live.md."""

    MIN_FACE = 90  # box side (px) below which the crop is searched at twice its size (HOG finds ≥ 80 px)

    def __init__(self) -> None:
        from avflow_cli.participant.face_tracker import LandmarkTracker

        full = LandmarkTracker()
        self.detector, self.predictor = full.detector, full.predictor
        self.box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 of the last face
        self.full_searches = 0

    def _search(self, rgb: np.ndarray, box: tuple[int, int, int, int] | None) -> Any:
        import dlib

        h, w = rgb.shape[:2]
        if box is None:
            self.full_searches += 1
            rects = self.detector(rgb, 1)
            return max(rects, key=lambda r: r.area()) if rects else None
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        a, b = max(0, cx - side), max(0, cy - side)
        crop = np.ascontiguousarray(rgb[b : min(h, cy + side), a : min(w, cx + side)])
        rects = self.detector(crop, 1 if side < self.MIN_FACE else 0)
        if not rects:
            return None
        r = max(rects, key=lambda r: r.area())
        return dlib.rectangle(r.left() + a, r.top() + b, r.right() + a, r.bottom() + b)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        rect = self._search(rgb, self.box)
        if rect is None and self.box is not None:
            rect = self._search(rgb, None)  # moved out of the crop
        if rect is None:
            self.box = None
            return None
        self.box = (rect.left(), rect.top(), rect.right(), rect.bottom())
        shape = self.predictor(rgb, rect)
        pts = np.array([[shape.part(k).x, shape.part(k).y] for k in range(68)], dtype=np.float64)  # (68, 2)
        if min(pts.max(axis=0) - pts.min(axis=0)) < 8 or not np.isfinite(pts).all():  # collapsed fit
            return None
        return pts


def decode_image(image: Any) -> np.ndarray:
    """A camera frame as RGB uint8 (H, W, 3): an array as given, or JPEG/PNG bytes decoded."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(bytes(image))) as im:
                return np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise AvflowError(f"camera frame is not a readable image ({err})") from err
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise AvflowError(f"camera frames must be RGB uint8 (H, W, 3) or JPEG bytes, got {arr.shape} {arr.dtype}")
    return arr


class ParticipantFace:
    """Camera frames → participant features (56,) on the session timeline (module docstring)."""

    def __init__(self, dim: int, rate: float = FACE_RATE, tracker: Any = None) -> None:
        self.dim = int(dim)
        self.min_gap = 1.0 / float(rate)
        self._tracker = tracker
        self._tracker_lock = threading.Lock()
        self.pending: list[tuple[float, Any]] = []  # (t, frame) not yet tracked, oldest first
        self.last_tracked = -1e9
        self.times: list[float] = []  # tracked frame times, increasing
        self.features: list[np.ndarray | None] = []  # (56,) each, None before the first face
        self.smiles: list[float] = []  # the tracker's smile estimate (demo-avatar parameter units), nan before a face
        self.frames_in = 0
        self.frames_tracked = 0
        self.frames_without_face = 0
        self.frames_dropped = 0  # pushed faster than tracked: the oldest were dropped
        self.track_s = 0.0  # seconds spent tracking

    @property
    def tracker(self) -> Any:
        with self._tracker_lock:  # a warm-up thread may be loading it
            if self._tracker is None:
                self._tracker = CropTracker()
            return self._tracker

    def warm_up(self) -> None:
        """Load dlib's models (1–2 s) and search one blank frame, so the first camera frame does not
        stall the output (it did by 0.5 s: the models loading in the background, then the first
        face's feature mapping importing the demo generator and scipy)."""
        from avflow_cli.participant.face_tracker import TARGETS, targets_to_features

        self.tracker(np.zeros((TRACK_SIDE * 3 // 4, TRACK_SIDE, 3), np.uint8))
        targets_to_features(np.zeros((1, len(TARGETS)), np.float32))

    def push(self, image: Any, t: float) -> None:
        """Queue the frame for :meth:`track` (a backlog beyond ``MAX_BACKLOG`` keeps the newest)."""
        self.frames_in += 1
        self.pending.append((float(t), image))
        if len(self.pending) > MAX_BACKLOG:
            self.frames_dropped += len(self.pending) - MAX_BACKLOG
            del self.pending[:-MAX_BACKLOG]

    def track(self) -> None:
        """Track the queued frames the rate allows (each at least 1/rate after the last tracked)."""
        import time

        while self.pending:
            t, image = self.pending.pop(0)
            if t - self.last_tracked < self.min_gap - 1e-9:
                continue
            start = time.perf_counter()
            rgb = decode_image(image)
            scale = TRACK_SIDE / max(rgb.shape[:2])
            if scale < 1.0:
                from PIL import Image

                h, w = rgb.shape[:2]
                rgb = np.asarray(Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                             Image.BILINEAR))
            landmarks = self.tracker(rgb)
            self.last_tracked = t
            self.frames_tracked += 1
            if landmarks is None:
                self.frames_without_face += 1
                feat = self.features[-1] if self.features else None
                smile = self.smiles[-1] if self.smiles else float("nan")
            else:
                from avflow_cli.participant.face_tracker import TARGETS, predict_targets, targets_to_features

                targets = predict_targets(landmarks[None])  # (1, 9)
                feat = targets_to_features(targets)[0].astype(np.float32)
                smile = float(targets[0, TARGETS.index("smile")])
            self._append(t, feat, smile)
            self.track_s += time.perf_counter() - start

    def push_features(self, rows: np.ndarray, t: float, rate: float) -> None:
        """Precomputed feature rows (k, 56) starting at ``t``, one per 1/``rate`` s (offline tracking)."""
        rows = np.atleast_2d(np.asarray(rows, np.float32))
        if rows.shape[1] != self.dim:
            raise AvflowError(f"participant features have {rows.shape[1]} columns; this model reads {self.dim}")
        for i, row in enumerate(rows):
            self._append(t + i / rate, row, float("nan"))

    def _append(self, t: float, feat: np.ndarray | None, smile: float) -> None:
        if self.times and t < self.times[-1]:
            return  # out of order: the timeline only moves forward
        self.times.append(t)
        self.features.append(feat)
        self.smiles.append(smile)

    def rows(self, times: np.ndarray) -> np.ndarray | None:
        """Features (n, 56) at session ``times``: the newest tracked frame at or before each time
        (held past the newest one); rows before any face are nan (→ "no guidance"). None before any face."""
        if all(f is None for f in self.features):
            return None
        idx = np.searchsorted(np.asarray(self.times), np.asarray(times, np.float64), side="right") - 1  # (n,)
        out = np.full((len(idx), self.dim), np.nan, np.float32)
        for i, k in enumerate(idx):
            if k >= 0 and self.features[k] is not None:
                out[i] = self.features[k]
        return out

    def forget(self, before_s: float) -> None:
        """Drop tracked frames older than ``before_s`` (keeps the newest one before it, held)."""
        cut = int(np.searchsorted(np.asarray(self.times), before_s, side="right")) - 1
        if cut > 0:
            del self.times[:cut], self.features[:cut], self.smiles[:cut]
