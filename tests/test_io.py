"""The shared file helpers: atomic folders, and reading a dataset repo folder afresh."""

from __future__ import annotations

import pytest

from hub_tools.io import atomic_dir, load_repo_dataset


def _repo(root, n: int):
    from datasets import Dataset

    (root / "data").mkdir(parents=True, exist_ok=True)
    Dataset.from_dict({"x": list(range(n))}).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    (root / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                    "    path: data/train-*.parquet\n---\n")
    return root


def test_a_rebuilt_repo_folder_is_read_afresh(tmp_path):
    """datasets caches a local folder by its name and config: a rebuild in place, or another build of the
    same name, must not be served from that cache."""
    first = _repo(tmp_path / "a" / "PsyCoPref", 2)
    assert len(load_repo_dataset(first, split="train")) == 2
    _repo(first, 3)  # rebuilt in place
    assert len(load_repo_dataset(first, split="train")) == 3
    other = _repo(tmp_path / "b" / "PsyCoPref", 5)  # another build with the same name
    assert len(load_repo_dataset(other, split="train")) == 5


def test_atomic_dir_keeps_the_old_version_when_the_block_fails(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as staged:
        staged.mkdir()
        (staged / "v").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as staged:
        staged.mkdir()
        (staged / "v").write_text("2")
        raise RuntimeError("crash")
    assert (target / "v").read_text() == "1" and [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_dir(target) as staged:
        staged.mkdir()
        (staged / "v").write_text("3")
    assert (target / "v").read_text() == "3" and [p.name for p in tmp_path.iterdir()] == ["out"]
