"""A stand-in for the ``llama-server`` binary: ``llama-server -m GGUF --port P -a ALIAS ...``
runs :class:`FakeLlamaServer` for ``GGUF`` on ``127.0.0.1:P`` until it is terminated (other
flags are accepted and ignored). Each start appends ``ALIAS GGUF PORT`` to
``$LLMBENCH_FAKE_SPAWN_LOG`` (then ``np=N c=C``).

``-np N`` gives N slots (N requests run at once, the rest wait) and ``-c C`` the context of
all of them: each slot gets ``C / N`` (llama.cpp at the pinned commit: with an explicit
``-np`` and no ``--kv-unified``, ``cparams.n_ctx_seq = n_ctx / n_seq_max``, padded to 256,
src/llama-context.cpp:293-296; ``/props`` reports the slot's, server-context.cpp
``n_ctx_slot``). ``$LLMBENCH_FAKE_TOKEN_DELAY`` sets the seconds between tokens.

Used by benchmarks/ to count the servers the plugin spawns per model.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from fakes import FakeLlamaServer, ModelScript


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llama-server")
    parser.add_argument("-m", dest="model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-a", dest="alias")
    parser.add_argument("-c", dest="ctx", type=int, default=4096)
    parser.add_argument("-np", dest="slots", type=int, default=1)
    args, _ignored = parser.parse_known_args(argv)
    log = os.environ.get("LLMBENCH_FAKE_SPAWN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{args.alias} {args.model} {args.port} np={args.slots} c={args.ctx}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    delay = float(os.environ.get("LLMBENCH_FAKE_TOKEN_DELAY", "0"))
    script = ModelScript(["Hello", " there"], token_delay_s=delay)
    with FakeLlamaServer(
        script,
        model_id=args.model,
        alias=args.alias,
        port=args.port,
        n_ctx=args.ctx // args.slots,
        total_slots=args.slots,
    ):
        print(f"main: server is listening on http://127.0.0.1:{args.port} (fake)", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
