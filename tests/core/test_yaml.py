"""Reading YAML (``normandy_core.config._yaml``): shared and bounded aliases, characters YAML
refuses, syntax errors worded for people, and no input that raises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from normandy_core.config import parse_yaml
from normandy_core.config._yaml import load_yaml
from normandy_core.config._yaml_build import MAX_ALIAS_VALUES, MAX_DEPTH
from normandy_core.errors import Problem


def parse(text: str, *, secret: bool = False) -> tuple[object, list[str]]:
    """(data, or ``NOT_YAML`` when the text is not YAML; the problems as strings)."""
    doc, problems = parse_yaml(text, "f.yml", secret=secret)
    return (NOT_YAML if doc is None else doc.data), [str(p) for p in problems]


NOT_YAML = object()


def laughs(levels: int, width: int = 10) -> str:
    """The "billion laughs": each level a list of ``width`` aliases of the level below."""
    lines = ["a0: &a0 [lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


# -- aliases ----------------------------------------------------------------------------------


def test_an_alias_is_the_anchored_object_not_a_copy() -> None:
    doc, problems = parse_yaml("a: &x {k: [1, 2]}\nb: *x\nc: [*x, *x]\n", "f.yml")
    assert problems == []
    assert doc is not None
    data = doc.data
    assert data == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}, "c": [{"k": [1, 2]}] * 2}
    assert data["b"] is data["a"] and data["c"][0] is data["a"] and data["c"][1] is data["a"]
    # where an alias is used, its own position; inside the shared value, the anchor's
    assert doc.position(["b"]) == (2, 4)
    assert doc.position(["c", 1]) == (3, 9)
    assert doc.position(["b", "k"]) == (1, 11)


def test_a_billion_laughs_is_refused_where_it_grows_too_big() -> None:
    data, problems = parse(laughs(10))  # 10**9 values written out; built in a blink
    assert problems == [
        "f.yml:7:5: a6: this value would expand to 2,111,111 values through its aliases, "
        f"more than the {MAX_ALIAS_VALUES:,} allowed: each alias (*name) stands for a full "
        "copy of its anchor (&name), so aliases of aliases multiply; write the values out, "
        "or nest fewer aliases"
    ]
    assert isinstance(data, dict)
    assert data["a6"] is None  # what is refused is dropped: nothing downstream walks it
    assert data["a7"] == [None] * 10
    assert data["a9"][0][0] is data["a7"]


def test_aliases_under_the_bound_are_kept() -> None:
    # a5 expands to 211,111 values, a1 to a5 add 234,560: three more uses stay under a million
    text = laughs(6) + "all: [*a5, *a5, *a5]\n"
    data, problems = parse(text)
    assert problems == []
    assert isinstance(data, dict)
    assert data["all"][2] is data["a5"]


def test_the_bound_counts_the_whole_document() -> None:
    # no value is too big, but the document holds a5 (211,111 values) four more times
    text = laughs(6) + "".join(f"b{i}: *a5\n" for i in range(4))
    data, problems = parse(text)
    assert data is None
    assert len(problems) == 1
    assert problems[0].startswith("f.yml:1:1: this value would expand to 1,079,")


def test_a_real_configuration_with_merges_is_not_refused() -> None:
    # 10,000 process entries that each merge defaults: 200,000 values added, far from the bound
    entries = "".join(
        f"    p{i}: {{<<: *defaults, params: {{<<: *params, n: {i}}}}}\n" for i in range(10_000)
    )
    text = (
        "defaults: &defaults {retries: 1, timeout: 60, error_tolerance: false}\n"
        "params: &params {a: 1, b: two, c: [1, 2, 3], d: {x: 1, y: 2}}\n"
        "flows:\n  main:\n" + entries
    )
    data, problems = parse(text)
    assert problems == []
    assert isinstance(data, dict)
    entry = data["flows"]["main"]["p9999"]
    assert entry["retries"] == 1 and entry["params"]["n"] == 9999
    assert entry["params"]["c"] is data["params"]["c"]


def test_merges_that_copy_too_much_are_refused() -> None:
    big = "{" + ", ".join(f"k{i}: {i}" for i in range(20_000)) + "}"
    text = f"big: &big {big}\nall:\n" + "".join("  - {<<: *big}\n" for _ in range(60))
    data, problems = parse(text)
    assert data is None
    assert problems == [
        f"f.yml:53:10: all[50]: '<<' merges in this file copy more than {MAX_ALIAS_VALUES:,} "
        "keys; merge smaller mappings, or fewer times"
    ]


def test_merged_keys_keep_the_positions_they_are_written_at() -> None:
    doc, problems = parse_yaml("d: &d {a: 1, b: 2}\nm:\n  <<: *d\n  b: 3\n", "f.yml")
    assert problems == []
    assert doc is not None
    assert doc.data["m"] == {"b": 3, "a": 1}
    assert doc.position(["m", "a"]) == (1, 11)
    assert doc.position(["m", "b"]) == (4, 6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &x [*x]\n", "f.yml:1:8: a[0]: an alias refers to a node that contains it"),
        ("a: *nope\n", "f.yml:1:4: a: alias *nope refers to no anchor; define &nope"),
        ("a: &x 1\nb: &x 2\n", "f.yml:2:4: b: anchor &x is defined twice (first at line 1)"),
        ("a: 1\n---\nb: 2\n", "f.yml:2:1: a second YAML document starts here"),
        ("m: {<<: [1, 2]}\n", "f.yml:1:10: m: '<<' merges a mapping (or a list of mappings)"),
    ],
    ids=["cycle", "undefined", "anchor-twice", "two-documents", "merge-a-scalar"],
)
def test_alias_mistakes_are_problems(text: str, expected: str) -> None:
    _, problems = parse(text)
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems


def test_alias_mistakes_in_secrets_never_name_the_alias() -> None:
    _, problems = parse(
        "password: *hunter2\ntoken: &swordfish 1\nother: &swordfish 2\n", secret=True
    )
    assert len(problems) == 2
    assert not any("hunter2" in p or "swordfish" in p for p in problems)


# -- nesting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        "{a: " * 100_000 + "}" * 100_000,
        "".join(" " * i + "-\n" for i in range(300)),
        "- " * 10_000 + "x\n",
    ],
    ids=["flow-lists", "flow-mappings", "block-lists", "compact-lists"],
)
def test_deep_nesting_is_a_problem_not_a_crash(text: str) -> None:
    # ruamel's C composer recursed here until the C stack overflowed: a segmentation fault
    data, problems = parse(text)
    assert data is None
    assert len(problems) == 1
    assert problems[0].endswith(f"the data nests deeper than {MAX_DEPTH} levels; flatten it")


def test_nesting_up_to_the_limit_is_fine() -> None:
    data, problems = parse("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert problems == []
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(data, list)
        (data,) = data
    assert data == []


# -- characters -----------------------------------------------------------------------------


def test_every_control_character_is_named_where_it_is() -> None:
    data, problems = parse("a: 1\n# a comment\x0c\nb: x\x1by\x7f\r\nc: '\x00'\n")
    assert data is NOT_YAML
    assert problems == [
        "f.yml:2:12: control character U+000C (form feed) is not allowed in YAML; delete it "
        '(inside double quotes, write it as "\\x0c")',
        "f.yml:3:5: control character U+001B (escape) is not allowed in YAML; delete it "
        '(inside double quotes, write it as "\\x1b")',
        "f.yml:3:7: control character U+007F (delete) is not allowed in YAML; delete it "
        '(inside double quotes, write it as "\\x7f")',
        "f.yml:4:5: control character U+0000 (null) is not allowed in YAML; delete it "
        '(inside double quotes, write it as "\\x00")',
    ]


@pytest.mark.parametrize(
    ("char", "named"),
    [
        ("\x01", "control character U+0001 is"),
        ("\x9b", "control character U+009B is"),
        ("\ufffe", "U+FFFE is not a character YAML allows"),
        ("\udcff", "U+DCFF is not a character (the text is not valid Unicode)"),
    ],
)
def test_other_characters_yaml_refuses(char: str, named: str) -> None:
    _, problems = parse(f"a: b{char}\n")
    assert problems == [f"f.yml:1:5: {named}" + problems[0].split(named, 1)[1]]


def test_a_binary_file_gives_a_bounded_list_of_problems() -> None:
    _, problems = parse("\x01" * 5000)
    assert len(problems) == 21
    assert problems[-1] == (
        "f.yml:1:21: and 4,980 more characters YAML does not allow: is this a text file?"
    )


def test_characters_in_a_secret_file_never_quote_it(tmp_path: Path) -> None:
    file = tmp_path / "creds.yml"
    file.write_text("password: 'hunter2\x1b'\ntoken: swordfish\x0c\n", encoding="utf-8")
    doc, problems = load_yaml(file, secret=True)
    assert doc is None
    assert [(p.line, p.column) for p in problems] == [(1, 19), (2, 17)]
    assert not any("hunter2" in str(p) or "swordfish" in str(p) for p in problems)


def test_the_allowed_characters_are_allowed() -> None:
    data, problems = parse("a: 'tab\t nbsp\xa0 é ☃ \U0001f600'\r\nb: \ufeffx\n")
    assert problems == []
    assert data == {"a": "tab\t nbsp\xa0 é ☃ \U0001f600", "b": "\ufeffx"}


# -- syntax errors --------------------------------------------------------------------------

TAB = "a tab character here: YAML indents with spaces only; replace it with spaces"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("confs:\n  envs:\n\tdev: {}\n", "3:1"),
        ("confs:\n  envs:\n  \tdev: {}\n", "3:3"),
        ("a:\n  -\tb\n", "2:4"),
        ("a: 1\n\t\nb: 2\n", "2:1"),
    ],
)
def test_a_tab_is_named(text: str, where: str) -> None:
    _, problems = parse(text)
    assert problems == [f"f.yml:{where}: YAML syntax error: {TAB}"]


STEPS_THEN_ITEMS = """\
flows:
  main:
    steps:
      extract
        - extract_data
        - read_db
        - read_api
      load: [load_data]
