"""`psycopref release`: every artifact of a release published together under one version tag.

    plan.py     the release recipe and its plan: each artifact's repo, folder, state and files (`--dry-run`)
    publish.py  fetch or build each missing folder, stage it with its release cards, push it with the tag
    cards.py    the cross-links and version the release writes into every card it publishes
    cli.py      the `psycopref release` command

What differs between kinds of artifact (repo type, recipe schema, build step, card writer, output folder)
is read from the kinds table, `hub_tools.kinds`.
"""

from ..errors import PsycoprefError


class ReleaseError(PsycoprefError, RuntimeError):
    """A release that cannot go ahead; the message names the artifact, its folder or repo, and the fix."""
