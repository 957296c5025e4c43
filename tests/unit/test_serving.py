"""Typed boundaries between the run and its servers: ServerOptions in, ServerInfo out."""

import dataclasses

import pytest

from pytest_llmbench.config.run_config import RUN_KEY
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.backends.openai_compat import OpenAIBackend
from pytest_llmbench.serve.generation import Generation, Metrics, Settings
from pytest_llmbench.serve.server_info import ServerInfo, ServerOptions, like_for_like_keys
from pytest_llmbench.serve.specs import parse_spec


def test_run_config_carries_typed_server_options_with_defaults_defined_once(
    pytester: pytest.Pytester,
) -> None:
    default = pytester.parseconfigure().stash[RUN_KEY]
    assert default.server_options == ServerOptions()
    assert default.server_options.health_timeout_s == 900.0
    config = pytester.parseconfigure(
        "--llm-health-timeout=5",
        "--llm-gpu-layers=99",
        "--llm-server-args=--threads 2",
        "--llm-pull",
        "--llm-log-dir=logs",
    )
    assert config.stash[RUN_KEY].server_options == ServerOptions(
        health_timeout_s=5.0, gpu_layers=99, server_args=("--threads", "2"), pull=True,
        log_dir="logs",
    )  # fmt: skip


def test_backends_read_the_typed_options() -> None:
    spec = parse_spec("openai:m@http://127.0.0.1:9/v1")
    assert OpenAIBackend(spec).headers() == {}
    assert OpenAIBackend(spec, ServerOptions(api_key="k")).headers() == {
        "Authorization": "Bearer k"
    }
    attached = LlamaServerBackend(parse_spec("llama-server@http://127.0.0.1:9"))
    assert attached.server_info == ServerInfo(backend="llama-server", url="http://127.0.0.1:9")
    with pytest.raises(dataclasses.FrozenInstanceError):
        attached.options.health_timeout_s = 1  # type: ignore[misc]


def test_server_info_is_typed_and_a_dict_only_in_json() -> None:
    info = ServerInfo(
        backend="llama-server",
        model_id="m",
        build="b7000",
        n_ctx=4096,
        chat_template=None,
        health_seen=("ConnectError", "HTTP 200"),
        warnings=("no chat template",),
    )
    data = info.to_dict()
    assert data == {
        "backend": "llama-server",
        "model_id": "m",
        "build": "b7000",
        "n_ctx": 4096,
        "health_seen": ["ConnectError", "HTTP 200"],
        "warnings": ["no chat template"],
    }
    assert ServerInfo.from_dict({**data, "from_a_newer_version": 1}) == info
    assert info.fingerprint() == {"backend": "llama-server", "model_id": "m", "build": "b7000",
                                  "n_ctx": 4096}  # fmt: skip
    assert like_for_like_keys() == (
        "digest", "model_path", "build", "version", "quantization", "n_ctx",
    )  # fmt: skip

    generation = Generation(
        model="m",
        text="hi",
        answer="hi",
        thinking="",
        finish_reason="stop",
        metrics=Metrics(),
        settings=Settings(),
        server=info,
    )
    again = Generation.from_dict(generation.to_dict())
    assert again.server.build == "b7000" and again == generation


@pytest.mark.parametrize(
    ("listing", "named"),
    [
        ({"data": 5}, "data = 5, expected a list"),
        ({"data": [{"id": 7}]}, "data[0].id = 7, expected a string"),
    ],
)
def test_a_mistyped_model_listing_is_a_server_error_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, listing: dict[str, object], named: str
) -> None:
    """/v1/models is read like every other reply: a mistyped field is a ServerError naming
    the endpoint and the field (``data: 5`` raised TypeError, and an ``id`` of another type
    was shown as if it were a model's name)."""
    from pytest_llmbench.errors import ServerError
    from pytest_llmbench.serve.backends import openai_compat

    monkeypatch.setattr(openai_compat, "get_json", lambda *args, **kwargs: listing)
    backend = OpenAIBackend(parse_spec("openai:m@http://127.0.0.1:9/v1"))
    with pytest.raises(ServerError, match=r"/v1/models reply has .*" + named.replace("[", r"\[")):
        backend.prepare(Settings(), lambda message: None)
