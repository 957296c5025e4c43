"""A stand-in for the ``ollama`` binary: ``ollama serve`` runs :class:`FakeOllama` on
``$OLLAMA_HOST`` (one installed model, ``m``) until it is terminated.

Used to test that the plugin starts ``ollama serve`` when nothing answers and the binary is
on PATH. Each start appends a line to ``$LLMBENCH_FAKE_OLLAMA_LOG``;
``$LLMBENCH_FAKE_OLLAMA_VERSION`` picks the fake's version (``fakes.ollama.VERSIONS``).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from fakes import FakeOllama, ModelScript
from fakes.ollama import V0_12


def main(argv: list[str]) -> int:
    if argv[:1] != ["serve"]:
        print(f"fake ollama: only `serve` is implemented, not {argv!r}", file=sys.stderr)
        return 2
    host = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434")
    port = int(host.rsplit(":", 1)[1])
    log = os.environ.get("LLMBENCH_FAKE_OLLAMA_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"serve {host} pid {os.getpid()}\n")
    time.sleep(0.3)  # a real server takes a moment before it answers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    version = os.environ.get("LLMBENCH_FAKE_OLLAMA_VERSION", V0_12)
    script = ModelScript(["Hello", " there"], token_delay_s=0.001)
    with FakeOllama({"m": script}, port=port, version=version):
        print(f"Listening on 127.0.0.1:{port} (fake)", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
