import pytest

from pytest_llmbench.serve.specs import SpecError, labels, parse_spec, parse_specs, spec_line


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
        "ollama:qwen3:8b@http://gpu2:11434",
        "http://gpu2:11434",
        (),
    )
    assert spec.member(2).url == "http://gpu1:11434"  # dealt round the pool
    single = parse_spec("openai:m@http://h:1/v1")
    assert single.pool == () and single.member(3) is single
    with pytest.raises(SpecError, match="lists an endpoint twice"):
        parse_spec("llama-server@h:1+http://h:1")
    with pytest.raises(SpecError, match="is not an http"):
        parse_spec("llama-server@h:1+")


@pytest.mark.parametrize(
    ("raw", "spec_id", "label", "header"),
    [
        (
            "dev=openai:devstral@http://127.0.0.1:18301/v1",
            "dev",
            "dev",
            "dev = openai:devstral@http://127.0.0.1:18301/v1",
        ),
        (
            "openai:devstral@http://127.0.0.1:18301/v1",
            "openai:devstral@http://127.0.0.1:18301/v1",
            "openai:devstral@:18301",
            "openai:devstral@http://127.0.0.1:18301/v1",
        ),
        (
            "ollama:qwen3:8b@http://gpu1:11434+http://gpu2:11434",
            "ollama:qwen3:8b@http://gpu1:11434+http://gpu2:11434",
            "ollama:qwen3:8b@gpu1:11434+gpu2:11434",
            "ollama:qwen3:8b@http://gpu1:11434+http://gpu2:11434",
        ),
        ("q=llama-server:./m/qwen.gguf", "q", "q", "q = llama-server:./m/qwen.gguf"),
        ("llama-server:gemma3-270m",) * 4,
    ],
)
def test_alias_and_short_label(raw: str, spec_id: str, label: str, header: str) -> None:
    spec = parse_spec(raw)
    assert (spec.id, spec.label, spec_line(spec)) == (spec_id, label, header)


def test_alias_keeps_the_spec_and_refuses_two_names() -> None:
    spec = parse_spec("dev=openai:devstral@http://h:1/v1")
    assert (spec.kind, spec.model, spec.url, spec.raw) == ("openai", "devstral", "http://h:1/v1",
                                                           "openai:devstral@http://h:1/v1")  # fmt: skip
    with pytest.raises(SpecError, match="gives two names"):
        parse_spec("a=b=ollama:x")
    with pytest.raises(SpecError, match="same test id"):
        parse_specs(["x=ollama:a,x=ollama:b"])


def test_labels_fall_back_to_ids_when_short_ones_clash() -> None:
    specs = parse_specs(["openai:m@http://127.0.0.1:1/v1,openai:m@http://localhost:1/v1"])
    assert labels(specs) == {s.id: s.id for s in specs}
    one = parse_specs(["openai:m@http://127.0.0.1:1/v1"])
    assert labels(one) == {one[0].id: "openai:m@:1"}


def test_xdist_groups_never_carry_at_or_brackets() -> None:
    # xdist reads the group after the last "@" (and only when it follows the last "]").
    a, b = parse_specs(["openai:a@http://h:1/v1,openai:b@http://h:1/v1"])
    groups = {a.xdist_group(), b.xdist_group(), a.xdist_group(0), a.xdist_group(1)}
    assert len(groups) == 4
    assert all("@" not in g and "[" not in g and "]" not in g for g in groups)
    assert parse_spec("llama-server@http://[::1]:8080").xdist_group() == (
        "llama-server%40http://%5B::1%5D:8080"
    )
