"""GGUF metadata header reading, on synthetic files and on the real demo model."""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.serve.gguf import GGUFError, model_facts, read_metadata


def _string(text: str, wide: bool = True) -> bytes:
    data = text.encode()
    return struct.pack("<Q" if wide else "<I", len(data)) + data


def write_gguf(path: Path, kvs: list[tuple[str, int, Any]], version: int = 3) -> Path:
    """A header-only GGUF: (key, value type, value); type 9 takes (item type, items)."""
    wide = version >= 2
    count = "<Q" if wide else "<I"
    out = (
        b"GGUF" + struct.pack("<I", version) + struct.pack(count, 0) + struct.pack(count, len(kvs))
    )
    scalars = {4: "<I", 6: "<f", 7: "<?", 10: "<Q"}
    for key, kind, value in kvs:
        out += _string(key, wide) + struct.pack("<I", kind)
        if kind == 8:
            out += _string(value, wide)
        elif kind == 9:
            item_kind, items = value
            out += struct.pack("<I", item_kind) + struct.pack(count, len(items))
            for item in items:
                out += (
                    _string(item, wide) if item_kind == 8 else struct.pack(scalars[item_kind], item)
                )
        else:
            out += struct.pack(scalars[kind], value)
    path.write_bytes(out)
    return path


KVS = [
    ("general.architecture", 8, "llama"),
    ("tokenizer.ggml.tokens", 9, (8, ["<s>", "a", "bé"])),
    ("tokenizer.ggml.scores", 9, (6, [0.0, -1.0, -2.0])),
    ("general.file_type", 4, 15),
    ("tokenizer.chat_template", 8, "{% for m in messages %}{{ m.content }}{% endfor %}"),
    ("tokenizer.ggml.add_bos_token", 7, True),
]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reads_scalars_and_strings_and_skips_arrays(tmp_path: Path, version: int) -> None:
    path = write_gguf(tmp_path / "m.gguf", KVS, version)
    meta = read_metadata(path)
    assert meta["general.architecture"] == "llama" and meta["general.file_type"] == 15
    assert meta["tokenizer.ggml.tokens"] is None  # arrays skipped, what follows still read
    assert meta["tokenizer.ggml.add_bos_token"] is True
    assert model_facts(path) == {"quantization": "Q4_K_M", "gguf_chat_template": True}


def test_no_template_and_unknown_file_type(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "base.gguf", [("general.file_type", 4, 99)])
    assert model_facts(path) == {"quantization": "file_type 99", "gguf_chat_template": False}


def test_not_a_gguf_and_truncated_headers(tmp_path: Path) -> None:
    other = tmp_path / "x.gguf"
    other.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(GGUFError, match=r"is not a GGUF file \(bad magic b'PK"):
        read_metadata(other)
    full = write_gguf(tmp_path / "full.gguf", KVS).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(full[:60])
    with pytest.raises(GGUFError):
        read_metadata(cut)
    assert model_facts(cut) == {} and model_facts(tmp_path / "missing.gguf") == {}
    magic_only = tmp_path / "magic.gguf"
    magic_only.write_bytes(b"GGUF\x03\x00")
    with pytest.raises(GGUFError, match="truncated metadata"):
        read_metadata(magic_only)


def _header(kv_count: int, body: bytes) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, kv_count) + body


def _hostile(tmp_path: Path, name: str, data: bytes) -> GGUFError:
    path = tmp_path / name
    path.write_bytes(data)
    started = time.monotonic()
    with pytest.raises(GGUFError) as info:
        read_metadata(path)
    assert model_facts(path) == {}  # no facts, and no RecursionError or MemoryError
    assert time.monotonic() - started < 10  # not a walk to the end of a huge count
    return info.value


def test_arrays_nested_5000_deep_are_refused_not_a_recursion_error(tmp_path: Path) -> None:
    nested = struct.pack("<IQ", 9, 1) * 5000 + struct.pack("<IQ", 4, 0)
    body = _string("x") + struct.pack("<I", 9) + nested
    error = _hostile(tmp_path, "deep.gguf", _header(1, body))
    assert "arrays nest deeper than 8 levels" in str(error)
    # The neighbour that real files could hold: an array of arrays, read.
    shallow = (
        _string("x")
        + struct.pack("<I", 9)
        + struct.pack("<IQ", 9, 2)
        + struct.pack("<IQ", 4, 0) * 2
    )
    path = tmp_path / "shallow.gguf"
    path.write_bytes(_header(2, shallow + _string("general.file_type") + struct.pack("<II", 4, 15)))
    assert read_metadata(path, {"general.file_type"}) == {"general.file_type": 15}


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("keys", b"", "more than 16,000,000 keys and array items"),
        ("strings", _string("x") + struct.pack("<IIQ", 9, 8, 2**62), "keys and array items"),
        ("scalars", _string("x") + struct.pack("<IIQ", 9, 4, 2**62), "runs past the end"),
        ("string", _string("x") + struct.pack("<IQ", 8, 2**62), "runs past the end"),
    ],
)
def test_huge_counts_and_lengths_stop_at_once(
    tmp_path: Path, name: str, body: bytes, message: str
) -> None:
    kv_count = 2**62 if name == "keys" else 1
    error = _hostile(tmp_path, f"{name}.gguf", _header(kv_count, body))
    assert message in str(error)


def test_a_kept_string_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmbench.serve import gguf

    monkeypatch.setattr(gguf, "MAX_STRING", 1000)
    template = [("tokenizer.chat_template", 8, "x" * 1001)]
    error = _hostile(tmp_path, "long.gguf", write_gguf(tmp_path / "w.gguf", template).read_bytes())
    assert "a string of 1,001 bytes (more than 1,000)" in str(error)
    path = write_gguf(tmp_path / "ok.gguf", [("tokenizer.chat_template", 8, "x" * 1000)])
    assert read_metadata(path)["tokenizer.chat_template"] == "x" * 1000


@pytest.mark.real_server
def test_the_demo_model_is_q4_k_m_without_a_template(gemma_gguf: Path) -> None:
    assert model_facts(gemma_gguf) == {"quantization": "Q4_K_M", "gguf_chat_template": False}
    assert read_metadata(gemma_gguf, {"general.architecture"}) == {"general.architecture": "gemma3"}


@pytest.mark.parametrize(
    ("server_args", "warned"),
    [
        ((), True),
        (("--chat-template-kwargs", '{"x": 1}'), True),  # options for a template, not one
        (("--no-jinja", "--chat-template", "chatml"), False),
        (("--no-jinja", "--chat-template=gemma"), False),
        (("--chat-template", "chatml"), True),  # read as Jinja text "chatml": its own warning
        (("--chat-template-file", "t.jinja"), False),
    ],
)
def test_missing_template_warns_unless_one_is_given(
    tmp_path: Path, server_args: tuple[str, ...], warned: bool
) -> None:
    from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
    from pytest_llmbench.serve.server_info import ServerOptions
    from pytest_llmbench.serve.specs import parse_spec

    path = write_gguf(tmp_path / "base.gguf", [("general.file_type", 4, 15)])
    backend = LlamaServerBackend(
        parse_spec(f"llama-server:{path}"), ServerOptions(server_args=server_args)
    )
    said: list[str] = []
    backend._check_gguf(path, said.append)
    assert backend.server_info.quantization == "Q4_K_M"
    assert bool(backend.server_info.warnings) is warned
    assert said == []  # printed once, under the leaderboard, not also while starting
