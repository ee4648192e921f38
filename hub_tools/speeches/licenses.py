"""The licence of data built from several speech sources: each source's own, and the combination's.

Every registered source states its licence (a Hub licence id, `unknown` where its publisher states
none). A dataset built from some of them takes, unless its recipe sets one, the most restrictive
licence among the sources it holds speeches from, by this ordering of what a user must do or may not do:

  cc0-1.0 < mit < apache-2.0 < cc-by-4.0      attribution at most (apache adds notices and patent terms)
  < openrail                                  plus use restrictions (the RAIL family)
  < other                                     a custom licence, e.g. Amod's RAIL-D: read its terms
  < cc-by-nc-4.0                              no commercial use
  < cc-by-nc-sa-4.0                           no commercial use, and derived data under the same licence

A source whose licence is `unknown` or outside this ordering makes the dataset's licence `unknown`
(a valid Hub licence id) with a warning: a licence is never guessed. One id cannot carry every
source's terms, so the card also lists each source with its licence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from .sources import SOURCES

log = logging.getLogger("psycopref")

RESTRICTIVENESS = ("cc0-1.0", "mit", "apache-2.0", "cc-by-4.0", "openrail", "other", "cc-by-nc-4.0", "cc-by-nc-sa-4.0")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class SourceLicense:
    name: str  # the source's registry name, as in the speeches' `source` column
    license: str  # its Hub licence id, or "unknown"
    homepage: str  # where its data is published


@dataclass(frozen=True)
class Licensing:
    """A dataset's licence, how it was chosen (one sentence for the card) and its sources' licences."""

    license: str
    how: str
    sources: tuple[SourceLicense, ...]


def source_license(name: str) -> SourceLicense:
    """A source's licence and homepage from the registry; a source not registered here is `unknown`."""
    if name not in SOURCES:
        return SourceLicense(name, UNKNOWN, "")
    entry = SOURCES.get(name)
    return SourceLicense(name, entry.license, entry.homepage)


def most_restrictive(licenses: Iterable[str]) -> str:
    """The most restrictive of `licenses` by RESTRICTIVENESS; `unknown` if any is unknown or unranked."""
    licenses = list(licenses)
    if not licenses or any(lic not in RESTRICTIVENESS for lic in licenses):
        return UNKNOWN
    return max(licenses, key=RESTRICTIVENESS.index)


def _by(sources: Iterable[SourceLicense], licenses: set[str]) -> str:
    return ", ".join(f"{s.name} ({s.license})" for s in sources if s.license in licenses)


def dataset_licensing(used: Iterable[str], chosen: str | None = None) -> Licensing:
    """The licence of data holding speeches from the sources `used`: `chosen` (the recipe's) when set,
    else the most restrictive of theirs. Unknown and weaker-than-the-sources licences are warned about."""
    sources = tuple(source_license(name) for name in sorted(set(used)))
    derived = most_restrictive(s.license for s in sources)
    unranked = {s.license for s in sources} - set(RESTRICTIVENESS)
    if chosen:
        how = "set by the build recipe (`dataset.license`)"
        if derived != UNKNOWN and chosen in RESTRICTIVENESS and RESTRICTIVENESS.index(chosen) < RESTRICTIVENESS.index(derived):
            log.warning("dataset: licence %r set by the recipe is less restrictive than %r of source(s) %s",
                        chosen, derived, _by(sources, {derived}))
        return Licensing(chosen, how, sources)
    if derived == UNKNOWN:
        names = _by(sources, unranked) or "(none)"
        log.warning("dataset: licence written as 'unknown': the licence of source(s) %s is unknown or cannot be "
                    "ranked; check their terms and set `dataset.license` in the recipe", names)
        how = f"the licence of source(s) {names} is unknown or not in the ordering, so none is claimed for the whole"
        return Licensing(UNKNOWN, how, sources)
    how = f"the most restrictive licence among the sources used, that of {_by(sources, {derived})}"
    return Licensing(derived, how, sources)
