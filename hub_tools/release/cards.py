"""What a release writes into the cards it publishes: cross-links between its artifacts, and its version.

The release knows every artifact's repo id before it pushes anything, so each staged card gets marked
sections (`hub.cards.update_section`, idempotent): the dataset card lists the models trained on it, each
model card links its dataset, the reward model that scored its DPO-Iter rounds (a reward model lists the
policies it scored) and the Space, and the Space README lists the models and the dataset, in its body and
in its front matter (`models:` / `datasets:`, which the Hub shows as links). Every card also says which
release and toolkit version published it. Model cards are first re-rendered from the folder's own files
with the release's repo ids (`refresh_model_card`), so a card never names a repo the release renamed.

Everything here is a function of the plan alone (no dates, no paths of this machine), so an unchanged
release writes byte-identical cards and pushes nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import RecipeError, merge, validate
from ..hub.cards import update_section
from ..io import write_text
from ..kinds import KINDS, RECIPE_FILE
from . import ReleaseError

RELEASE_SECTION, RELATED_SECTION, MODELS_SECTION = "psycopref-release", "psycopref-related", "psycopref-models"
METHOD_TEXT = {"full": "full fine-tuning", "lora": "LoRA", "qlora": "QLoRA (4-bit NF4 base)"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def hub_url(repo_id: str, repo_type: str) -> str:
    """The repo's page on the Hub (cards link the Hub even when a release goes to a local mirror)."""
    return f"https://huggingface.co/{_URL_PREFIX[repo_type]}{repo_id}"


def link(repo_id: str, repo_type: str) -> str:
    return f"[`{repo_id}`]({hub_url(repo_id, repo_type)})"


@dataclass(frozen=True)
class Linked:
    """One artifact as the other cards see it."""

    name: str
    kind: str
    repo_id: str
    repo_type: str
    base_model: str | None = None  # models only
    method: str | None = None  # full / lora / qlora
    reward_model: str | None = None  # DPO-Iter: the repo id of the reward model that scored its rounds
    dataset: str | None = None  # models: the repo id of the dataset they were trained on


@dataclass
class Links:
    """Every artifact of the release, for the cards' cross-links."""

    version: str
    tag: str | None
    release: str  # the release recipe's name, e.g. config_full
    dataset: Linked | None = None
    space: Linked | None = None
    models: list[Linked] = field(default_factory=list)

    def of(self, repo_id: str) -> Linked | None:
        return next((m for m in self.models if m.repo_id == repo_id), None)


def _release_text(links: Links, recipe_note: str) -> str:
    tag = f", tagged `{links.tag}`" if links.tag else " (untagged: a local mirror keeps one version)"
    return f"Published by release `{links.release}` of psycopref {links.version}{tag}. {recipe_note}"


def _models_table(models: list[Linked]) -> str:
    rows = ["| model | what | base model | method |", "|---|---|---|---|"]
    rows += [f"| {link(m.repo_id, 'model')} | {KINDS.get(m.kind).title} | `{m.base_model or '-'}` | "
             f"{METHOD_TEXT.get(m.method or '', '-')} |" for m in models]
    return "\n".join(rows)


def dataset_sections(card: Path, links: Links) -> None:
    """The dataset card: the models trained on it (and the Space), and the release."""
    trained = [m for m in links.models if links.dataset and m.dataset == links.dataset.repo_id]
    body = _models_table(trained) if trained else "No model of this release was trained on it."
    if links.space:
        body += f"\n\nTry the policies side by side in the Space {link(links.space.repo_id, 'space')}."
    update_section(card, MODELS_SECTION, "Models trained on this dataset", body)
    update_section(card, RELEASE_SECTION, "Release", _release_text(
        links, f"The resolved recipe that built it is [`{RECIPE_FILE}`]({RECIPE_FILE})."))


def model_sections(card: Path, me: Linked, links: Links) -> None:
    """A model card: its dataset, the reward model it used (or the policies it scored), the Space, the release."""
    lines = []
    if me.dataset:
        lines.append(f"- **Dataset**: {link(me.dataset, 'dataset')}, the preference pairs it was trained on.")
    if me.reward_model:
        lines.append(f"- **Reward model**: {link(me.reward_model, 'model')}, which scored the answers of its DPO-Iter rounds.")
    scored = [m for m in links.models if m.reward_model == me.repo_id]
    if scored:
        lines.append("- **Policies trained with this reward model**: " + ", ".join(link(m.repo_id, "model") for m in scored) + ".")
    if links.space:
        lines.append(f"- **Space**: {link(links.space.repo_id, 'space')}, to compare the policies side by side.")
    others = [m for m in links.models if m.repo_id != me.repo_id]
    if others:
        lines.append("- **Other models of this release**: " + ", ".join(link(m.repo_id, "model") for m in others) + ".")
    update_section(card, RELATED_SECTION, "Related", "\n".join(lines) or "Nothing else was released with it.")
    update_section(card, RELEASE_SECTION, "Release", _release_text(
        links, f"The resolved recipe it was trained with is [`{RECIPE_FILE}`]({RECIPE_FILE})."))


def space_sections(readme: Path, links: Links) -> None:
    """The Space README: front matter `models:` / `datasets:` led by the release's, and the same lists in its body."""
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(readme)
    ours = [m.repo_id for m in links.models]
    card.data.models = ours + [m for m in (card.data.models or []) if m not in ours] or None
    data = [links.dataset.repo_id] if links.dataset else []
    card.data.datasets = data + [d for d in (card.data.datasets or []) if d not in data] or None
    card.save(readme)
    body = _models_table(links.models) if links.models else "No model was released with it."
    if links.dataset:
        body += f"\n\nThe dataset of this release: {link(links.dataset.repo_id, 'dataset')}."
    update_section(readme, MODELS_SECTION, "Models and dataset of this release", body)
    update_section(readme, RELEASE_SECTION, "Release", _release_text(
        links, "The Space runs the configuration in `config.yaml`."))


def refresh_model_card(folder: Path, kind: str, repo_id: str, patch: dict) -> None:
    """Re-render a model folder's card from its own files, with its recipe patched for the release (`patch`:
    the release's repo id, dataset id and reward model), and write the patched recipe back as `recipe.yaml`."""
    path = folder / RECIPE_FILE
    if not path.is_file():
        raise ReleaseError(f"{folder}: no {RECIPE_FILE}; not a folder built by psycopref (build it with the recipe)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    recipe = validate(KINDS.get(kind).load("schema"), merge(data, patch), source=str(path))
    write_card = KINDS.get(kind).load("card")
    write_text(path, yaml.safe_dump(recipe.public(), sort_keys=False, allow_unicode=True))
    try:
        write_card(recipe, folder, repo_id)
    except (KeyError, TypeError) as err:  # result files of another toolkit version
        from .. import __version__

        raise ReleaseError(f"{folder}: its result files do not fit this psycopref's card ({type(err).__name__}: "
                           f"{err}); rebuild it with psycopref {__version__}") from None


def check_dataset_folder(folder: Path, repo_id: str) -> None:
    """A built dataset folder names its repo id in its card and snippets: it must be the release's."""
    path = folder / RECIPE_FILE
    built_for = ((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("dataset") or {}).get("repo_id") \
        if path.is_file() else None
    if built_for is None:
        raise RecipeError(f"{folder}: no {RECIPE_FILE} naming dataset.repo_id; not a dataset folder built by psycopref")
    if built_for != repo_id:
        raise ReleaseError(f"{folder} was built as {built_for}, but the release publishes it as {repo_id}; rebuild it "
                           f"with --dataset.repo_id {repo_id} (its card and load snippets name the repo)")
