"""``strangers web``: the chat in a page of the user's own browser, served from this computer only.

``run_web`` opens a listening socket on 127.0.0.1, prints the page's address
(with its token), opens it in the browser, and serves it until Ctrl-C. The
node starts when the page says Start (:mod:`.session`); the page and the node
speak the ``--json`` protocol over a WebSocket (:mod:`.server`); who may
connect is decided in :mod:`.guard`.
"""

from .run import run_web

__all__ = ["run_web"]
