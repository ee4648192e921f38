"""The call cache shared by several processes (DPO-Iter's data-parallel workers): a writer that finds another
process's write transaction open waits for it (busy timeout) instead of failing with "database is locked",
and readers see every committed answer."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

from hub_tools.serving.base import Completion
from hub_tools.serving.cache import ResponseCache

WRITER = """
import sys
from hub_tools.serving.base import Completion
from hub_tools.serving.cache import ResponseCache
cache = ResponseCache(sys.argv[1])
for i in range(50):
    cache.put(f"{sys.argv[2]}-{i}", "generate", Completion(f"answer {i}", 3, 2, "stop"))
cache.close()
"""


def test_a_writer_waits_for_another_process_longer_than_sqlites_default(tmp_path):
    path = tmp_path / "cache.sqlite"
    ResponseCache(path).close()  # created in WAL mode
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction, held past sqlite's 5 s default
    workers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}"], stderr=subprocess.PIPE, text=True)
               for n in range(2)]
    time.sleep(7)
    other.execute("COMMIT")
    other.close()
    for w in workers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    cache = ResponseCache(path)
    assert cache.ledger()["calls"] == 100
    assert cache.get("w1-49").text == "answer 49" and isinstance(cache.get("w0-0"), Completion)
    cache.close()


def test_an_engine_batch_is_cached_in_one_transaction_whole_or_not_at_all(tmp_path):
    import pytest

    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put_many([(f"k{i}", "generate", Completion(f"a{i}", 1, 1, "stop"), 0.0, 0.1) for i in range(3)])
    assert [cache.get(f"k{i}").text for i in range(3)] == ["a0", "a1", "a2"]
    assert cache.get("k0").created_at is not None and cache.ledger()["seconds"] == 0.3
    broken = [("k3", "generate", Completion("a3", 1, 1, "stop"), 0.0, 0.0),
              ("k4", "generate", Completion("a4", object(), 1, "stop"), 0.0, 0.0)]  # cannot be stored: fails
    with pytest.raises(sqlite3.Error):
        cache.put_many(broken)
    assert cache.get("k3") is None and cache.ledger()["calls"] == 3  # rolled back: no half batch
    cache.put("k5", "generate", Completion("a5", 1, 1, "stop"))  # the connection is usable again
    assert cache.ledger()["calls"] == 4
    cache.close()
