"""A task's logging in its worker (:mod:`normandy_core.tasklog`): the ``log`` a process
receives, its printed output and its module loggers' records become masked lines on the
log queue, each call's lines sent when it returns."""

from __future__ import annotations

import logging
import queue
import sys
import threading

import pytest

from normandy_core.logs import LISTENER_THREAD, is_lines, lines_records
from normandy_core.masking import Masker
from normandy_core.tasklog import LogWriter, TaskLogger, release_module_loggers, task_logger
from normandy_core.worker import TaskCall


def _call(level: int = logging.INFO) -> TaskCall:
    return TaskCall(
        run_id="r",
        flow="f",
        step="s",
        task="t[x]",
        key="f.s.t[x]",
        process="t",
        target="m:t",
        params={},
        tags=(),
        env="dev",
        confs={},
        credentials={},
        root="/nowhere",
        vars_dir="/nowhere/vars",
        staging_dir="/nowhere/staging",
        log_level=level,
    )


def _sent(log_queue: queue.Queue) -> list[tuple[str, str]]:
    """(level name, message) of every line on the queue, in order."""
    out = []
    while not log_queue.empty():
        item = log_queue.get_nowait()
        assert is_lines(item), item
        out += [(r.levelname, r.getMessage()) for r in lines_records(item)]
    return out


@pytest.fixture
def log_queue() -> queue.Queue:
    return queue.Queue()


def _log(log_queue: queue.Queue, level: int = logging.INFO) -> logging.Logger:
    """The task's ``log``, made in the test itself: pytest adds its own handlers to every
    logger that does not propagate when a test starts (task_logger removes them)."""
    return task_logger(_call(level), log_queue, Masker(["s3cr3t"]))


def test_log_is_a_standard_logger_of_the_task(log_queue: queue.Queue):
    log = _log(log_queue)
    assert isinstance(log, logging.Logger) and isinstance(log, TaskLogger)
    log.info("plain")
    log.info("%s and %d", "args", 2)
    log.info("%(name)s by name", {"name": "mapping"})
    log.warning(["not", "a", "string"])
    log.debug("below the level")
    log.info("the password is %s", "s3cr3t")
    assert _sent(log_queue) == [
        ("INFO", "plain"),
        ("INFO", "args and 2"),
        ("INFO", "mapping by name"),
        ("WARNING", "['not', 'a', 'string']"),
        ("INFO", "the password is ***"),
    ]


def test_a_message_that_does_not_format_is_reported_as_logging_does(
    log_queue: queue.Queue, capsys
):
    log = _log(log_queue)
    log.info("%d apples", "many")
    assert _sent(log_queue) == []
    assert "--- Logging error ---" in capsys.readouterr().err
    log.info("still logging")
    assert _sent(log_queue) == [("INFO", "still logging")]


def test_exceptions_extra_and_the_processs_own_handlers_take_the_standard_way(
    log_queue: queue.Queue,
):
    log = _log(log_queue)
    seen: list[logging.LogRecord] = []

    class Mine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    try:
        raise ValueError("refused s3cr3t")
    except ValueError:
        log.exception("it failed")
    log.info("with extra", extra={"user": "al"})
    mine = Mine()
    log.addHandler(mine)
    try:
        log.info("to both")
    finally:
        log.removeHandler(mine)
    [failed, extra, both] = _sent(log_queue)
    assert failed[0] == "ERROR" and failed[1].startswith("it failed\nTraceback")
    assert failed[1].endswith("ValueError: refused ***")
    assert extra == ("INFO", "with extra") and both == ("INFO", "to both")
    assert [r.getMessage() for r in seen] == ["to both"]
    assert seen[0].funcName.startswith("test_exceptions_extra_and")  # the caller's


def test_printed_lines_wait_for_their_newline(log_queue: queue.Queue):
    out = LogWriter(_log(log_queue), logging.INFO)
    out.write("part")
    out.write("ial")
    assert _sent(log_queue) == []
    out.write(" line\nsecond\nthird without")
    assert _sent(log_queue) == [("INFO", "partial line"), ("INFO", "second")]
    print("a", "print", file=out)
    out.write("\n\n")
    assert _sent(log_queue) == [("INFO", "third withouta print"), ("INFO", ""), ("INFO", "")]
    out.write("the tail")
    out.flush()
    assert _sent(log_queue) == [("INFO", "the tail")]


def test_a_write_of_several_lines_is_sent_at_once_and_masked_whole(log_queue: queue.Queue):
    pem = "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----"
    log = task_logger(_call(), log_queue, Masker([pem]))
    out = LogWriter(log, logging.WARNING)
    out.write(f"the key:\n{pem}\nthat was it\n")
    [item] = list(log_queue.queue)
    assert [(r.levelname, r.getMessage()) for r in lines_records(item)] == [
        ("WARNING", "the key:"),
        ("WARNING", "***"),
        ("WARNING", "that was it"),
    ]


