"""Plain functions as processes (SPEC 4, 12): signatures read by inspecting a function and
read from its source (they must agree), inputs found, return values split into outputs."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from normandy_core.binding import (
    BadVariadic,
    FromParams,
    Gathered,
    MissingInput,
    OutputError,
    Outputs,
    Parameter,
    Scope,
    Signature,
    call_process,
    input_values,
    signature_of,
    source_of,
)
from normandy_core.errors import ProcessLoadError
from normandy_core.signatures import module_file, static_signature

SOURCE = """
import functools
from collections import OrderedDict as mapping_type

def pipe_log(pipe, log): ...
def params_only(params): ...
def everything(pipe, log, params): ...
def kwargs(**kw): ...
def plain(companies, shuttles, params): ...
def optional(pipe, extra=1, *, other=None): ...
def keyword_only(*, params, log, rows): ...
def args(*args): ...
def variadic(spine, *dfs, **named): ...
def nothing(): ...
def positional_only_default(pipe=None, /, params=None, rows=()): ...
async def coroutine(rows): ...
def positional_only(pipe, /, log): ...

@functools.lru_cache
def decorated(rows): ...

made = functools.partial(plain, shuttles=None)

class Maker:
    def __call__(self, rows): ...

maker = Maker()

def redefined(a): ...
def redefined(b, c=2): ...

def rebound(rows): ...
rebound = functools.partial(plain, shuttles=None)

