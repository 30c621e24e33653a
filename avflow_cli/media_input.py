"""ffmpeg input that can open only the one file it is given (docs/serve.md, "Security").

ffmpeg picks a demuxer by looking at a file's bytes, and several demuxers open *other* files the
input names: an HLS/M3U playlist, a concat or ffconcat list, an SDP description, a DASH manifest,
image2 patterns, QuickTime external references; protocols such as ``subfile:``, ``concat:``,
``data:`` or ``http:`` do the same from a name. A user's "recording" that is a playlist naming
``/home/…/secret.mp4`` would make ffmpeg read that file instead — on a server, the file of the
server. So every ffmpeg input avflow opens goes through here:

1. :func:`sniff_container` reads the first bytes and names the container, accepting only a
   whitelist of self-contained formats (:data:`CONTAINERS`); anything else (playlists and lists
   of other files first) is refused with one line, before ffmpeg sees it;
2. :func:`ffmpeg_input_args` / :func:`ffmpeg_input_options` pin that demuxer (``-f``), allow only
   the ``file`` and ``pipe`` protocols, turn QuickTime external references off, and pass the path
   as ``file:<absolute path>`` so no part of a name is read as a protocol; bytes fed on stdin
   (a live recording) use :func:`identify` on their first bytes and :func:`ffmpeg_pipe_input_args`.

The sniffing alone decides nothing about safety: with the demuxer pinned, a playlist that looks
like an MP3 is decoded as (broken) MP3 and opens nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avflow_cli.errors import InputFileError

SAFE_PROTOCOLS = "file,pipe"  # ffmpeg's -protocol_whitelist for every input avflow opens
SNIFF_BYTES = 64


@dataclass(frozen=True)
class Container:
    """A self-contained media format and the ffmpeg demuxer that reads it."""

    name: str  # what a user reads in messages
    demuxer: str  # ffmpeg's -f


WAV = Container("wav", "wav")
FLAC = Container("flac", "flac")
OGG = Container("ogg", "ogg")
MP3 = Container("mp3", "mp3")
AAC = Container("aac (adts)", "aac")
AIFF = Container("aiff", "aiff")
MATROSKA = Container("webm/matroska", "matroska")
MP4 = Container("mp4/mov", "mov")
AVI = Container("avi", "avi")
Y4M = Container("y4m", "yuv4mpegpipe")
CONTAINERS = (WAV, FLAC, OGG, MP3, AAC, AIFF, MATROSKA, MP4, AVI, Y4M)
ACCEPTED = ", ".join(c.name for c in CONTAINERS)
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


def _after_id3(head: bytes) -> int:
    """Offset of what follows an ID3v2 tag at the start (its size is four 7-bit bytes)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)  # + footer


def _mpeg_audio(head: bytes) -> Container | None:
    """MP3 (MPEG-1/2 layer I–III) or ADTS AAC by the frame sync word."""
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0xF6 == 0xF0:  # 1111 x00x: ADTS (layer bits 00)
        return AAC
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    return MP3 if version != 0x1 and layer != 0 else None


def identify(head: bytes) -> Container | None:
    """The whitelisted container whose signature ``head`` (a file's first bytes) starts with."""
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return WAV
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AVI
    if head[:4] == b"fLaC":
        return FLAC
    if head[:4] == b"OggS":
        return OGG
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return AIFF
    if head[:4] == b"\x1aE\xdf\xa3":  # EBML
        return MATROSKA
    if head[4:8] in _MP4_BOXES:
        return MP4
    if head[:10] == b"YUV4MPEG2 ":
        return Y4M
    return _mpeg_audio(head)


def _what_it_is(head: bytes) -> str:
    """A short description of a refused file, naming the dangerous kinds plainly."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"#extm3u") or text.startswith(b"#ext-x-"):
        return "an HLS/M3U playlist, which names other files"
    if text.startswith(b"ffconcat"):
        return "an ffconcat list, which names other files"
    if text.startswith(b"file ") or text.startswith(b"file\t"):
        return "a concat list, which names other files"
    if text.startswith(b"v=0"):
        return "an SDP session description, which opens network streams"
    if text.startswith(b"<"):
        return "an XML/HTML document (e.g. a DASH manifest, which names other files)"
    if not head:
        return "an empty file"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return "a text file" if printable >= 0.95 * len(head) else "data of an unknown format"


def sniff_container(path: str | Path, kind: str = "audio/video file") -> Container:
    """The container of the file at ``path`` from its bytes, or :class:`InputFileError` ("not a
    readable ``kind``: …") when it is not one of :data:`CONTAINERS` (playlists, concat lists, SDP,
    manifests, unknown data)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
            skip = _after_id3(head)
            if skip:  # an ID3 tag before the audio: mp3 mostly, sometimes flac or aac
                fh.seek(skip)
                after = fh.read(SNIFF_BYTES)
                found = identify(after)
                return found if found in (FLAC, AAC, MP3) else MP3  # mp3 frames may follow padding
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a folder, not a media file") from None
    except OSError as err:
        raise InputFileError(path, f"cannot read ({err.strerror})") from None
    found = identify(head)
    if found is None:
        raise InputFileError(path, f"not a readable {kind}: {_what_it_is(head)} (accepted containers: "
                                   f"{ACCEPTED}; playlists and lists of other files are refused)")
    return found


def ffmpeg_input_options(container: Container) -> dict[str, str]:
    """Input options (ffmpeg-python's ``ffmpeg.input``/``ffmpeg.probe`` keywords) that pin the
    demuxer and allow only local files and pipes."""
    options = {"f": container.demuxer, "protocol_whitelist": SAFE_PROTOCOLS}
    if container is MP4:
        options["enable_drefs"] = "0"  # QuickTime external data references (off by default: keep it so)
    return options


def ffmpeg_url(path: str | Path) -> str:
    """``file:<absolute path>``: nothing in the name is read as a protocol (``concat:``, ``data:`` …)."""
    return "file:" + str(Path(path).absolute())


def ffmpeg_input_args(path: str | Path, container: Container | None = None) -> list[str]:
    """Command-line arguments ``[… -i file:PATH]`` for one pinned input (sniffed when not given)."""
    container = container or sniff_container(path)
    args: list[str] = []
    for key, value in ffmpeg_input_options(container).items():
        args += [f"-{key}", value]
    return [*args, "-i", ffmpeg_url(path)]


def ffmpeg_pipe_input_args(container: Container) -> list[str]:
    """``[… -i pipe:0]`` for bytes fed on stdin (e.g. a live recording), its container found by
    :func:`identify` on the first bytes; only the pipe protocol is allowed."""
    args: list[str] = []
    for key, value in {**ffmpeg_input_options(container), "protocol_whitelist": "pipe"}.items():
        args += [f"-{key}", value]
    return [*args, "-i", "pipe:0"]
