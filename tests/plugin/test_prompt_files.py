"""A folder of prompt files as parameters: a bad file stops collection, naming it."""

from __future__ import annotations

import pytest


def test_bad_prompt_file_is_a_collection_error_before_any_model_starts(
    pytester: pytest.Pytester,
) -> None:
    prompts = pytester.mkdir("prompts")
    (prompts / "good.md").write_text("Name a fruit.")
    (prompts / "legacy.md").write_bytes("Crée".encode("latin-1"))
    pytester.makepyfile(
        test_files="""
        import pytest
        from pytest_llmbench.prompts import prompt_params

        @pytest.mark.parametrize("prompt", prompt_params("prompts"))
        def test_p(llm, prompt):
            llm.generate(prompt)
        """
    )
    result = pytester.runpytest(
        "--llm-models=ollama:m@http://127.0.0.1:9", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*PromptFileError: prompt file *legacy.md* is not UTF-8 text*"])
    assert "starting" not in result.stdout.str()

    (prompts / "legacy.md").write_text("Crée", encoding="utf-8")
    collected = pytester.runpytest(
        "--llm-models=ollama:m@http://127.0.0.1:9", "--collect-only", "-q", "-p", "no:cacheprovider"
    )
    collected.stdout.fnmatch_lines(["*test_p[[]ollama:m*-good]", "*test_p[[]ollama:m*-legacy]"])
