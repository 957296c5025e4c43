"""Command-line options and their ini twins (help texts shared by both)."""

from __future__ import annotations

import pytest

from pytest_llmbench.serve.specs import SPEC_FORMS

# (name, ini type, default, help); CLI flag is --llm-NAME with dashes, ini is llm_NAME.
OPTIONS: tuple[tuple[str, str, object, str], ...] = (
    (
        "models",
        "args",
        None,
        "model specs to benchmark, comma-separated or repeated: " + SPEC_FORMS,
    ),
    (
        "judge",
        "string",
        None,
        "model spec of an optional judge model, available to tests as the llm_judge fixture",
    ),
    ("max_tokens", "string", "16384", "output token cap for every generation (default 16384)"),
    ("ctx", "string", "16384", "context size: llama-server -c / Ollama num_ctx (default 16384)"),
    ("temperature", "string", "0", "sampling temperature (default 0)"),
    ("seed", "string", "42", "sampling seed (default 42)"),
    (
        "cache_prompt",
        "bool",
        False,
        "let llama-server reuse its prompt cache (off: TTFT and prompt tok/s stay honest)",
    ),
    ("gpu_layers", "string", None, "llama-server -ngl N for spawned servers"),
    ("server_args", "string", None, "extra llama-server arguments, shell-quoted"),
    (
        "llama_server_bin",
        "string",
        None,
        "llama-server binary (default: $LLAMA_SERVER_BIN, PATH, then the build cache)",
    ),
    (
        "health_timeout",
        "string",
        "900",
        "seconds to wait for a server/model to load (default 900: big loads take minutes)",
    ),
    (
        "read_timeout",
        "string",
        "300",
        "seconds without a new token (pings and other bytes do not count) before a generation "
        "counts as stalled (default 300)",
    ),
    (
        "timeout",
        "string",
        None,
        "seconds one generation may take in all, headers included (default: no limit)",
    ),
    (
        "concurrency",
        "string",
        "1",
        "generations of one server in flight at once, over the xdist workers (-n N); a spawned "
        "llama-server gets as many slots (-np N); overlapping generations stay out of the "
        "speed figures (default 1)",
    ),
    ("pull", "bool", False, "pull Ollama models that are missing (with progress)"),
    (
        "log_dir",
        "string",
        None,
        "directory for spawned servers' logs, kept (default: a temp dir, removed at the end "
        "unless a server failed)",
    ),
    (
        "strict",
        "bool",
        False,
        "fail tests that generate but never assert or score anything (default: warn)",
    ),
    (
        "repeat",
        "string",
        "1",
        "run each model × test N times (distinct seeds when temperature > 0)",
    ),
    (
        "min_pass_rate",
        "string",
        None,
        "with --llm-repeat: the run passes when each repeated test passes at least this fraction",
    ),
    ("pass_k", "string", "5", "k for the pass@k column of repeated tests (default 5)"),
    (
        "warmup",
        "string",
        "0",
        "leave each model's first N generations out of the speed figures (still run and scored)",
    ),
    (
        "thresholds",
        "string",
        None,
        "per-item gates, e.g. score>=80,decode_tps>=20,ttft_s<=5 (median over the item)",
    ),
    ("record", "string", None, "record every streamed reply with its timing events into DIR"),
    ("replay", "string", None, "replay the recordings in DIR offline (no server); missing = error"),
    (
        "replay_missing",
        "string",
        "error",
        "with --llm-replay: a missing recording is an error (default), or `record`: generate it "
        "live and add it to DIR",
    ),
    ("json", "string", None, "write the full results as JSON (schema pytest-llmbench/results v1)"),
    ("markdown", "string", None, "write the leaderboard as a Markdown table"),
    ("html", "string", None, "write a self-contained HTML report with plots"),
    ("storage", "string", ".llmbench", "directory of saved runs (default .llmbench)"),
    ("save", "string", None, "save this run as a baseline named NAME"),
    ("compare", "string", None, "compare with a saved run: NAME, number, latest or a path"),
    (
        "compare_fail",
        "string",
        None,
        "fail the run on regressions beyond margins, e.g. score:5,decode_tps:10%",
    ),
    (
        "sandbox",
        "string",
        "full",
        "isolation generated code needs: full (default: refuse to run it where any guarantee "
        "of README Safety is missing) or weak (run it with what this machine gives; the "
        "header names what is missing)",
    ),
    (
        "leaderboard",
        "string",
        "auto",
        "leaderboard tables: models, items, both, none; auto = models, plus checks and "
        "items with -v",
    ),
)


def flag(name: str) -> str:
    return "--llm-" + name.replace("_", "-")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmbench", "benchmark language models (pytest-llmbench)")
    for name, ini_type, default, ini_help in OPTIONS:
        dest = f"llm_{name}"
        help_text = ini_help.replace("%", "%%")  # argparse %-formats option help, not ini help
        if name == "models":
            group.addoption(
                flag(name),
                action="append",
                dest=dest,
                default=None,
                metavar="SPEC[,SPEC...]",
                help=help_text,
            )
        elif ini_type == "bool":
            group.addoption(
                flag(name), action="store_true", dest=dest, default=None, help=help_text
            )
        else:
            group.addoption(flag(name), dest=dest, default=None, help=help_text)
        parser.addini(dest, help=ini_help, type=ini_type, default=default)  # type: ignore[arg-type]