"""

STEPS_THEN_STEP = """\
flows:
  main:
    tags: [default]
    steps
      extract: [a]
      load: [b]
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            STEPS_THEN_ITEMS,
            "f.yml:4:14: YAML syntax error: missing ':' after 'extract'? (the parser stopped at "
            "line 8, column 11: mapping values are not allowed in this context)",
        ),
        (
            STEPS_THEN_STEP,
            "f.yml:4:10: YAML syntax error: missing ':' after 'steps'? (the parser stopped at "
            "line 5, column 14: could not find expected ':')",
        ),
        (
            "flows:\n  main\n    steps: {s: [a]}\n",
            "f.yml:2:7: YAML syntax error: missing ':' after 'main'?",
        ),
        (
            "flows:\n  main:\n    steps:\n      extract: [a]\n      load  # the last step\n",
            "f.yml:5:11: YAML syntax error: missing ':' after 'load'?",
        ),
    ],
    ids=["step-then-items", "steps-then-step", "flow", "last-line"],
)
def test_a_missing_colon_is_reported_on_its_line(text: str, expected: str) -> None:
    _, problems = parse(text)
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems


def test_a_missing_colon_between_a_key_and_its_value() -> None:
    """`outputs customer_totals` got "missing ':' after 'outputs customer_totals'": the
    colon goes after the key, the first word (issue 23)."""
    text = (
        "flows:\n  main:\n    steps:\n      total:\n        totals:\n"
        "          outputs customer_totals\n          params: {a: 1}\n"
    )
    _, problems = parse(text)
    assert problems == [
        "f.yml:6:18: YAML syntax error: missing ':' after 'outputs' (outputs: "
        "customer_totals)? (the parser stopped at line 7, column 17: mapping values are not "
        "allowed in this context)"
    ]


