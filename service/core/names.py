"""Watched names as configured against the names the store holds.

MySQL (the Compose store) compares names as its default collations do, ignoring case, accents
and trailing spaces (ZenML sets no collation): a query for `Iris_dataset` returns the versions of
`iris_dataset`, under that name. SQLite compares exactly, so there a misspelt name watches
nothing. The store adapter maps every name the store returns back to the configured name it
answers to (`NameMap`), so the stages only ever see configured names; the start-up check
(`unknown_names`) says which configured names the store does not hold as written.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from service.core.automation import Automation


def folded(name: str) -> str:
    """A name as MySQL's default collations compare it: case, accents and trailing spaces
    ignored."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().rstrip()


class NameMap:
    """The configured names of one kind (artifacts or models), and which one a name the store
    returned answers to. `store_folds`: the store compares names as MySQL does (False for
    SQLite, where two names differing in case are two artifacts)."""

    def __init__(self, configured: Iterable[str] = (), store_folds: bool = True) -> None:
        self._exact = frozenset(configured)
        self._folded: dict[str, str] = {}
        for name in sorted(self._exact) if store_folds else ():  # two spellings: the first
            self._folded.setdefault(folded(name), name)

    def resolve(self, store_name: str, queried: Iterable[str] | None = None) -> str:
        """The configured name `store_name` answers to: itself when configured; else the
        configured name equal to it as MySQL compares names (one of `queried`, the names the
        query asked for, when given); else, for a query that asked for one name only, that name
        (the database matched it, whatever its rules). Otherwise the store's name, unchanged:
        no automation watches it, and the stages drop it."""
        if store_name in self._exact:
            return store_name
        mapped = self._folded.get(folded(store_name))
        if queried is None:
            return mapped or store_name
        asked = set(queried)
        if mapped is not None and mapped in asked:
            return mapped
        return asked.pop() if len(asked) == 1 else store_name


@dataclass(frozen=True)
class UnknownName:
    """A watched name the store does not hold as written."""

    kind: str  # "artifact" | "model"
    name: str
    variables: tuple[str, ...]  # the variables that set it
    store_spelling: str | None  # the store's name it matches as MySQL compares names
    close: tuple[str, ...]  # similar names the store holds

    @property
    def likely_typo(self) -> bool:
        """The store holds a name like it: a misspelling, not a name that is yet to come."""
        return self.store_spelling is not None or bool(self.close)

    @property
    def message(self) -> str:
        where = ", ".join(self.variables)
        if self.store_spelling is not None:
            return (
                f"{where}: the store's {self.kind} is spelt {self.store_spelling!r}, not "
                f"{self.name!r}: a MySQL store matches the two (it ignores case), a SQLite "
                "store does not; use the store's spelling"
            )
        hint = f"; did you mean {' or '.join(repr(c) for c in self.close)}?" if self.close else ""
        return (
            f"{where}: the store has no {self.kind} named {self.name!r} (yet): nothing is "
            f"watched until one is created{hint}"
        )


def unknown_names(
    kind: str, watched: Mapping[str, Iterable[str]], known: Iterable[str]
) -> list[UnknownName]:
    """The watched names (name -> the variables that set it) the store does not hold exactly
    as written, with the store's spelling when it differs only as MySQL ignores, or close
    matches."""
    names = set(known)
    by_fold: dict[str, str] = {}
    for name in sorted(names):
        by_fold.setdefault(folded(name), name)
    found = []
    for name, variables in sorted(watched.items()):
        if name in names:
            continue
        spelling = by_fold.get(folded(name))
        close = () if spelling else tuple(difflib.get_close_matches(name, sorted(names), n=2))
        found.append(UnknownName(kind, name, tuple(sorted(set(variables))), spelling, close))
    return found


def check_watched(
    automations: Iterable[Automation], artifacts: Iterable[str], models: Iterable[str]
) -> list[UnknownName]:
    """Every watched artifact and model name the store does not hold as written."""
    datasets: dict[str, list[str]] = {}
    owners: dict[str, list[str]] = {}
    for automation in automations:
        for name in automation.dataset_names:
            datasets.setdefault(name, []).append(f"{automation.env_prefix}DATASET_NAMES")
        if automation.evaluation is not None:  # read by name when a candidate is judged
            variable = f"{automation.env_prefix}EVALUATION_DATASET_NAME"
            datasets.setdefault(automation.evaluation.dataset_name, []).append(variable)
        owners.setdefault(automation.model_name, []).append(f"{automation.env_prefix}MODEL_NAME")
    return [
        *unknown_names("artifact", datasets, artifacts),
        *unknown_names("model", owners, models),
    ]
