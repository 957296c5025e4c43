"""Prompt files: read strictly as UTF-8; a bad file is one clear error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmbench.prompts import PromptFileError, load_prompt, prompt_params


def test_reads_utf8_and_drops_a_byte_order_mark(tmp_path: Path) -> None:
    plain = tmp_path / "a.md"
    plain.write_text("Écris une app — «todo» 🙂\n", encoding="utf-8")
    bom = tmp_path / "b.md"
    bom.write_bytes(b"\xef\xbb\xbfBuild it.\n")
    assert load_prompt(plain) == "Écris une app — «todo» 🙂\n"
    assert load_prompt(str(bom)) == "Build it.\n"


def test_latin1_file_is_named_with_the_offending_byte_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "legacy.md"
    bad.write_bytes("line one\nCrée une application\n".encode("latin-1"))
    with pytest.raises(PromptFileError) as info:
        load_prompt(bad)
    message = str(info.value)
    assert "legacy.md" in message and "is not UTF-8 text" in message
    assert "byte 0xe9 at offset 11 (line 2)" in message
    assert "re-save it as UTF-8" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "not found; check the path"), (b" \n\t", "is empty; write the prompt in it")],
)
def test_missing_and_empty_files(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "p.md"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PromptFileError, match=expected):
        load_prompt(path)


def test_a_directory_is_not_a_prompt(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError, match="cannot be read"):
        load_prompt(tmp_path)


def test_prompt_params_sorted_with_stem_ids(tmp_path: Path) -> None:
    (tmp_path / "b_todo.md").write_text("todo")
    (tmp_path / "a_saas.md").write_text("saas")
    params = prompt_params(tmp_path)
    assert [(p.id, p.values) for p in params] == [("a_saas", ("saas",)), ("b_todo", ("todo",))]
    with pytest.raises(PromptFileError, match="no prompt files match"):
        prompt_params(tmp_path, "*.yaml")
    with pytest.raises(PromptFileError, match=r"prompt folder .* not found"):
        prompt_params(tmp_path / "nope")


def test_relative_folder_is_taken_from_the_calling_file() -> None:
    folder = Path(__file__).parent / "prompts_fixture"
    folder.mkdir(exist_ok=True)
    try:
        (folder / "one.md").write_text("one")
        assert [p.id for p in prompt_params("prompts_fixture")] == ["one"]
    finally:
        (folder / "one.md").unlink()
        folder.rmdir()


def test_a_file_the_pattern_leaves_out_is_refused_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    (tmp_path / ".gitkeep").write_text("")
    (tmp_path / "sub").mkdir()
    with pytest.raises(PromptFileError, match=r"leaves out: b\.txt; pass pattern='\*'"):
        prompt_params(tmp_path)
    params = prompt_params(tmp_path, pattern="*")
    assert [p.id for p in params] == ["a", "b"] and [p.values[0] for p in params] == ["one", "two"]


def test_a_prompt_file_is_a_string_with_its_name_path_and_front_matter(tmp_path: Path) -> None:
    import copy
    import pickle

    from pytest_llmbench.prompts import PromptFile

    (tmp_path / "capital.md").write_text(
        "---\nexpected: Paris  # the answer\nlevel: 'easy'\n---\nWhat is the capital of France?\n"
    )
    (tmp_path / "plain.md").write_text("---- not front matter\nSay hi.\n")
    capital, plain = (p.values[0] for p in prompt_params(tmp_path))
    assert isinstance(capital, PromptFile) and isinstance(capital, str)
    assert capital == "What is the capital of France?\n"  # the front matter is not sent
    assert (capital.name, capital.path) == ("capital", tmp_path / "capital.md")
    assert dict(capital.meta) == {"expected": "Paris", "level": "easy"}
    assert dict(plain.meta) == {} and plain.startswith("---- not")
    for again in (copy.deepcopy(capital), pickle.loads(pickle.dumps(capital))):
        assert again == capital and dict(again.meta) == dict(capital.meta)
    assert load_prompt(tmp_path / "capital.md").meta["expected"] == "Paris"
    (tmp_path / "open.md").write_text("---\nexpected: 1\nNo closing line.\n")
    with pytest.raises(PromptFileError, match=r"open\.md'?: its front matter .* is never closed"):
        load_prompt(tmp_path / "open.md")