def test_a_credential_printed_in_flushed_pieces_is_masked_whole(log_queue: queue.Queue):
    """`print(pw[:3], end="", flush=True); print(pw[3:])` sent each piece as a line,
    neither of which is the credential: it was logged in the clear (issue 23)."""
    out = LogWriter(_log(log_queue), logging.INFO)
    print("password:", "s3c", end="", flush=True, file=out)
    assert _sent(log_queue) == []  # it may be the start of one: it waits for its line
    print("r3t", file=out)
    print("loading", end="", flush=True, file=out)  # nothing like one: sent when flushed
    assert _sent(log_queue) == [("INFO", "password: ***"), ("INFO", "loading")]
    out.write("almost s3cr")
    out.flush()
    out.end()  # the task is over: the line goes as it is
    assert _sent(log_queue) == [("INFO", "almost s3cr")]


def test_lines_below_the_tasks_level_are_dropped(log_queue: queue.Queue):
    log = _log(log_queue, logging.WARNING)
    LogWriter(log, logging.INFO).write("printed\n")
    LogWriter(log, logging.WARNING).write("on stderr\n")
    assert _sent(log_queue) == [("WARNING", "on stderr")]


def test_threads_printing_at_once_lose_and_mix_no_line(log_queue: queue.Queue):
    out = LogWriter(_log(log_queue), logging.INFO)

    def talk(name: str) -> None:
        for i in range(500):
            print(f"{name} {i}", file=out)
        out.write(f"{name} unfinished")

    threads = [threading.Thread(target=talk, args=(name,)) for name in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.flush()
    said = [message for _, message in _sent(log_queue)]
    for name in "abcd":
        mine = [m for m in said if m.startswith(f"{name} ")]
        assert mine == [f"{name} {i}" for i in range(500)] + [f"{name} unfinished"]
    assert len(said) == 2004


def test_without_a_queue_lines_go_nowhere():
    log = task_logger(_call(), None, Masker([]))
    log.warning("nowhere")
    LogWriter(log, logging.WARNING).write("nowhere either\n")


# -- module loggers ----------------------------------------------------------------------------


@pytest.fixture
def released():
    """Give the root logger back after the test (task_logger routes it to the task)."""
    yield
    release_module_loggers()


def test_module_loggers_reach_the_task_at_its_level(log_queue: queue.Queue, released):
    _log(log_queue)
    library = logging.getLogger("some_library.client")
    library.info("connected with s3cr3t")
    library.debug("below the level")
    logging.getLogger().warning("the root logger too")
    assert _sent(log_queue) == [
        ("INFO", "connected with ***"),
        ("WARNING", "the root logger too"),
    ]
    verbose = _log(log_queue, logging.DEBUG)
    library.debug("now shown")
    assert _sent(log_queue) == [("DEBUG", "now shown")]
    for handler in list(verbose.handlers):  # the task ended (as run_task ends it)
        verbose.removeHandler(handler)
    library.warning("after the task")
    assert _sent(log_queue) == []


def test_normandys_own_loggers_and_its_log_thread_are_not_a_tasks(
    log_queue: queue.Queue, released
):
    _log(log_queue)
    logging.getLogger("normandy_core.executors").warning("the orchestrator's")
    logging.getLogger("normandy.run.1").warning("the run's")
    logging.getLogger("normandy_io.readers").warning("a process package's")

    def in_the_log_thread() -> None:
        logging.getLogger("rich.console").warning("while filing lines")

    thread = threading.Thread(target=in_the_log_thread, name=LISTENER_THREAD)
    thread.start()
    thread.join()
    assert _sent(log_queue) == [("WARNING", "a process package's")]


def test_normandys_own_records_in_a_task_are_never_its_output(
    log_queue: queue.Queue, released, monkeypatch, capfd
):
    """Under serial a task runs in the orchestrator, its stderr a LogWriter: Normandy's
    own warnings go to the process's own stderr, as Python's last resort puts them."""
    log = _log(log_queue)
    ours = [h for h in logging.root.handlers if type(h).__name__ == "_ModuleLoggers"]
    monkeypatch.setattr(logging.root, "handlers", ours)  # pytest's own are not there
    monkeypatch.setattr(sys, "stderr", LogWriter(log, logging.WARNING))
    logging.getLogger("normandy_core.store").warning("the store's own warning")
    logging.getLogger("normandy_core.store").info("and below the last resort's level")
    assert _sent(log_queue) == []
    assert capfd.readouterr().err == "the store's own warning\n"


def test_the_root_logger_is_given_back(log_queue: queue.Queue):
    before = logging.root.level, list(logging.root.handlers)
    _log(log_queue, logging.DEBUG)
    assert logging.root.level == logging.DEBUG
    release_module_loggers()
    assert (logging.root.level, logging.root.handlers) == before
