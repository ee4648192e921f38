"""JSON schema → a whitespace-free GBNF grammar, for llama.cpp servers.

llama.cpp turns a `json_schema` into a grammar that allows whitespace after every token, and a small
model spends a third of its output on newlines and indentation. For the closed schemas the toolkit
asks for (fixed objects, fixed-length arrays and tuples, small integer ranges, enums, bounded
strings), this writes the grammar directly, with no whitespace and keys in schema order, so every
generated token is content. Anything outside that subset raises `ValueError`: the caller then sends
the schema itself.
"""

from __future__ import annotations

import json

_CHAR = r'[^"\\\x7F\x00-\x1F]'  # a JSON string character that needs no escape


def _literal(text: str) -> str:
    """A GBNF string literal matching `text` exactly."""
    return json.dumps(text)


class _Builder:
    def __init__(self) -> None:
        self.rules: dict[str, str] = {}

    def rule(self, name: str, body: str) -> str:
        base, n = name, 1
        while name in self.rules and self.rules[name] != body:
            n += 1
            name = f"{base}{n}"
        self.rules[name] = body
        return name

    def node(self, schema: dict, name: str) -> str:
        """The rule name matching one value of `schema`."""
        if "enum" in schema:
            return self.rule(name, " | ".join(_literal(json.dumps(v)) for v in schema["enum"]))
        kind = schema.get("type")
        if kind == "object":
            props = schema.get("properties", {})
            if set(schema.get("required", [])) != set(props) or schema.get("additionalProperties", True) is not False:
                raise ValueError("only closed objects (additionalProperties: false) whose properties are all required")
            parts = []
            for i, (key, sub) in enumerate(props.items()):
                key_text = ("," if i else "") + json.dumps(key) + ":"
                parts.append(f"{_literal(key_text)} {self.node(sub, f'{name}-{_slug(key)}')}")
            return self.rule(name, " ".join(['"{"', *parts, '"}"']))
        if kind == "array":
            items = schema.get("prefixItems")
            if items is not None:
                if schema.get("items") not in (None, False) or len(items) != schema.get("maxItems", len(items)):
                    raise ValueError("only closed tuples")
                nodes = [self.node(sub, f"{name}-{i}") for i, sub in enumerate(items)]
            else:
                n = schema.get("minItems")
                if n is None or n != schema.get("maxItems"):
                    raise ValueError("only fixed-length arrays")
                nodes = [self.node(schema["items"], f"{name}-item")] * n
            inner = ' "," '.join(nodes)
            return self.rule(name, f'"[" {inner} "]"' if nodes else '"[]"')
        if kind == "integer" and "minimum" in schema and "maximum" in schema:
            lo, hi = int(schema["minimum"]), int(schema["maximum"])
            if not 0 <= lo <= hi <= 9:
                raise ValueError("only single-digit integer ranges")
            return self.rule(name, f"[{lo}-{hi}]")
        if kind == "string":
            lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
            reps = f"{{{lo},{int(hi)}}}" if hi is not None else ("+" if lo else "*")
            return self.rule(name, f'"\\"" {_CHAR}{reps} "\\""')
        raise ValueError(f"unsupported schema node: {json.dumps(schema)[:80]}")


def _slug(key: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in key).strip("-") or "k"


def to_gbnf(schema: dict) -> str:
    """A GBNF grammar (root rule `root`) accepting exactly the whitespace-free JSON values of `schema`."""
    builder = _Builder()
    top = builder.node(schema, "value")
    lines = [f"root ::= {top}"] + [f"{name} ::= {body}" for name, body in builder.rules.items()]
    return "\n".join(lines) + "\n"
