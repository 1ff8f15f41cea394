"""Masking credentials (:mod:`normandy_core.masking`, SPEC 11): every form a value takes
in text is masked — several lines, escaped in a ``repr`` or in JSON — and in a traceback
only what the process wrote, never Python's framing."""

from __future__ import annotations

import json

from normandy_core.masking import Masker

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "AB\n"
    "-----END PRIVATE KEY-----"
)
TRICKY = 'it\'s "quoted"\\path\nsecond line-1234\ttab'


def test_a_value_of_several_lines_is_masked_whole_and_line_by_line():
    masker = Masker([PEM])
    assert masker(f"key: {PEM}.") == "key: ***."
    lines = PEM.splitlines()
    assert [masker(line) for line in lines] == ["***", "***", "***", "AB", "***"]
    assert masker(PEM.replace("\n", "\r\n")) == "***\r\n***\r\n***\r\nAB\r\n***"
    assert masker(f"  {lines[1]}  ") == "  ***  "  # a line of it, indented


def test_every_escaped_form_of_a_value_is_masked():
    masker = Masker([TRICKY])
    shown = [
        repr({"password": TRICKY}),
        str([TRICKY]),
        "%r" % (TRICKY,),  # noqa: UP031 - as logging formats %r
        repr(f"both quotes ' \" and {TRICKY}"),
        ascii({"password": TRICKY + "é"}),
        json.dumps({"password": TRICKY}),
        json.dumps({"password": TRICKY}, ensure_ascii=False),
        TRICKY,
    ]
    for text in shown:
        masked = masker(text)
        assert "***" in masked, text
        for part in ("quoted", "second line", "path"):
            assert part not in masked, (text, masked)


def test_short_values_and_short_lines_are_not_masked():
    masker = Masker(["ab", " x ", "a\nbc\nlong enough"])
    assert masker("ab x a bc long enough") == "ab x a bc ***"


def test_a_traceback_keeps_pythons_framing_and_masks_what_the_process_wrote():
    masker = Masker(["tion", "hunter2-topsecret"])

    def connect() -> None:
        try:
            raise ValueError("refused hunter2-topsecret")
        except ValueError:
            raise RuntimeError("no connection") from KeyError("the position")

    try:
        connect()
    except RuntimeError as exc:
        text = masker.format_exception(exc)
    assert "\nTraceback (most recent call last):\n" in text
    assert "During handling of the above exception, another exception occurred:" not in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert "KeyError: 'the posi***'" in text
    assert "RuntimeError: no connec***\n" in text
    assert ', in connect\n    raise RuntimeError("no connec***") from KeyError' in text
    assert "hunter2" not in text


def test_the_context_and_notes_of_an_exception_are_masked_not_their_framing():
    masker = Masker(["tion", "hunter2-topsecret"])

    def check_connection() -> None:
        try:
            raise ValueError("refused hunter2-topsecret")
        except ValueError:
            error = RuntimeError("no connection")
            if hasattr(error, "add_note"):
                error.add_note("see the section on hunter2-topsecret")
            raise error  # noqa: B904 - the context is what is tested

    try:
        check_connection()
    except RuntimeError as exc:
        text = masker.format_exception(exc)
    assert "During handling of the above exception, another exception occurred:" in text
    assert "ValueError: refused ***" in text
    assert ", in check_connection\n" in text  # a File line is Python's framing
    assert "see the sec*** on ***" in text
    assert "hunter2" not in text and "excep***" not in text


def test_an_exception_groups_count_is_pythons_words():
    masker = Masker(["tion", "hunter2-topsecret"])
    group = ExceptionGroup("two failures", [ValueError("hunter2-topsecret"), KeyError("k")])  # noqa: F821
    try:
        raise group
    except Exception as exc:  # noqa: BLE001
        text = masker.format_exception(exc)
    assert "ExceptionGroup: two failures (2 sub-exceptions)" in text
    assert "ValueError: ***" in text and "Exception Group Traceback" in text


def test_a_syntax_errors_position_is_kept_and_its_text_masked():
    masker = Masker(["tion", "hunter2-topsecret"])
    try:
        compile("password = 'hunter2-topsecret' +\n", "procs_section.py", "exec")
    except SyntaxError as exc:
        text = masker.format_exception(exc)
    assert 'File "procs_section.py", line 1' in text
    assert "password = '***' +" in text and "SyntaxError: " in text
