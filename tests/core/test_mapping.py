"""Dynamic fan-out's pure part (:mod:`normandy_core.mapping`): each element's key (so that
an appended element is a new task and the others keep theirs), its own content hash,
the bound, and what the elements' outputs make together."""

from __future__ import annotations

import pytest

from normandy_core.binding import Outputs
from normandy_core.config import MapSpec
from normandy_core.mapping import MapError, collect, elements_of

SPEC = MapSpec("files")


def keys(value, spec=SPEC):
    return [e.key for e in elements_of(value, spec, "f.s.t")]


def test_short_scalars_are_keyed_by_their_values_so_an_insertion_keeps_the_others():
    assert keys(["a.csv", "b/c.csv", 3, 2.5]) == ["a.csv", "b/c.csv", "3", "2.5"]
    before = elements_of(["a", "b"], SPEC, "f.s.t")
    after = elements_of(["z", "a", "b"], SPEC, "f.s.t")
    assert [(e.key, e.hash) for e in before] == [(e.key, e.hash) for e in after[1:]]


@pytest.mark.parametrize(
    "value",
    [
        ["a", "a"],  # duplicates
        ["a", 1, "1"],  # equal as text
        [{"x": 1}, {"x": 2}],  # not scalars
        ["x" * 65],  # too long to name a task
        ["a[1]"],  # brackets in a task name's key
        ["tab\there"],  # control characters
        [""],
    ],
)
def test_anything_else_is_keyed_by_position(value):
    assert keys(value) == [str(i) for i in range(len(value))]


def test_an_appended_element_is_one_new_key_and_the_others_keep_their_content_hash():
    rows = [{"id": i} for i in range(3)]
    before = elements_of(rows, SPEC, "f.s.t")
    after = elements_of([*rows, {"id": 3}], SPEC, "f.s.t")
    assert [e.key for e in after] == ["0", "1", "2", "3"]
    assert [e.hash for e in after[:3]] == [e.hash for e in before]
    assert after[3].hash not in {e.hash for e in before}
    assert after[0].read == "files[0]" and after[0].parent == "f.s.t"


def test_a_mapping_is_keyed_by_its_keys_and_its_values_are_the_elements():
    found = elements_of({"paris": 1, "lyon": 2}, SPEC, "f.s.t")
    assert [(e.key, e.value, e.position) for e in found] == [("paris", 1, 0), ("lyon", 2, 1)]
    assert keys({("a", 1): 1, ("b", 2): 2}) == ["0", "1"]  # keys no task can be named by


def test_what_cannot_be_mapped_says_what_to_do():
    with pytest.raises(MapError, match="map: files is an int; map over a list"):
        elements_of(3, SPEC, "f.s.t")
    with pytest.raises(MapError, match="map: files is None"):
        elements_of(None, SPEC, "f.s.t")
    with pytest.raises(MapError, match=r"has 11 elements, more than max_map \(10\); raise"):
        elements_of(list(range(11)), MapSpec("files", limit=10), "f.s.t")
    assert len(elements_of(list(range(10)), MapSpec("files", limit=10), "f.s.t")) == 10


def test_outputs_are_collected_in_order_leaving_out_what_failed():
    elements = elements_of(["a", "b", "c"], SPEC, "f.s.t")
    done = [(elements[0], {"out": 1, "n": 10}), (elements[2], {"out": 3, "n": 30})]
    got = collect(Outputs("sequence", ("out", "n")), ["a", "b", "c"], done)
    assert got == {"out": [1, 3], "n": [10, 30]}
    over = {"x": 1, ("t", 1): 2}
    elements = elements_of(over, SPEC, "f.s.t")
    done = [(elements[0], {"out": "X"}), (elements[1], {"out": "T"})]
    assert collect(Outputs("one", ("out",)), over, done) == {"out": {"x": "X", ("t", 1): "T"}}


def test_an_element_whose_key_would_show_a_credential_is_named_by_position():
    """A task's name is in the logs, the history and the report: a credential's value
    (SPEC 11) is never one, so a map over values holding one is keyed by positions."""
    tokens = ["public", "tok-s3cr3t-42"]
    assert [e.key for e in elements_of(tokens, SPEC, "f.s.t")] == tokens
    hidden = elements_of(tokens, SPEC, "f.s.t", secrets=("s3cr3t",))
    assert [e.key for e in hidden] == ["0", "1"]
    assert [e.value for e in hidden] == tokens  # the task still gets its element
    by_key = elements_of({"s3cr3t": 1}, SPEC, "f.s.t", secrets=("s3cr3t",))
    assert [e.key for e in by_key] == ["0"]
