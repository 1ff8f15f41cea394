"""Figures as files: ``matplotlib`` (PNG, SVG, PDF… by the path's suffix) and ``plotly``
(JSON, read back as a figure; or HTML, written only). Needs ``normandy-io[charts]``."""

from __future__ import annotations

import sys
from pathlib import PurePosixPath
from typing import IO, Any

from normandy_core.datasets import FileDataset
from normandy_io.datasets import expect


class MatplotlibDataset(FileDataset):
    """``type: matplotlib`` — a matplotlib Figure, written with ``Figure.savefig(file,
    format=<the path's suffix>, **save_args)`` then closed; written, not read."""

    loads = False

    def read(self, file: IO[bytes]) -> Any:
        raise TypeError(f"the dataset {self.name!r} (matplotlib) is written, not read")

    def write(self, data: Any, file: IO[bytes]) -> None:
        from matplotlib.figure import Figure

        figure = expect(self, data, (Figure,), "a matplotlib Figure")
        suffix = PurePosixPath(str(self.path)).suffix.lstrip(".").lower() or "png"
        figure.savefig(file, **{"format": suffix, **self.save_args})
        if "matplotlib.pyplot" in sys.modules:  # made with pyplot: free it
            sys.modules["matplotlib.pyplot"].close(figure)


class PlotlyDataset(FileDataset):
    """``type: plotly`` — a plotly Figure: as JSON (``plotly.io.to_json(figure,
    **save_args)``, read back with ``plotly.io.from_json(text, **load_args)``), or as a
    page where the path ends with ``.html`` (``Figure.to_html(**save_args)``, written
    only)."""

    def _html(self) -> bool:
        return str(self.path).lower().endswith((".html", ".htm"))

    def read(self, file: IO[bytes]) -> Any:
        if self._html():
            raise TypeError(
                f"the dataset {self.name!r} (plotly) is an HTML page: it is written, not "
                "read; save the figure as .json to read it back"
            )
        import plotly.io as pio

        return pio.from_json(file.read().decode("utf-8"), **self.load_args)

    def write(self, data: Any, file: IO[bytes]) -> None:
        import plotly.graph_objects as go
        import plotly.io as pio

        figure = expect(self, data, (go.Figure, dict), "a plotly Figure (or its dict)")
        if self._html():
            html = pio.to_html(figure, **self.save_args)
            file.write(html.encode("utf-8"))
        else:
            file.write(pio.to_json(figure, **self.save_args).encode("utf-8"))
