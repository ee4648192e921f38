"""The whitespace-free GBNF grammar written for llama.cpp from the judge's JSON schemas."""

from __future__ import annotations

import re

import pytest

from hub_tools.judge.schema import json_schema
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.serving.grammar import to_gbnf
from hub_tools.serving.openai_compat import _structured


def rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.strip().splitlines())


def literals(body: str) -> list[str]:
    """The string literals of a rule body (skipping character classes, which may hold quotes)."""
    out, i = [], 0
    while i < len(body):
        if body[i] in '"[':
            end, j = ('"' if body[i] == '"' else "]"), i + 1
            while body[j] != end:
                j += 2 if body[j] == "\\" else 1
            if body[i] == '"':
                out.append(body[i + 1:j])
            i = j
        i += 1
    return out


def test_compact_judge_grammar_is_exact_and_has_no_whitespace():
    g = rules(to_gbnf(json_schema(True, 24, compact=True)))
    top = g[g["root"]]
    # keys in the schema's (the paper's) principle order, each once, with no room for whitespace
    keys = re.findall(r'\\"(\w+)\\":', top)
    assert keys == list(PRINCIPLE_NAMES)
    lits = [lit for body in g.values() for lit in literals(body)]
    assert lits and not any(ch.isspace() for lit in lits for ch in lit)  # no whitespace is ever emitted
    empathy = g[re.search(r'\\"empathy\\":" (\S+)', top).group(1)]
    assert empathy.count(" \",\" ") == 3  # four [rating, rationale] pairs
    pair = g[empathy.split()[1]]
    rating, why = pair.split()[1], pair.split()[3]
    assert g[rating] == "[1-5]"
    assert g[why].endswith('{0,24} "\\""')  # the rationale cap is enforced by the grammar


def test_keyed_schema_keeps_key_order_and_caps():
    g = rules(to_gbnf(json_schema(False, 30)))
    top = g[g["root"]]
    assert re.findall(r'\\"(\w+)\\":', top) == [k for i in range(1, 5) for k in (f"response_{i}_rating", f"rationale_{i}")]
    assert sum(body.endswith('{0,30} "\\""') for body in g.values()) >= 1


def test_enums_and_unsupported_schemas():
    enum = rules(to_gbnf({"type": "object", "additionalProperties": False, "required": ["t"],
                          "properties": {"t": {"type": "string", "enum": ["Anxiety", "Self-harm"]}}}))
    assert '"\\"Anxiety\\"" | "\\"Self-harm\\""' in enum.values()
    for schema in ({"type": "object"},  # open object: anything goes, not ours to write
                   {"type": "object", "properties": {"a": {"type": "string"}}, "required": [], "additionalProperties": False},
                   {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 5}},  # unbounded length
                   {"type": "integer", "minimum": 0, "maximum": 100},
                   {"type": "number"}):
        with pytest.raises(ValueError):
            to_gbnf(schema)


def test_llamacpp_dialect_sends_the_grammar_or_falls_back_to_the_schema():
    compact = json_schema(True, 24, compact=True)
    assert _structured("llamacpp", compact) == {"extra_body": {"grammar": to_gbnf(compact)}}
    open_schema = {"type": "object"}
    assert _structured("llamacpp", open_schema) == {"extra_body": {"json_schema": open_schema}}