def test_a_missing_colon_in_secrets_names_no_key() -> None:
    _, problems = parse("user: me\npassword\n  hunter2: x\n", secret=True)
    assert problems == [
        "f.yml:2:9: YAML syntax error: missing ':' after the key on this line? (the parser "
        "stopped at line 3)"
    ]


def test_other_syntax_errors_keep_the_parser_message() -> None:
    # a multi-line plain value is no missing colon: the error stays where the parser saw it
    _, problems = parse("a: some text\n  more text\nb:\n  c: 1\n  d: x: y\n")
    assert problems == [
        "f.yml:5:7: YAML syntax error: mapping values are not allowed in this context"
    ]


def test_a_byte_order_mark_inside_the_file_is_named() -> None:
    _, problems = parse("a: 1\n\ufeffb: 2\n")
    assert problems == [
        "f.yml:2:1: YAML syntax error: a byte order mark (U+FEFF, invisible) here; delete it"
    ]


# -- no input raises ------------------------------------------------------------------------

VALID = """\
confs:
  workers: 2
  envs:
    dev: {root: "${env:ROOT:data}", list: [1, 2.5, true, null, 2001-12-14]}
defaults: &defaults {retries: 1, params: {a: "x\\ty", 'b': |
    literal
  }}
flows:
  main:
    tags: [default, 'nightly']
    steps:
      extract:
        - read: {<<: *defaults, timeout: 3}
        - ? complex
          : key
      load: !!map {x: !!str 1, y: !!int "2", z: !!float .5}
"""

