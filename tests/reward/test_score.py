"""Batched scoring: the batch plan (bucketing, token budget), and rewards that do not depend on how
conversations are batched or padded."""

from __future__ import annotations

import random

import pytest

from hub_tools.reward.score import RewardScorer, plan_batches

# `published`: loads, scores or generates with a published folder; the lowest-versions CI job runs these.
pytestmark = pytest.mark.published

torch = pytest.importorskip("torch")


def test_bucketing_groups_similar_lengths():
    lengths = [5, 50, 7, 48, 6, 49]
    assert plan_batches(lengths, batch_size=2) == [[1, 5], [3, 2], [4, 0]]  # longest first
    assert plan_batches(lengths, batch_size=2, bucket=False) == [[0, 1], [2, 3], [4, 5]]  # dataset order
    # a 100-token budget: 2 x 50 fits, a third sequence padded to 48 does not
    assert plan_batches(lengths, batch_size=10, max_batch_tokens=100) == [[1, 5], [3, 2], [4, 0]]
    assert plan_batches([3, 3, 3, 3], batch_size=10, max_batch_tokens=9) == [[0, 1, 2], [3]]
    assert plan_batches([500], batch_size=4, max_batch_tokens=10) == [[0]]  # too long alone still runs


def test_every_sequence_once_and_less_padding():
    rng = random.Random(0)
    lengths = [rng.randint(20, 400) for _ in range(301)]
    for bucket in (True, False):
        batches = plan_batches(lengths, batch_size=16, max_batch_tokens=3000, bucket=bucket)
        assert sorted(i for b in batches for i in b) == list(range(301))
        assert all(len(b) <= 16 for b in batches)
    padded = lambda batches: sum(len(b) * max(lengths[i] for i in b) for b in batches)  # noqa: E731
    assert padded(plan_batches(lengths, 16)) < 0.7 * padded(plan_batches(lengths, 16, bucket=False))


@pytest.fixture(scope="module")
def scorer_parts(tiny_base):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base, num_labels=1, pad_token_id=0)
    return model, AutoTokenizer.from_pretrained(tiny_base)


def _conversations(n: int, seed: int) -> list[list[dict]]:
    from preference_data import SPEECH_WORDS, WARM

    rng = random.Random(seed)
    return [[{"role": "user", "content": " ".join(rng.choices(SPEECH_WORDS, k=rng.randint(2, 14)))},
             {"role": "assistant", "content": " ".join(rng.choices(WARM, k=rng.randint(1, 12)))}] for _ in range(n)]


def test_rewards_do_not_depend_on_batching(scorer_parts):
    model, tokenizer = scorer_parts
    convs = _conversations(13, seed=3)
    one_by_one = []
    for c in convs:  # the reference: each conversation alone, no padding at all
        ids = tokenizer.apply_chat_template(c, tokenize=True, return_dict=True, return_tensors="pt")
        with torch.no_grad():
            one_by_one.append(float(model(**ids).logits[0, 0]))
    bucketed = RewardScorer(model, tokenizer, batch_size=4, max_batch_tokens=60).score(convs)
    naive = RewardScorer(model, tokenizer, batch_size=5, bucket=False).score(convs)
    fixed = RewardScorer(model, tokenizer, batch_size=5, bucket=False, pad_to=64).score(convs)
    for got in (bucketed, naive, fixed):
        assert got.tolist() == pytest.approx(one_by_one, abs=1e-5)
    assert len(set(round(x, 4) for x in one_by_one)) > 5  # the rewards do differ between conversations


def test_pairs_and_truncation(scorer_parts):
    model, tokenizer = scorer_parts
    convs = _conversations(6, seed=4)
    prompts = [c[:1] for c in convs[:3]]
    chosen, rejected = [c[1:] for c in convs[:3]], [c[1:] for c in convs[3:]]
    scorer = RewardScorer(model, tokenizer, batch_size=4)
    r_c, r_r = scorer.score_pairs(prompts, chosen, rejected)
    expected = scorer.score([p + c for p, c in zip(prompts, chosen)] + [p + r for p, r in zip(prompts, rejected)])
    assert r_c.tolist() == pytest.approx(expected[:3].tolist()) and r_r.tolist() == pytest.approx(expected[3:].tolist())
    short = RewardScorer(model, tokenizer, max_length=5)
    ids = short.tokenize(convs)
    full = scorer.tokenize(convs)
    assert all(len(x) <= 5 for x in ids) and [x[-5:] for x in full] == ids  # the end (the answer) is kept
    assert short.truncated == sum(len(x) > 5 for x in full)
