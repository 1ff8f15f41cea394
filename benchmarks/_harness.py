"""What every workload uses: running whole processes and timing them, statistics, the
``normandy`` command, and the Kedro virtualenv (``benchmarks/.venv-kedro``)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KEDRO_VENV = HERE / ".venv-kedro"
KEDRO_REQUIREMENTS = (
    "kedro~=1.7.0",
    *(
        line.split("#")[0].strip()
        for line in (HERE / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ),
)
"""Kedro 1.7, the version the issue measured, and what the workloads' own code needs
(``requirements.txt``: NumPy, pandas, and the realistic workload's libraries)."""

KEDRO_PROBE = (
    "import kedro, numpy, pandas, sklearn, matplotlib, openpyxl, pyarrow, kedro_datasets"
)

ENV = {
    **os.environ,
    "NO_COLOR": "1",
    "COLUMNS": "200",
    # Kedro's telemetry plugin would ask for consent and send events: neither here.
    "KEDRO_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
"""Bytecode is cached, as on any machine where normandy is installed (a machine or CI
image that sets PYTHONDONTWRITEBYTECODE would otherwise compile every module each time)."""


class BenchError(RuntimeError):
    """A benchmarked command failed: the suite stops and shows its output."""


@dataclass
class Proc:
    """A finished process: its wall time, peak RSS (KiB; at least this harness's, see
    :func:`peak_rss_kib`) and output."""

    seconds: float
    maxrss_kib: int
    returncode: int
    stdout: str
    stderr: str


def run_process(
    argv: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    timeout: float = 900,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> Proc:
    """Run ``argv`` as a whole process; time it from spawn to exit (``os.wait4``, which
    also gives the process's peak RSS). Output goes to temporary files, not pipes, so a
    chatty command is never slowed down by a reader. ``env``: variables added to
    :data:`ENV`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(a) for a in argv],
            cwd=cwd,
            env={**ENV, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = Proc(
            seconds,
            usage.ru_maxrss,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    if check and result.returncode != 0:
        command = " ".join(str(a) for a in argv)
        raise BenchError(
            f"`{command}` (in {cwd or os.getcwd()}) exited {result.returncode}:\n"
            f"{_tail(result.stdout)}\n{_tail(result.stderr)}"
        )
    return result


_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_kib(argv: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> int:
    """The peak RSS (KiB) of ``argv`` alone. Not :attr:`Proc.maxrss_kib`: Linux keeps a
    process's high-water mark across ``exec``, so a command started from this process
    (grown by the earlier workloads) reads at least this process's size; here it is
    forked from a small launcher instead."""
    launched = run_process([sys.executable, "-S", "-c", _LAUNCHER, *argv], cwd=cwd)
    return int(launched.stdout.strip().splitlines()[-1])


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# -- statistics -------------------------------------------------------------------------------


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of the repetitions, and the samples themselves."""
    values = [float(v) for v in values]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": values,
    }


class Samples:
    """Named series of measurements, one value per repetition."""

    def __init__(self) -> None:
        self.series: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        self.series.setdefault(name, []).append(float(value))

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: summarize(values) for name, values in self.series.items()}


def rounds(repeats: int, variants: Sequence[str]) -> list[tuple[int, str]]:
    """Every variant once per repetition, alternating; the order is reversed every other
    repetition so that no variant always runs first (warm caches) or last (drift)."""
    order: list[tuple[int, str]] = []
    for rep in range(repeats):
        seq = list(variants) if rep % 2 == 0 else list(reversed(variants))
        order.extend((rep, name) for name in seq)
    return order


# -- Normandy ---------------------------------------------------------------------------------


def normandy_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "normandy"
    if script.exists():
        return [str(script)]
    found = shutil.which("normandy")
    return [found] if found else [sys.executable, "-m", "normandy_cli"]


def normandy(*args: str | os.PathLike[str], cwd: Path | None = None) -> Proc:
    return run_process([*normandy_command(), *args], cwd=cwd)


def last_run(project: Path) -> dict[str, Any]:
    """The history of the project's last run (``normandy runs last --json``)."""
    proc = normandy("runs", "last", "--json", "--project", project)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def clear_runs(project: Path) -> None:
    """Delete the runs' variables and logs (the history stays): big hand-offs add up."""
    shutil.rmtree(project / ".normandy" / "runs", ignore_errors=True)
    shutil.rmtree(project / "logs", ignore_errors=True)


# -- Kedro ------------------------------------------------------------------------------------


def kedro_python() -> Path:
    return KEDRO_VENV / "bin" / "python"


def ensure_kedro(log: Any = print) -> str:
    """Create ``benchmarks/.venv-kedro`` with Kedro and ``requirements.txt`` unless it is
    there already (or install what it lacks); return Kedro's version. The main environment
    is never touched."""
    python = kedro_python()
    probe = [str(python), "-c", f"{KEDRO_PROBE}; print(kedro.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True, env=ENV)
        if done.returncode == 0:
            return done.stdout.strip()
    if python.exists():
        log(f"completing {KEDRO_VENV.relative_to(HERE.parent)}: {' '.join(KEDRO_REQUIREMENTS)}")
    else:
        log(f"creating {KEDRO_VENV.relative_to(HERE.parent)} with {' '.join(KEDRO_REQUIREMENTS)}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(KEDRO_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
            check=True,
            env=ENV,
        )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *KEDRO_REQUIREMENTS], check=True, env=ENV
    )
    return subprocess.run(probe, capture_output=True, text=True, check=True, env=ENV).stdout.strip()


def kedro(workload: str, runner: str, workdir: Path, *args: str) -> tuple[Proc, dict[str, Any]]:
    """Run ``kedro_bench.py`` in the Kedro venv; return the process and its JSON result."""
    out = workdir / f"kedro-{workload}-{runner}.json"
    out.unlink(missing_ok=True)
    proc = run_process(
        [kedro_python(), HERE / "kedro_bench.py", workload, runner, "--out", out, *args],
        cwd=workdir,
    )
    return proc, json.loads(out.read_text())


def raw(workload: str, workdir: Path, *args: str) -> dict[str, Any]:
    """Run ``raw_bench.py`` (the raw references) with this interpreter; its JSON result."""
    out = workdir / f"raw-{workload}.json"
    out.unlink(missing_ok=True)
    run_process([sys.executable, HERE / "raw_bench.py", workload, "--out", out, *args], cwd=workdir)
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def versions() -> dict[str, str]:
    """Versions of what is measured, for the record."""
    import platform

    found = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
    }
    try:
        from importlib.metadata import version

        for dist in ("normandy", "numpy", "pandas"):
            found[dist] = version(dist)
    except Exception:  # noqa: BLE001 - a missing version is not worth failing the suite
        pass
    return found