HOSTILE = [
    "",
    "---",
    "...",
    "%YAML 1.2\n---\na: 1",
    "%YAML 9.9\n---\na: 1",
    "%TAG ! tag:x,2000:\n---\na: !foo 1",
    "a: !<tag:yaml.org,2002:python/object:os.system> x",
    "a: !!binary aGVsbG8=",
    "a: !!set {x, y}",
    "a: !!omap [x: 1]",
    "a: !!timestamp 2001-13-45",
    "a: !!int 0x",
    "a: " + "9" * 5000,
    'a: "\\q"',
    'a: "\\uD800"',
    'a: "\\x00\\0\\e"',
    "&a a: *a",
    "*a : 1",
    "? [a, b]\n: c",
    "[a, b]: c",
    "{a: 1}: b",
    "a: &a\n  <<: *a",
    "<<: 1",
    "a: [<<]",
    "- <<: [*x]",
    "a: " + "*a " * 1000,
    "a: &" + "x" * 10_000 + " 1",
    '"' + "x" * 100_000,
    "a: |\n" + "  x\n" * 1000,
    "a: >-\n\tx",
    "- - - - - - - - - - x",
    "? ? ? ? ? x",
]


def test_hostile_inputs_give_problems_or_data() -> None:
    for text in HOSTILE:
        _check(text)


def test_truncated_documents_give_problems_or_data() -> None:
    for end in range(len(VALID) + 1):
        _check(VALID[:end])


def test_random_inputs_give_problems_or_data() -> None:
    rng = random.Random(20240611)
    alphabet = "ab01 \n\t-:?,[]{}#&*!|>'\"%@`\\~.<=\x00\x0c\x1b\x85\ufeff\u2028é"
    for _ in range(3000):
        _check("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60))))
    for _ in range(3000):
        text = list(VALID)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(text))
            text[at : at + rng.randrange(0, 3)] = rng.choice(alphabet) * rng.randrange(0, 3)
        _check("".join(text))


def _check(text: str) -> None:
    """Parsing ``text`` raises nothing, and gives problems or data that plain code can walk."""
    for secret in (False, True):
        doc, problems = parse_yaml(text, "f.yml", secret=secret)
        assert all(isinstance(p, Problem) and p.line >= 1 and p.column >= 1 for p in problems)
        if doc is None:
            assert problems, repr(text)
        else:
            repr(doc.data)  # finite: no cycle, nothing too big
