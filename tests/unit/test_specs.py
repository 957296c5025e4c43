import pytest

from pytest_llmbench.specs import SpecError, parse_spec, parse_specs


@pytest.mark.parametrize(
    ("raw", "kind", "model", "url", "spec_id"),
    [
        ("ollama:gemma4:e4b", "ollama", "gemma4:e4b", None, "ollama:gemma4:e4b"),
        ("ollama:llama3", "ollama", "llama3", None, "ollama:llama3"),
        (
            "ollama:qwen3:8b@http://gpu1:11434",
            "ollama",
            "qwen3:8b",
            "http://gpu1:11434",
            "ollama:qwen3:8b@http://gpu1:11434",
        ),
        (
            "ollama:qwen3@gpu2:11434",
            "ollama",
            "qwen3",
            "http://gpu2:11434",
            "ollama:qwen3@gpu2:11434",
        ),
        (
            "llama-server:./models/qwen.gguf",
            "llama-server",
            "./models/qwen.gguf",
            None,
            "llama-server:qwen",
        ),
        (
            "llama-server:gemma3-270m",
            "llama-server",
            "gemma3-270m",
            None,
            "llama-server:gemma3-270m",
        ),
        (
            "llama-server@http://127.0.0.1:8080/",
            "llama-server",
            "",
            "http://127.0.0.1:8080",
            "llama-server@http://127.0.0.1:8080/",
        ),
        (
            "openai:gpt-x@https://api.example.com/v1",
            "openai",
            "gpt-x",
            "https://api.example.com/v1",
            "openai:gpt-x@https://api.example.com/v1",
        ),
    ],
)
def test_parse_valid(raw: str, kind: str, model: str, url: str | None, spec_id: str) -> None:
    spec = parse_spec(raw)
    assert (spec.kind, spec.model, spec.url, spec.id) == (kind, model, url, spec_id)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty model spec"),
        ("gemma", "no backend prefix"),
        ("vllm:foo", "unknown backend 'vllm'"),
        ("llama-server:model.bin", "needs a .gguf file path"),
        ("openai:gpt", "openai specs need @URL"),
        ("ollama:", "no backend prefix"),
        ("ollama:@http://x", "names no model"),
        ("ollama:m@ftp://x", r"not an http\(s\) URL"),
        ("llama-server@http://h:notaport", "bad port"),
    ],
)
def test_parse_invalid(raw: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment) as info:
        parse_spec(raw)
    assert "ollama:NAME[:TAG][@URL]" in str(info.value)  # every message shows the grammar


def test_parse_specs_splits_commas_and_drops_duplicates() -> None:
    specs = parse_specs(["ollama:a, ollama:b", "ollama:a"])
    assert [s.raw for s in specs] == ["ollama:a", "ollama:b"]


def test_parse_specs_rejects_clashing_ids() -> None:
    with pytest.raises(SpecError, match="same test id"):
        parse_specs(["llama-server:a/m.gguf,llama-server:b/m.gguf"])


def test_pool_of_endpoints() -> None:
    spec = parse_spec("ollama:qwen3:8b@http://gpu1:11434+gpu2:11434")
    assert spec.model == "qwen3:8b" and spec.url == "http://gpu1:11434"
    assert spec.pool == ("http://gpu1:11434", "http://gpu2:11434")
    assert spec.id == "ollama:qwen3:8b@http://gpu1:11434+gpu2:11434"  # one model, one row
    member = spec.member(1)
    assert (member.raw, member.url, member.pool) == (
        "ollama:qwen3:8b@http://gpu2:11434", "http://gpu2:11434", ()
    )
    assert spec.member(2).url == "http://gpu1:11434"  # dealt round the pool
    single = parse_spec("openai:m@http://h:1/v1")
    assert single.pool == () and single.member(3) is single
    with pytest.raises(SpecError, match="lists an endpoint twice"):
        parse_spec("llama-server@h:1+http://h:1")
    with pytest.raises(SpecError, match="is not an http"):
        parse_spec("llama-server@h:1+")