def shadowed(rows): ...
import json as shadowed
"""

PACKAGE_INIT = "from .impl import plain as exported\nfrom .impl import *\n"
PACKAGE_IMPL = "def plain(rows, params, limit=10): ...\n"

CASES: dict[str, Signature] = {
    "pipe_log": Signature(("pipe", "log")),
    "params_only": Signature(("params",)),
    "everything": Signature(("pipe", "log", "params")),
    "kwargs": Signature(("pipe", "log", "params"), star_star="kw"),
    "variadic": Signature(("pipe", "log", "params"), (Parameter("spine", False),), "dfs", "named"),
    "plain": Signature(("params",), (Parameter("companies", False), Parameter("shuttles", False))),
    "optional": Signature(("pipe",), (Parameter("extra", True), Parameter("other", True))),
    "keyword_only": Signature(("params", "log"), (Parameter("rows", False),)),
    "args": Signature((), star="args"),
    "nothing": Signature(()),
    "positional_only_default": Signature(("params",), (Parameter("rows", True),)),
    "coroutine": Signature((), (Parameter("rows", False),)),
    "redefined": Signature((), (Parameter("b", False), Parameter("c", True))),
}


@pytest.fixture
def module(tmp_path: Path) -> Iterator[str]:
    name = f"nd_sig_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(SOURCE))
    package = tmp_path / f"{name}_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(PACKAGE_INIT)
    (package / "impl.py").write_text(PACKAGE_IMPL)
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        for loaded in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[loaded]


@pytest.mark.parametrize("function", list(CASES))
def test_the_source_and_the_function_give_one_signature(module: str, function: str) -> None:
    target = f"{module}:{function}"
    from_source = static_signature(target)  # before any import of the module
    assert module not in sys.modules
    imported = __import__(module)
    assert from_source == signature_of(getattr(imported, function)) == CASES[function]


@pytest.mark.parametrize(
    "function", ["decorated", "made", "maker", "Maker", "mapping_type", "rebound", "shadowed"]
)
def test_what_the_source_cannot_tell_is_left_to_an_import(module: str, function: str) -> None:
    assert static_signature(f"{module}:{function}") is None
    assert static_signature(f"{module}:nowhere") is None
    assert static_signature("nd_no_such_module_at_all:f") is None


def test_a_re_export_is_followed_without_importing_the_package(module: str) -> None:
    assert static_signature(f"{module}_pkg:exported") == Signature(
        ("params",), (Parameter("rows", False), Parameter("limit", True))
    )
    assert static_signature(f"{module}_pkg.impl:plain") is not None
    assert static_signature(f"{module}_pkg:plain") is None  # through a star import: unknown
    assert f"{module}_pkg" not in sys.modules
    assert module_file(f"{module}_pkg.impl") == Path(sys.path[0]) / f"{module}_pkg" / "impl.py"


def test_a_positional_only_parameter_cannot_be_given(module: str) -> None:
    for read in (
        lambda: static_signature(f"{module}:positional_only", "extract"),
        lambda: signature_of(__import__(module).positional_only, "extract"),
    ):
        with pytest.raises(ProcessLoadError, match="positional-only parameter 'pipe'"):
            read()


# -- inputs -----------------------------------------------------------------------------------


def test_inputs_by_name_mapped_and_optional() -> None:
    signature = Signature(
        ("params",),
        (Parameter("companies", False), Parameter("shuttles", False), Parameter("limit", True)),
    )
    variables = {"raw_companies": 1, "shuttles": 2}

    def read(name: str) -> Any:
        return variables[name]

    assert input_values(signature, {"companies": "raw_companies"}, read).named == {
        "companies": 1,
        "shuttles": 2,
    }
    variables["limit"] = 5
    assert input_values(signature, {"companies": "raw_companies"}, read).named["limit"] == 5
    with pytest.raises(MissingInput, match="its input 'companies' does not exist"):
        input_values(signature, {}, read)
    with pytest.raises(MissingInput, match="'shuttles' \\(variable 'other'\\)"):
        input_values(signature, {"companies": "raw_companies", "shuttles": "other"}, read)


def test_params_as_arguments_the_whole_or_one_key_path() -> None:
    signature = Signature((), (Parameter("parameters", False), Parameter("test_size", True)))
    params = {"split_options": {"test_size": 0.2, "random_state": 3}}
    mapped = {
        "parameters": FromParams(),
        "test_size": FromParams(("split_options", "test_size")),
    }
    got = input_values(signature, mapped, {}.__getitem__, params)
    assert got.named == {"parameters": params, "test_size": 0.2}
    assert got.named["parameters"] is params  # the mapping the process gets as params
    wrong = {**mapped, "test_size": FromParams(("split_options", "test_sise"))}
    # a default does not hide a key path that names nothing: it is a mistake, not an absence
    with pytest.raises(MissingInput) as caught:
        input_values(signature, wrong, {}.__getitem__, params)
    assert str(caught.value) == (
        "its input 'test_size' (params.split_options.test_sise) does not exist: "
        "params.split_options has no key 'test_sise' (did you mean 'test_size'? its keys: "
        "test_size, random_state)"
    )


def test_a_list_is_spread_over_a_star_parameter_in_order() -> None:
    def joiner(spine, label="x", *dfs, **named):  # type: ignore[no-untyped-def]
        return spine, label, dfs, named

    signature = signature_of(joiner)
    variables = {"spine_df": 0, "a": 1, "b": 2, "c": 3}
    mapped = {
        "spine": "spine_df",
        "dfs": Gathered(("a", "b", "c")),
        "named": Gathered(("a",), ("k",)),
    }
    arguments = input_values(signature, mapped, variables.__getitem__)
    # the optional parameter before *dfs is given its default, by position
    assert call_process(joiner, {}, arguments) == (0, "x", (1, 2, 3), {"k": 1})
    # **named mapped: it gets what is mapped alone, not pipe, log and params
    given = {"pipe": "P", "log": "L", "params": {}}
    assert call_process(joiner, given, arguments)[3] == {"k": 1}
    assert (
        call_process(
            joiner, given, input_values(signature, {"spine": "spine_df"}, variables.__getitem__)
        )[3]
        == given
    )
    # nothing mapped to *dfs: Python's own empty tuple
    assert call_process(joiner, {}, input_values(signature, {}, {"spine": 9}.__getitem__)) == (
        9,
        "x",
        (),
        {},
    )
    with pytest.raises(MissingInput, match="its input 'dfs' \\(variable 'd'\\)"):
        input_values(signature, {**mapped, "dfs": Gathered(("a", "d"))}, variables.__getitem__)


def test_a_star_parameter_from_params_takes_a_list() -> None:
    signature = Signature((), (), "values", "options")
    params = {"xs": [1, 2], "opts": {"alpha": 0.5}, "n": 3}
    got = input_values(
        signature, {"values": FromParams(("xs",)), "options": FromParams(("opts",))}, {}.get, params
    )
    assert (got.spread, got.keywords) == ([1, 2], {"alpha": 0.5})
    with pytest.raises(BadVariadic, match="\\*values takes a list; it was given int"):
        input_values(signature, {"values": FromParams(("n",))}, {}.get, params)


def test_a_scope_names_a_template_s_variables() -> None:
    scope = Scope("linear", (("table", "model_input_table"),))
    signature = Signature((), (Parameter("table", False), Parameter("X_train", False)))
    variables = {"model_input_table": 1, "linear.X_train": 2}
    got = input_values(signature, {}, variables.__getitem__, {}, scope)
    assert got.named == {"table": 1, "X_train": 2}
    assert source_of("X_train", {"X_train": "given"}, scope) == "given"  # mapped: as written


# -- outputs ----------------------------------------------------------------------------------


def test_one_output_takes_the_value() -> None:
    assert Outputs("one", ("x",)).split([1, 2], set()) == {"x": [1, 2]}
    assert Outputs("one", ("x",)).split(0, set()) == {"x": 0}
    with pytest.raises(OutputError, match="returned None for outputs: x \\(a missing return\\?\\)"):
        Outputs("one", ("x",)).split(None, set())
    assert Outputs("one", ("x",)).split(None, {"x"}) == {}  # written through pipe.vars


def test_a_sequence_is_unpacked() -> None:
    outputs = Outputs("sequence", ("a", "b"))
    assert outputs.split((1, 2), set()) == {"a": 1, "b": 2}
    assert outputs.split([1, 2], set()) == {"a": 1, "b": 2}
    with pytest.raises(OutputError, match=r"outputs: \[a, b\] takes 2 values; it returned 3"):
        outputs.split((1, 2, 3), set())
    with pytest.raises(OutputError, match="takes a tuple or list of 2 values; it returned a str"):
        outputs.split("ab", set())
    with pytest.raises(OutputError, match="it returned None"):
        outputs.split(None, {"a"})


def test_a_mapping_gives_its_keys() -> None:
    outputs = Outputs("mapping", ("train", "test"), ("X_train", "X_test"))
    assert outputs.split({"X_train": 1, "X_test": 2, "extra": 3}, set()) == {"train": 1, "test": 2}
    with pytest.raises(OutputError, match="has no key 'X_test' \\(its keys: 'X_train'\\)"):
        outputs.split({"X_train": 1}, set())
    with pytest.raises(OutputError, match="takes a mapping; it returned a list"):
        outputs.split([1], set())
    assert outputs.describe() == "outputs: {train: X_train, test: X_test}"
