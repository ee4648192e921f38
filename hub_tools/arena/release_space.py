"""The release's own Space: its config and front matter generated from the release plan.

A release that publishes DPO and DPO-Iter policies gets a Space comparing exactly those policies against
their base model (when the release has policies on several bases, the 8B one, else the first), each
served by an endpoint whose URL is a Space variable or secret (`PSYCOPREF_BASE_URL`, `PSYCOPREF_DPO_URL`,
`PSYCOPREF_DPO_ITER_URL`: a TGI container, a vLLM server or an Inference Endpoint; `HF_TOKEN` is sent as
the key). Its front matter lists exactly the release's models and dataset; votes stay in the Space (no
votes dataset outside the release). Used by `release.publish` when the release's Space entry names no
config of its own.
"""

from __future__ import annotations

from pathlib import Path

from .config import SpaceConfig
from .deploy import write_deployable

POLICY_KINDS = {"dpo": "DPO", "dpo-iter": "DPO-Iter"}  # kinds table names -> column labels
PARAMS = {"max_tokens": 512, "temperature": 0.7, "top_p": 0.95}  # the packaged Space's decoding


def url_env(kind: str) -> str:
    """The Space variable holding the endpoint URL of a policy kind (or 'base')."""
    return f"PSYCOPREF_{kind.upper().replace('-', '_')}_URL"


def release_config(links) -> SpaceConfig:
    """The Space config comparing the release's policies (a `release.cards.Links`) with their base."""
    policies = [m for m in links.models if m.kind in POLICY_KINDS]
    if not policies:
        raise ValueError("the release has no DPO or DPO-Iter policy for its Space to compare")
    bases = list(dict.fromkeys(m.base_model for m in policies if m.base_model))
    base = next((b for b in bases if "8b" in b.lower()), bases[0] if bases else None)
    chosen = [m for m in policies if m.base_model == base][:3]

    def column(name: str, env: str, hub_id: str | None, description: str) -> dict:
        return {"name": name, "description": description, "backend": "tgi", "model": "tgi", "base_url_env": env,
                "api_key_env": "HF_TOKEN", "hub_id": hub_id, "params": dict(PARAMS), "timeout": 60}

    columns = [column(base.split("/")[-1] if base else "base", url_env("base"), base,
                      "the base model, before preference learning")] if base else []
    seen: set[str] = set()
    for m in chosen:
        env = url_env(m.kind) if m.kind not in seen else url_env(f"{m.kind}_{len(seen)}")
        seen.add(m.kind)
        columns.append(column(m.repo_id.split("/")[-1], env, m.repo_id,
                              f"this release's {POLICY_KINDS[m.kind]} policy ({m.repo_id})"))
    return SpaceConfig.model_validate({
        "title": f"PsyCoPref {links.version}: the release's policies side by side",
        "policies": columns,
        "datasets": [links.dataset.repo_id] if links.dataset else [],
        "votes": {"local_file": "votes/votes.jsonl"}})


def stage_release_space(staged: Path, repo_id: str, links, requirement: str = "auto",
                        wheel: Path | None = None) -> SpaceConfig:
    """Make the staged Space folder the release's own: config, requirements, front matter (exactly the
    release's models and dataset)."""
    from huggingface_hub import SpaceCard

    cfg = write_deployable(staged, release_config(links), repo_id, requirement=requirement, wheel=wheel)
    card = SpaceCard.load(staged / "README.md")
    card.data.models = [m.repo_id for m in links.models] or None
    card.data.datasets = [links.dataset.repo_id] if links.dataset else None
    card.save(staged / "README.md")
    return cfg
