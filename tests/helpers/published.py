"""Checks of what a published model folder holds, shared by the reward and policy tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

MESSAGES = [{"role": "user", "content": "i feel sad"}, {"role": "assistant", "content": "tell me more"}]


def check_chat_template_everywhere(folder: Path, scratch: Path) -> None:
    """The chat template is in tokenizer_config.json as well as chat_template.jinja (TGI, older transformers and
    some vLLM read only the first), both hold the same template, and a tokenizer loaded without the .jinja file
    (a copy of the tokenizer files in `scratch`) renders the same prompt."""
    from transformers import AutoTokenizer

    jinja = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config.get("chat_template") == jinja and "{%" in jinja
    scratch.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (folder / name).is_file():
            shutil.copy2(folder / name, scratch / name)
    with_jinja, without = AutoTokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained(scratch)
    assert not (scratch / "chat_template.jinja").exists() and without.chat_template == jinja
    render = lambda tok: tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)  # noqa: E731
    assert render(without) == render(with_jinja) and "i feel sad" in render(without)


def machine_roots(*extra: Path | str) -> list[str]:
    """This machine's directories that a published file must never name: $HOME, the working directory, the temp
    dir, and `extra` (the build's own folders)."""
    import os
    import tempfile

    roots = [str(Path.home()), os.getcwd(), tempfile.gettempdir().rstrip("/") + "/", *map(str, extra)]
    return sorted({r for r in roots if r and r != "/"})


def files_naming_machine_paths(folder: Path, roots: list[str]) -> list[str]:
    """'file: root' for every file under `folder` whose bytes contain one of `roots` (weights included)."""
    hits = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(folder)}: {root}" for root in roots if root.encode() in data]
    return hits
