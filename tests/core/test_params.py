"""Params as nested mappings (SPEC 20): merged key by key, found by key path, set by key
path — with the keys that exist named where a path goes wrong."""

from __future__ import annotations

import pytest

from normandy_core.params import KeyPathError, lookup, merge_deep, set_path

PARAMS = {"split_options": {"test_size": 0.2, "random_state": 3}, "features": ["a", "b"], "n": 1}


def test_merge_deep_merges_mappings_and_replaces_everything_else() -> None:
    over = {"split_options": {"test_size": 0.4}, "features": ["c"], "new": {"x": 1}}
    merged = merge_deep(PARAMS, over)
    assert merged == {
        "split_options": {"test_size": 0.4, "random_state": 3},
        "features": ["c"],  # a list is a value: replaced, not merged
        "n": 1,
        "new": {"x": 1},
    }
    assert PARAMS["split_options"] == {"test_size": 0.2, "random_state": 3}  # unchanged
    assert merge_deep({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert merge_deep({"a": {"b": 2}}, {"a": 3}) == {"a": 3}


def test_lookup_finds_a_key_path_or_says_what_is_there() -> None:
    assert lookup(PARAMS, ("split_options", "test_size")) == 0.2
    assert lookup(PARAMS, ()) is PARAMS
    with pytest.raises(KeyPathError) as caught:
        lookup(PARAMS, ("split_options", "test_sise"))
    assert caught.value.depth == 1
    assert str(caught.value) == (
        "params.split_options has no key 'test_sise' (did you mean 'test_size'? its keys: "
        "test_size, random_state)"
    )
    with pytest.raises(KeyPathError, match="params has no key 'nope' \\(its keys: "):
        lookup(PARAMS, ("nope",))
    with pytest.raises(KeyPathError, match="params.n is the number 1, not a mapping"):
        lookup(PARAMS, ("n", "x"))


def test_set_path_sets_one_key_of_a_nested_mapping_and_copies_the_way_there() -> None:
    changed = set_path(PARAMS, ("split_options", "test_size"), 0.4)
    assert changed["split_options"] == {"test_size": 0.4, "random_state": 3}
    assert PARAMS["split_options"]["test_size"] == 0.2  # the original is untouched
    assert changed["features"] is PARAMS["features"]  # what is off the path is shared
    assert set_path(PARAMS, ("split_options", "new"), 1)["split_options"]["new"] == 1
    with pytest.raises(KeyPathError, match="params has no key 'split_option' \\(did you mean"):
        set_path(PARAMS, ("split_option", "test_size"), 0.4)
    with pytest.raises(KeyPathError, match="params.n is the number 1, not a mapping"):
        set_path(PARAMS, ("n", "x", "y"), 0)
