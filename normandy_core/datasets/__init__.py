"""Datasets (SPEC 16): files and tables known by name in ``confs.datasets``, loaded into
the inputs and saved from the outputs named like them — checked before running, drawn,
versioned and recorded like variables.

For authors of dataset types: a type is a class registered under a name by an entry
point of the group ``normandy.datasets``::

    [options.entry_points]
    normandy.datasets =
        feather = my_package.datasets:FeatherDataset

- :class:`Dataset` — the protocol: ``load()``, ``save(data)``, a cheap ``stamp()`` (what
  it is now, without reading it: :class:`Stamp`), ``exists()``, ``content_hash()``,
  ``describe()``; ``check(config)`` for the declaration's own rules;
- :class:`FileDataset` — one file, local or any fsspec URL: implement ``read(file)`` and
  ``write(data, file)``; saving is atomic (a temporary file renamed into place);
- :class:`DatasetConfig` — what a type receives: the declaration with the env applied.

Everything else here is Normandy's own (checks, the worker's side, the listing).
"""

from __future__ import annotations

from normandy_core.datasets._base import Dataset, DatasetConfig, FileDataset, Staged, Stamp
from normandy_core.datasets._types import GROUP

__all__ = ["GROUP", "Dataset", "DatasetConfig", "FileDataset", "Staged", "Stamp"]
