"""Python values as files: ``json``, ``yaml``, ``text``, ``pickle``."""

from __future__ import annotations

import importlib
import json
from typing import IO, Any

from normandy_core.datasets import DatasetConfig, FileDataset
from normandy_io.datasets import expect


class JSONDataset(FileDataset):
    """``type: json`` — ``json.load(file, **load_args)``; ``json.dump(data, file,
    indent=2, **save_args)`` (UTF-8)."""

    def read(self, file: IO[bytes]) -> Any:
        return json.loads(file.read().decode("utf-8"), **self.load_args)

    def write(self, data: Any, file: IO[bytes]) -> None:
        options = {"indent": 2, "ensure_ascii": False, **self.save_args}
        file.write(json.dumps(data, **options).encode("utf-8"))


class YAMLDataset(FileDataset):
    """``type: yaml`` — ``yaml.safe_load`` (PyYAML; no tag makes an object);
    ``yaml.safe_dump(data, sort_keys=False, **save_args)`` (UTF-8)."""

    def read(self, file: IO[bytes]) -> Any:
        import yaml

        return yaml.safe_load(file.read().decode("utf-8"))

    def write(self, data: Any, file: IO[bytes]) -> None:
        import yaml

        options = {"sort_keys": False, "allow_unicode": True, **self.save_args}
        file.write(yaml.safe_dump(data, **options).encode("utf-8"))


class TextDataset(FileDataset):
    """``type: text`` — a string: ``bytes.decode(**load_args)`` (``encoding``,
    ``errors``; UTF-8 by default) and ``str.encode(**save_args)``."""

    def read(self, file: IO[bytes]) -> str:
        return file.read().decode(**{"encoding": "utf-8", **self.load_args})

    def write(self, data: Any, file: IO[bytes]) -> None:
        text = expect(self, data, (str,), "a string")
        file.write(text.encode(**{"encoding": "utf-8", **self.save_args}))


class PickleDataset(FileDataset):
    """``type: pickle`` — any object: ``load(file, **load_args)`` and ``dump(data, file,
    **save_args)`` of ``backend`` (``pickle``, the default; ``joblib``, ``cloudpickle``
    or ``dill`` where installed). Load only pickles you trust."""

    options = ("backend",)
    _BACKENDS = ("pickle", "joblib", "cloudpickle", "dill")

    @classmethod
    def check(cls, config: DatasetConfig) -> list[tuple[str, str]]:
        problems = super().check(config)
        backend = config.options.get("backend", "pickle")
        if backend not in cls._BACKENDS:
            problems.append(("backend", f"must be one of {', '.join(cls._BACKENDS)}"))
        return problems

    def _backend(self) -> Any:
        return importlib.import_module(str(self.config.options.get("backend", "pickle")))

    def read(self, file: IO[bytes]) -> Any:
        return self._backend().load(file, **self.load_args)

    def write(self, data: Any, file: IO[bytes]) -> None:
        backend = self._backend()
        options = dict(self.save_args)
        if backend.__name__ == "pickle":
            options.setdefault("protocol", 5)
        backend.dump(data, file, **options)
