"""Serve recorded replies as fast as the socket allows (for the throughput figure).

    python -m benchmarks.replay --tokens N

Records what the fakes' (fakes/) ``FakeLlamaServer`` and ``FakeOllama`` stream for a reply of N
tokens, in answer to the plugin's own requests (``Backend.request_body``), and then answers
every request for the same method and path with those bytes, in 64 KiB HTTP chunks, on one
port (printed as ``URL http://127.0.0.1:PORT``) until terminated. The fakes write one event
per chunk in real time; replayed, the client reads as many events per read as it can take.
"""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks.harness import MESSAGES, backend
from fakes import FakeLlamaServer, FakeOllama, ModelScript
from pytest_llmbench.serve.generation import Settings

Replies = dict[tuple[str, str], tuple[str, bytes]]
WORDS = (" the", " quick", " brown", " fox", "Hello", ",", " world", ".", " def", " return")
WORDS += (" value", "(", ")", ":", " 42", " is", " é", "日本")
BLOCK = 65536


def script_tokens(n: int) -> list[str]:
    """``n`` deterministic tokens; every 25th a newline and every 100th a quote (escaped on
    the wire), as in real text and code."""
    return [
        "\n" if i % 25 == 24 else ' "' if i % 100 == 49 else WORDS[(i * 7) % len(WORDS)]
        for i in range(n)
    ]


def settings(tokens: int) -> Settings:
    """The settings of the recorded requests: a reply of exactly ``tokens`` tokens."""
    return Settings(max_tokens=tokens, ctx=tokens + 64)


def record(tokens: list[str]) -> Replies:
    script = ModelScript(tokens)
    replies: Replies = {}
    room = settings(len(tokens)).ctx
    with (
        FakeLlamaServer(script, n_ctx=room) as llama,
        FakeOllama({"m": script}) as ollama,
        httpx.Client(timeout=600) as client,
    ):
        for spec in (f"llama-server@{llama.url}", f"ollama:m@{ollama.url}"):
            plugin = backend(spec)
            body = plugin.request_body(MESSAGES, settings(len(tokens)))
            with client.stream("POST", plugin.generate_url(), json=body) as reply:
                path = urlsplit(plugin.generate_url()).path
                replies["POST", path] = (reply.headers["content-type"], reply.read())
        ps = client.get(f"{ollama.url}/api/ps")  # the Ollama backend's memory probe
        replies["GET", "/api/ps"] = (ps.headers["content-type"], ps.content)
    return replies


def serve(replies: Replies) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if (self.command, self.path) not in replies:
                self.send_error(404)
                return
            content_type, body = replies[self.command, self.path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if "json" in content_type and "nd" not in content_type:  # a plain answer
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for i in range(0, len(body), BLOCK):
                block = body[i : i + BLOCK]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    return httpd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200_000)
    httpd = serve(record(script_tokens(parser.parse_args().tokens)))
    print(f"URL http://127.0.0.1:{httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
