"""ffmpeg input that opens only the file it is given (avflow_cli/media_input.py): containers are
sniffed from their bytes, playlists and lists of other files are refused, the demuxer is pinned."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avflow_cli.errors import InputFileError
from avflow_cli.media_input import MATROSKA, MP3, MP4, WAV, ffmpeg_input_args, sniff_container


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Half-second clips in every accepted container (made by ffmpeg/soundfile here)."""
    root = tmp_path_factory.mktemp("clips")
    wav = root / "a.wav"
    sf.write(wav, 0.2 * np.sin(np.arange(8000) / 5.0), 16000, subtype="PCM_16")
    out = {"wav": wav}
    for name, codec in (("flac", "flac"), ("ogg", "libopus"), ("mp3", "libmp3lame"), ("aac", "aac"), ("aiff", "pcm_s16be")):
        out[name] = root / f"a.{name}"
        fmt = ["-f", "adts"] if name == "aac" else []
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", codec, *fmt, str(out[name])], check=True)
    for name, codec in (("webm", "libvpx"), ("mp4", "libx264"), ("avi", "mjpeg"), ("y4m", "wrapped_avframe")):
        out[name] = root / f"v.{name}"
        extra = ["-pix_fmt", "yuv420p"] if name != "avi" else []
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=32x32:r=10:d=0.5", "-c:v", codec, *extra,
                        str(out[name])], check=True)
    return out


@pytest.mark.parametrize("name, demuxer", [("wav", "wav"), ("flac", "flac"), ("ogg", "ogg"), ("mp3", "mp3"),
                                           ("aac", "aac"), ("aiff", "aiff"), ("webm", "matroska"), ("mp4", "mov"),
                                           ("avi", "avi"), ("y4m", "yuv4mpegpipe")])
def test_accepted_containers_are_recognised_and_decode_with_their_demuxer(clips: dict[str, Path], name: str,
                                                                          demuxer: str) -> None:
    container = sniff_container(clips[name])
    assert container.demuxer == demuxer
    proc = subprocess.run(["ffprobe", "-v", "error", *ffmpeg_input_args(clips[name])[:-2], "-show_entries",
                           "format=format_name", "-of", "csv=p=0", ffmpeg_input_args(clips[name])[-1]],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr  # ffmpeg opens it with the pinned demuxer


def test_suffixes_do_not_matter_the_bytes_do(clips: dict[str, Path], tmp_path: Path) -> None:
    disguised = tmp_path / "recording.mp3"
    disguised.write_bytes(clips["webm"].read_bytes())
    assert sniff_container(disguised) is MATROSKA
    tagged = tmp_path / "tagged.bin"  # an ID3v2 tag (10-byte header, 20 bytes of frames) before mp3 frames
    tagged.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x14" + b"\x00" * 20 + clips["mp3"].read_bytes())
    assert sniff_container(tagged) is MP3


@pytest.mark.parametrize("text, what", [
    ("#EXTM3U\n#EXTINF:1,\n{secret}\n", "an HLS/M3U playlist"),
    ("\ufeff#EXTM3U\n{secret}\n", "an HLS/M3U playlist"),
    ("ffconcat version 1.0\nfile '{secret}'\n", "an ffconcat list"),
    ("file '{secret}'\n", "a concat list"),
    ("v=0\no=- 0 0 IN IP4 127.0.0.1\n", "an SDP session description"),
    ("<?xml version='1.0'?><MPD><BaseURL>{secret}</BaseURL></MPD>", "an XML/HTML document"),
    ("just some words about {secret}\n", "a text file"),
    ("", "an empty file"),
])
def test_files_that_name_other_files_are_refused(clips: dict[str, Path], tmp_path: Path, text: str, what: str) -> None:
    bad = tmp_path / "input.mp4"
    bad.write_text(text.format(secret=clips["mp4"]), encoding="utf-8")
    with pytest.raises(InputFileError, match="not a readable audio/video file: " + what) as info:
        sniff_container(bad)
    assert "playlists and lists of other files are refused" in str(info.value)


def test_input_args_pin_the_demuxer_and_allow_only_local_files(clips: dict[str, Path]) -> None:
    args = ffmpeg_input_args(clips["mp4"])
    assert args[-2:] == ["-i", "file:" + str(clips["mp4"].absolute())]
    options = dict(zip(args[:-2:2], args[1:-2:2]))
    assert options == {"-f": "mov", "-protocol_whitelist": "file,pipe", "-enable_drefs": "0"}
    assert sniff_container(clips["mp4"]) is MP4 and sniff_container(clips["wav"]) is WAV


def test_a_playlist_posing_as_mp3_opens_nothing_with_the_demuxer_pinned(clips: dict[str, Path], tmp_path: Path) -> None:
    """Defence in depth: an ID3 tag makes the sniffer say mp3, and the pinned mp3 demuxer then
    reads the playlist as (broken) audio — it never opens the file the playlist names."""
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:0.5,\n{clips['mp4']}\n#EXT-X-ENDLIST\n".encode()
    posing = tmp_path / "posing.mp3"
    posing.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + playlist)
    assert sniff_container(posing) is MP3
    out = tmp_path / "out.wav"
    proc = subprocess.run(["ffmpeg", "-v", "error", "-y", *ffmpeg_input_args(posing), "-f", "wav", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 or sf.info(str(out)).frames == 0  # nothing of the named video came out


def test_probe_video_refuses_a_playlist_without_running_ffprobe(clips: dict[str, Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from avflow_cli.vision.video import extract_audio, iter_frames, probe_video

    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a) or (_ for _ in ()).throw(AssertionError))
    playlist = tmp_path / "face.mp4"
    playlist.write_text(f"#EXTM3U\n#EXTINF:0.5,\n{clips['mp4']}\n")
    for call in (lambda: probe_video(playlist), lambda: next(iter_frames(playlist)),
                 lambda: extract_audio(playlist, tmp_path / "a.wav")):
        with pytest.raises(InputFileError, match="not a readable video: an HLS/M3U playlist"):
            call()
    assert started == [] and not (tmp_path / "a.wav").exists()


def test_probe_video_still_reads_real_videos(clips: dict[str, Path]) -> None:
    from avflow_cli.vision.video import iter_frames, probe_video

    info = probe_video(clips["webm"])
    assert (info.width, info.height, info.container) == (32, 32, MATROSKA)
    frames = np.concatenate(list(iter_frames(clips["mp4"], batch=2)))
    assert frames.shape == (5, 32, 32, 3) and frames.dtype == np.uint8


def test_bytes_on_a_pipe_decode_with_the_pinned_demuxer(clips: dict[str, Path]) -> None:
    from avflow_cli.media_input import OGG, ffmpeg_pipe_input_args, identify

    data = clips["ogg"].read_bytes()
    container = identify(data[:64])
    assert container is OGG
    args = ffmpeg_pipe_input_args(container)
    assert args[-2:] == ["-i", "pipe:0"] and dict(zip(args[:-2:2], args[1:-2:2]))["-protocol_whitelist"] == "pipe"
    proc = subprocess.run(["ffmpeg", "-v", "error", *args, "-f", "s16le", "-ac", "1", "-ar", "16000", "pipe:1"],
                          input=data, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert abs(len(proc.stdout) // 2 - 8000) < 400  # half a second at 16 kHz
    assert identify(b"#EXTM3U\n") is None
