"""``OLLAMA_HOST`` read exactly as Ollama reads it, and Ollama's model-name matching.

Ported from ollama/ollama ``envconfig/config.go`` (``Var``, ``Host`` and ``ConnectableHost``,
the same at v0.12.x and v0.33: lines 22-84 at fb30760) with Go's ``net.SplitHostPort``,
``net.ParseIP`` and ``net.JoinHostPort``; the cases of ``envconfig/config_test.go``
(``TestHost``, ``TestConnectableHost``) are this module's table test.
"""

from __future__ import annotations

import ipaddress
import re

DEFAULT_PORT = "11434"


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``; ``None`` where it returns an error."""
    i = hostport.rfind(":")
    if i < 0:
        return None  # missing port in address
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or end + 1 != i:
            return None  # missing ']', missing port, or too many colons
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            return None  # too many colons in address
    if "[" in hostport[j:] or "]" in hostport[k:]:
        return None
    return host, hostport[i + 1 :]


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's ``net.ParseIP`` (no zones); an IPv4-mapped IPv6 address prints as IPv4."""
    if "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ollama_host(env: str | None) -> tuple[str, str, str]:
    """envconfig.Host: ``(scheme, host:port, path)``, IPv6 hosts in brackets."""
    value = (env or "").strip().strip("\"'").strip()  # Var() trims, Host() trims again
    default_port = DEFAULT_PORT
    scheme, sep, hostport = value.partition("://")
    if not sep:
        scheme, hostport = "http", value
        if value == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, _, path = hostport.partition("/")
    split = _split_host_port(hostport)
    if split is None:
        host, port = "127.0.0.1", default_port
        ip = _parse_ip(hostport.strip("[]"))
        if ip is not None:
            host = str(ip)
        elif hostport:
            host = hostport
    else:
        host, port = split
    if not (re.fullmatch(r"[0-9]{1,5}", port) and int(port) <= 65535):
        port = default_port  # strconv.ParseInt fails or out of range: "invalid port"
    return scheme, _join_host_port(host, port), path


def ollama_base_url(env: str | None) -> str:
    """The URL a client reaches Ollama at for ``OLLAMA_HOST`` = ``env``.

    As envconfig.ConnectableHost: an unspecified bind address (``0.0.0.0``, ``::``) becomes
    the loopback one. Two client-side steps Go's dialer takes implicitly are explicit here:
    an empty host (``:1234``) is loopback, and a scheme other than http/https (``tcp://``,
    which ``ollama serve`` accepts because it only listens on host:port) is reached over http.
    """
    scheme, hostport, path = ollama_host(env)
    split = _split_host_port(hostport)
    assert split is not None  # ollama_host always joins a host and a port
    host, port = split
    ip = _parse_ip(host)
    if ip is not None and ip.is_unspecified:
        host = "127.0.0.1" if ip.version == 4 else "::1"
    elif not host:
        host = "127.0.0.1"
    if scheme not in ("http", "https"):
        scheme = "http"
    url = f"{scheme}://{_join_host_port(host, port)}"
    return f"{url}/{path}" if path else url


def canonical_model(name: str) -> str:
    """``NAME`` with the default tag ``latest`` made explicit, compared case-folded."""
    n = name.strip()
    return (n if ":" in n.rsplit("/", 1)[-1] else f"{n}:latest").casefold()


def model_matches(wanted: str, name: str) -> bool:
    """Ollama names default the tag to ``latest`` and match case-insensitively
    (``server/routes.go`` compares each name part with ``strings.EqualFold``)."""
    return canonical_model(wanted) == canonical_model(name)
