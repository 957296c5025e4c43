from pytest_llmbench.fingerprint import changes
from pytest_llmbench.verdict.baselines import fingerprint_mismatches


def test_not_like_for_like_names_only_the_differences() -> None:
    def doc(temperature: float, cores: int) -> dict[str, object]:
        return {
            "settings": {"temperature": temperature, "seed": 42, "ctx": 8},
            "environment": {"hardware": {"cpu": "x", "cores": cores}},
        }

    assert fingerprint_mismatches(doc(0.0, 2), doc(0.5, 4)) == [
        "settings: temperature 0.0 → 0.5",
        "hardware: cores 2 → 4",
    ]
    assert fingerprint_mismatches(doc(0.0, 2), doc(0.0, 2)) == []
    assert changes("abc", "abd") == "'abc' → 'abd'"
    assert changes({"a": 1}, {"b": 2}) == "a 1 → None, b None → 2"
