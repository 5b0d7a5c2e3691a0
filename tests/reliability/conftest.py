"""Fixtures for the reliability suite: a socket guard, hostile input files, a read-only folder."""

from __future__ import annotations

import os
import socket
import struct
import zlib
from pathlib import Path

import pytest


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Fail on any socket connection or name lookup; the attempts are listed in the returned list."""
    attempts: list[object] = []

    def refuse(what):
        def refused(*args, **kwargs):
            attempts.append((what, args[1:2] if what == "connect" else args[:1]))
            raise NetworkUsed(f"network used: {what} {args[1:2] if what == 'connect' else args[:1]}")
        return refused

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    return attempts


#: installed in a subprocess before the studio runs: any connection or lookup ends the process
SOCKET_GUARD = r"""
import socket, sys
def _refuse(*args, **kwargs):
    sys.stderr.write("NETWORK USED %r\n" % (args[1:2] or args[:1],))
    sys.stderr.flush()
    import os; os._exit(99)
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.getaddrinfo = _refuse
socket.create_connection = _refuse
"""


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.fixture
def hostile(tmp_path):
    """Input files a user might hand in by mistake (or on purpose)."""
    from PIL import Image

    folder = tmp_path / "inputs"
    folder.mkdir()
    files = {
        "bomb": folder / "bomb.png",
        "text": folder / "notes.png",
        "truncated": folder / "cut.png",
        "good": folder / "good.png",
        "wav_corrupt": folder / "broken.wav",
        "wav_text": folder / "words.wav",
        "mid_text": folder / "words.mid",
        "lora_text": folder / "lora.safetensors",
        "dir_png": folder / "taken.png",
        "dir_wav": folder / "taken.wav",
        "dir_gif": folder / "taken.gif",
        "existing_png": folder / "exists.png",
        "existing_wav": folder / "exists.wav",
        "existing_mid": folder / "exists.mid",
        "existing_gif": folder / "exists.gif",
        "plain_file": folder / "plainfile",
        "directions_text": folder / "dirs.json",
    }
    files["bomb"].write_bytes(png_declaring(20000, 20000))
    files["text"].write_text("not an image")
    Image.new("RGB", (64, 64), "red").save(files["good"])
    files["truncated"].write_bytes(files["good"].read_bytes()[:40])
    files["wav_corrupt"].write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00")  # cut in the header
    files["wav_text"].write_text("hello")
    files["mid_text"].write_text("hello")
    files["lora_text"].write_text("hello")
    for key in ("dir_png", "dir_wav", "dir_gif"):
        files[key].mkdir()
    for key in ("existing_png", "existing_wav", "existing_mid", "existing_gif", "plain_file"):
        files[key].write_bytes(b"keep me")
    files["directions_text"].write_text("{ not json")
    return files


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder no file can be created in, as this user: permission bits for a normal user;
    for root (who ignores them) a read-only mount such as /sys, if there is one."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    from studio.core.data_files import folder_writable

    for candidate in (Path("/sys/fs"), Path("/sys"), Path("/proc/sys")):
        if candidate.is_dir() and not folder_writable(candidate):
            yield candidate
            return
    pytest.skip("running as root with no read-only mount to write into")


def snapshot(*folders: Path) -> set[Path]:
    """Every file under ``folders`` (to prove that nothing was written)."""
    found: set[Path] = set()
    for folder in folders:
        if folder.is_dir():
            found |= {p for p in folder.rglob("*") if p.is_file()}
    return found
