import json
from pathlib import Path

import pytest

from pytest_llmbench.config.thresholds import parse_margins, parse_thresholds
from pytest_llmbench.verdict.baselines import Store, StoreError, fingerprint_mismatches, saved_items
from pytest_llmbench.verdict.comparison import compare, regressions
from pytest_llmbench.verdict.gates import check_thresholds, pass_at_k
from tests.unit._examples import typed


def test_pass_at_k_unbiased_estimator() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # 1 - C(7,5)/C(10,5) = 1 - 21/252
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)
    with pytest.raises(ValueError, match="at least 5 samples"):
        pass_at_k(3, 1, 5)


def test_thresholds_parse_and_report_value_limit_and_spread() -> None:
    gates = parse_thresholds("score>=80, decode_tps>=20,ttft_s<=5")
    assert [str(g) for g in gates] == ["score>=80", "decode_tps>=20", "ttft_s<=5"]
    record = {
        "scores": {"score": 72.0},
        "generations": [{"metrics": {"decode_tps": v, "ttft_s": 0.5}} for v in (14.0, 15.0, 19.0)],
    }
    failures = check_thresholds(typed(record), gates)
    assert failures == [
        "score = 72, threshold score>=80",
        "decode_tps = 15, threshold decode_tps>=20 (median of 3: 14–19)",
    ]
    with pytest.raises(ValueError, match="METRIC>=N"):
        parse_thresholds("speed>fast")
    # A record_score name the item never recorded (a typo) says which it did record.
    assert check_thresholds(typed(record), parse_thresholds("qualty>=0.5")) == [
        "qualty>=0.5: no score 'qualty' was recorded (llm.record_score('qualty', value)); "
        "recorded: score"
    ]


def _marked(tps: float, kind: str = "concurrent") -> dict:
    caveat = {"kind": kind, "detail": "up to 4 in flight", "excludes": ["decode_tps", "ttft_s"]}
    return {"metrics": {"decode_tps": tps, "ttft_s": 9.0}, "caveats": [caveat]}


def test_speed_thresholds_count_what_the_medians_count() -> None:
    """Caveat-marked and warm-up generations are left out of a speed threshold, as they are
    out of the medians; a quality threshold still gates."""
    gates = parse_thresholds("decode_tps>=20,ttft_s<=5,score>=50")
    clean = {"metrics": {"decode_tps": 12.0, "ttft_s": 0.5}}
    warm_up = {"metrics": {"decode_tps": 90.0, "ttft_s": 0.1}, "warmup": True}
    record = {"scores": {"score": 60.0}, "generations": [_marked(90.0), _marked(95.0), clean]}
    assert check_thresholds(typed(record), gates) == ["decode_tps = 12, threshold decode_tps>=20"]
    record["generations"].append(warm_up)
    assert check_thresholds(typed(record), gates) == ["decode_tps = 12, threshold decode_tps>=20"]
    only_marked = {"scores": {"score": 60.0}, "generations": [_marked(90.0), warm_up]}
    missed = check_thresholds(typed(only_marked), gates)
    assert len(missed) == 2 and all("were left out of the speed figures" in m for m in missed)
    assert "all 2 decode_tps figure(s)" in missed[0] and "alone=True" in missed[0]


def doc(score: float, tps: float, digest: str = "sha256:a", outcome: str = "passed") -> dict:
    return {
        "schema": "pytest-llmbench/results",
        "settings": {"max_tokens": 100},
        "environment": {"hardware": {"cpu": "x"}, "models": {"m": {"digest": digest}}},
        "items": [
            {
                "model": "m",
                "test": "test_a",
                "outcome": outcome,
                "record": {
                    "scores": {"score": score},
                    "generations": [{"metrics": {"decode_tps": tps, "ttft_s": 0.2}}],
                },
            }
        ],
    }


def test_compare_fail_margins_absolute_and_relative() -> None:
    margins = parse_margins("score:5,decode_tps:10%")
    within = regressions(compare(saved_items(doc(90, 100)), saved_items(doc(86, 91))), margins)
    assert within == []
    beyond = regressions(compare(saved_items(doc(90, 100)), saved_items(doc(84, 89))), margins)
    assert sorted(d.metric for d, _ in beyond) == ["decode_tps", "score"]
    improved = regressions(compare(saved_items(doc(50, 50)), saved_items(doc(90, 100))), margins)
    assert improved == []
    with pytest.raises(ValueError, match="METRIC:AMOUNT"):
        parse_margins("speed:fast")


def test_fingerprint_mismatch_is_named() -> None:
    notes = fingerprint_mismatches(doc(1, 1), doc(1, 1, digest="sha256:b"))
    assert notes == ["m: digest 'sha256:a' → 'sha256:b'"]


def test_store_keeps_a_stable_file_per_name_and_numbered_history(tmp_path: Path) -> None:
    root = tmp_path / ".llmbench"
    store = Store(root)
    first = store.save("base", doc(1, 1))
    second = store.save("base", doc(2, 2))
    store.save("other", doc(3, 3))
    assert first.path == second.path == root / "base.json"  # one file a CI job keeps
    assert (first.history.name, second.history.name) == ("0001_base.json", "0002_base.json")
    assert first.history.parent == root / "history"
    assert store.find("base") == root / "base.json"  # the latest 'base'
    assert json.loads(store.find("base").read_text())["items"][0]["record"]["scores"]["score"] == 2
    assert store.find("1") == first.history
    assert store.find("latest").name == "0003_other.json"
    assert json.loads(store.find("0001").read_text())["items"][0]["record"]["scores"]["score"] == 1
    assert sorted(p.name for p in root.iterdir()) == ["base.json", "history", "other.json"]
    with pytest.raises(StoreError, match=r"no saved run 'nope'.*\(have: base, other, 0001_base"):
        store.find("nope")


def test_numbered_runs_of_the_earlier_layout_are_still_found(tmp_path: Path) -> None:
    root = tmp_path / ".llmbench"
    root.mkdir()
    (root / "0001_main.json").write_text(json.dumps(doc(1, 1)))
    store = Store(root)
    assert store.find("main") == root / "0001_main.json"
    assert store.save("main", doc(2, 2)).history.name == "0002_main.json"  # numbering goes on
    assert store.find("main") == root / "main.json"
    with pytest.raises(StoreError, match="use letters"):
        store.save("bad name", {})
