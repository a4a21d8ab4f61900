"""
Runs C{twistd keepalived -t -c FILE} for many files quickly: the
interpreter, Twisted and keepalive_tx are imported once, then each run is a
forked child that executes twistd's own C{run()} with that command line
(option parsing, plugin lookup, C{--config-test}, exit status), so nothing
is skipped but the start-up imports (about 0.7 s a run otherwise).

Usage (inside the network namespace to check in)::

    python3 -m tests.integration.corpus_runner FILE...

prints one JSON object per file: C{{"file", "code", "output"}}.

Test code: it blocks on its children, which is fine here.
"""

from __future__ import annotations

import json
import os
import selectors
import sys


def _warm() -> None:
    """
    Import and initialise what every run needs, by running twistd once on
    an empty file (it prints nothing and exits 0).
    """
    from twisted.scripts.twistd import run

    sys.argv = ["twistd", "keepalived", "-t", "-c", os.devnull]
    try:
        run()
    except SystemExit:
        pass


def _child(path: str, out: int) -> None:
    os.dup2(out, 1)
    os.dup2(out, 2)
    from twisted.scripts.twistd import run

    sys.argv = ["twistd", "keepalived", "-t", "-c", path]
    code = 0
    try:
        run()
    except SystemExit as e:
        if isinstance(e.code, int):
            code = e.code
        elif e.code is not None:
            sys.stderr.write(f"{e.code}\n")
            code = 1
    except BaseException as e:  # a crash must show, not hang the parent
        sys.stderr.write(f"corpus_runner: {e!r}\n")
        code = 70
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _start(path: str) -> tuple[int, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        _child(path, write)
    os.close(write)
    return pid, read


def main(paths: list[str], parallel: int = 4) -> None:
    """
    Run the files, C{parallel} children at a time; report in file order.
    """
    _warm()
    selector = selectors.DefaultSelector()
    pending = list(paths)
    running: dict[int, tuple[int, str, list[bytes]]] = {}
    done: dict[str, dict] = {}
    while pending or running:
        while pending and len(running) < parallel:
            path = pending.pop(0)
            pid, fd = _start(path)
            running[fd] = (pid, path, [])
            selector.register(fd, selectors.EVENT_READ)
        for key, _ in selector.select():
            fd = key.fd
            pid, path, chunks = running[fd]
            chunk = os.read(fd, 65536)
            if chunk:
                chunks.append(chunk)
                continue
            selector.unregister(fd)
            os.close(fd)
            del running[fd]
            _, status = os.waitpid(pid, 0)
            done[path] = {"file": path, "code": os.waitstatus_to_exitcode(status),
                          "output": b"".join(chunks).decode("utf-8", "replace")}
    for path in paths:
        sys.stdout.write(json.dumps(done[path]) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
