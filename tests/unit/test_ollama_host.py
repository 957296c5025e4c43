"""OLLAMA_HOST parsed as Ollama parses it; model names matched as Ollama matches them."""

from __future__ import annotations

import pytest

from pytest_llmbench.serve.backends.ollama_host import model_matches, ollama_base_url, ollama_host

# envconfig/config_test.go TestHost (ollama/ollama fb30760), as (scheme, host:port, path).
HOST_CASES = {
    "empty": ("", "http://127.0.0.1:11434"),
    "only address": ("1.2.3.4", "http://1.2.3.4:11434"),
    "only port": (":1234", "http://:1234"),
    "address and port": ("1.2.3.4:1234", "http://1.2.3.4:1234"),
    "hostname": ("example.com", "http://example.com:11434"),
    "hostname and port": ("example.com:1234", "http://example.com:1234"),
    "zero port": (":0", "http://:0"),
    "too large port": (":66000", "http://:11434"),
    "too small port": (":-1", "http://:11434"),
    "ipv6 localhost": ("[::1]", "http://[::1]:11434"),
    "ipv6 world open": ("[::]", "http://[::]:11434"),
    "ipv6 no brackets": ("::1", "http://[::1]:11434"),
    "ipv6 + port": ("[::1]:1337", "http://[::1]:1337"),
    "extra space": (" 1.2.3.4 ", "http://1.2.3.4:11434"),
    "extra quotes": ('"1.2.3.4"', "http://1.2.3.4:11434"),
    "extra space+quotes": (' " 1.2.3.4 " ', "http://1.2.3.4:11434"),
    "extra single quotes": ("'1.2.3.4'", "http://1.2.3.4:11434"),
    "http": ("http://1.2.3.4", "http://1.2.3.4:80"),
    "http port": ("http://1.2.3.4:4321", "http://1.2.3.4:4321"),
    "https": ("https://1.2.3.4", "https://1.2.3.4:443"),
    "https port": ("https://1.2.3.4:4321", "https://1.2.3.4:4321"),
    "proxy path": ("https://example.com/ollama", "https://example.com:443/ollama"),
    "ollama.com": ("ollama.com", "https://ollama.com:443"),
    # Not in upstream's table, same code path:
    "tcp scheme keeps the default port": ("tcp://gpu1", "tcp://gpu1:11434"),
    "invalid port": ("gpu1:http", "http://gpu1:11434"),
}


@pytest.mark.parametrize(("env", "expect"), HOST_CASES.values(), ids=HOST_CASES.keys())
def test_host_as_envconfig(env: str, expect: str) -> None:
    scheme, hostport, path = ollama_host(env)
    assert f"{scheme}://{hostport}" + (f"/{path}" if path else "") == expect


# envconfig/config_test.go TestConnectableHost, plus the client-side steps Go's dialer takes.
CONNECT_CASES = {
    "unset": (None, "http://127.0.0.1:11434"),
    "empty": ("", "http://127.0.0.1:11434"),
    "ipv4 unspecified": ("0.0.0.0", "http://127.0.0.1:11434"),
    "ipv4 unspecified + port": ("0.0.0.0:1234", "http://127.0.0.1:1234"),
    "ipv6 unspecified": ("[::]", "http://[::1]:11434"),
    "ipv6 unspecified + port": ("[::]:1234", "http://[::1]:1234"),
    "ipv6 localhost": ("[::1]", "http://[::1]:11434"),
    "ipv6 no brackets": ("::1", "http://[::1]:11434"),
    "specific address + port": ("192.168.1.5:8080", "http://192.168.1.5:8080"),
    "https unspecified + port": ("https://0.0.0.0:4321", "https://127.0.0.1:4321"),
    "only port: loopback": (":9999", "http://127.0.0.1:9999"),
    "https path kept": ("https://h/path", "https://h:443/path"),
    "tcp:// is plain http": ("tcp://host", "http://host:11434"),
    "no port": ("gpu1", "http://gpu1:11434"),
    "invalid port": ("gpu1:99999", "http://gpu1:11434"),
    "ollama.com": ("ollama.com", "https://ollama.com:443"),
}


@pytest.mark.parametrize(("env", "url"), CONNECT_CASES.values(), ids=CONNECT_CASES.keys())
def test_url_the_client_connects_to(env: str | None, url: str) -> None:
    assert ollama_base_url(env) == url


@pytest.mark.parametrize(
    ("wanted", "name", "match"),
    [
        ("llama3", "llama3:latest", True),
        ("library/llama3:8b", "library/llama3:8b", True),
        ("llama3:8b", "llama3:latest", False),
        ("Gemma3:270M", "gemma3:270m", True),  # routes.go: strings.EqualFold on each part
        ("QWEN3", "qwen3:latest", True),
        ("qwen3:4b", "qwen3:8b", False),
    ],
)
def test_model_names_match_as_ollama_matches_them(wanted: str, name: str, match: bool) -> None:
    assert model_matches(wanted, name) is match
