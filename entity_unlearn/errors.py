"""The errors a user can fix, and how they are told.

Every error class of the project derives from ``EntityUnlearnError``: bad input,
a malformed file, an option that cannot be used. ``entity-unlearn`` prints such an
error's message on one line (it names the file, field or option and what to do)
and exits 2. An ``OSError`` (a path that cannot be read or written) or a network
error prints one line too and exits 1. Anything else is a bug and keeps its
traceback.

``redact`` removes credentials from text before it is shown or stored: the
``user:password@`` part of every URL, and any secret value the caller names
(an API key, an HF token). This module imports nothing heavy.
"""

from __future__ import annotations

import os
import re

# scheme://userinfo@host: the userinfo part is everything between "//" and the last "@" before the host ends.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*@)")
# Environment variables whose values are secrets: never printed or written.
SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")
# The base classes of the HTTP clients' errors (module root, class name); imported by none of this.
_NETWORK_BASES = {
    ("httpx", "HTTPError"),
    ("httpx2", "HTTPError"),
    ("requests", "RequestException"),
    ("urllib3", "HTTPError"),
    ("aiohttp", "ClientError"),
}


class EntityUnlearnError(Exception):
    """An error the user can fix; its message names the file, field or option and what to do."""


class UnknownNameError(EntityUnlearnError, KeyError):
    """An unknown name in a registry (an entity type, a metric); a ``KeyError`` whose text is the message itself."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def strip_userinfo(url: str) -> str:
    """``http://user:password@host/v1`` -> ``http://host/v1``; text without credentials is returned unchanged."""
    return _USERINFO.sub(lambda m: m["scheme"], url)


def redact(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """``text`` without URL credentials, without the values of ``SECRET_ENV`` and without ``secrets``."""
    text = strip_userinfo(text)
    for value in (*secrets, *(os.environ.get(name) for name in SECRET_ENV)):
        if value and len(value) >= 4:  # a one-letter "secret" would blank out ordinary text
            text = text.replace(value, "***")
    return text


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure to reach or to be answered by a server: an HTTP client's own error class
    (huggingface_hub's are ``OSError`` subclasses, httpx's are not), a refused connection or a timeout."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any((cls.__module__.split(".")[0], cls.__name__) in _NETWORK_BASES for cls in type(exc).__mro__)


def user_message(exc: BaseException) -> str | None:
    """The one line to print for an error the user can act on, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, EntityUnlearnError):
        return redact(str(exc))
    if is_network_error(exc):
        detail = str(exc) or exc.__class__.__name__
        return redact(f"network error ({exc.__class__.__name__}: {detail}); check the address, your connection and that the server is up")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return redact(f"{where}{exc.strerror or exc}; check that the path exists and that you may read and write there")
    return None
