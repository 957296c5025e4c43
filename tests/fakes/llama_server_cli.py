"""A stand-in for the ``llama-server`` binary: ``llama-server -m GGUF --port P -a ALIAS ...``
runs :class:`FakeLlamaServer` for ``GGUF`` on ``127.0.0.1:P`` until it is terminated (other
flags are accepted and ignored). Each start appends ``ALIAS GGUF PORT`` to
``$LLMBENCH_FAKE_SPAWN_LOG``.

Used by benchmarks/ to count the servers the plugin spawns per model.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from tests.fakes import FakeLlamaServer, ModelScript


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llama-server")
    parser.add_argument("-m", dest="model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-a", dest="alias")
    args, _ignored = parser.parse_known_args(argv)
    log = os.environ.get("LLMBENCH_FAKE_SPAWN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{args.alias} {args.model} {args.port}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    script = ModelScript(["Hello", " there"])
    with FakeLlamaServer(script, model_id=args.model, alias=args.alias, port=args.port):
        print(f"main: server is listening on http://127.0.0.1:{args.port} (fake)", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
