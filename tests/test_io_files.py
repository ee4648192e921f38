"""`io.write_text` (and the JSON writers on it) never leave a half-written file: a write that fails midway,
here because the disk fills up or the text cannot be encoded, leaves the previous complete file in place."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from hub_tools.io import write_json, write_jsonl, write_text

OLD = "the previous, complete report\n"


def test_a_write_that_fails_on_a_full_disk_keeps_the_old_file(tmp_path):
    """A child process whose files may not grow past 4 KiB (RLIMIT_FSIZE: the disk is full) rewrites the file
    with 400 KB: the write stops midway with EFBIG, and the file still holds the old complete text."""
    target = tmp_path / "report.json"
    target.write_text(OLD, encoding="utf-8")
    script = textwrap.dedent("""
        import errno, resource, signal, sys
        from hub_tools.io import write_json, write_text
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        writer = {"text": lambda p: write_text(p, "x" * 400_000), "json": lambda p: write_json(p, {"x": "y" * 400_000})}
        try:
            writer[sys.argv[2]](sys.argv[1])
        except OSError as err:
            sys.exit(3 if err.errno == errno.EFBIG else 4)
    """)
    for kind in ("text", "json"):
        proc = subprocess.run([sys.executable, "-c", script, str(target), kind], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 3, proc.stderr  # the write really failed midway
        assert target.read_text(encoding="utf-8") == OLD


@pytest.mark.parametrize("write", [
    lambda p: write_text(p, "new " * 10_000 + "\ud800"),  # a lone surrogate: utf-8 cannot encode it
    lambda p: write_jsonl(p, [{"text": "new"}] * 100 + [{"text": "\ud800"}]),
])
def test_a_write_that_cannot_be_encoded_keeps_the_old_file(tmp_path, write):
    target = tmp_path / "records.jsonl"
    target.write_text(OLD, encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write(target)
    assert target.read_text(encoding="utf-8") == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]  # no stray temporary file either


def test_a_successful_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "deep" / "report.json"  # missing parents are created
    write_json(target, {"a": 1})
    write_json(target, {"b": [2, 3]})
    assert json.loads(target.read_text(encoding="utf-8")) == {"b": [2, 3]}
