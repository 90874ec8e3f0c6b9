"""The ml-connector agent: runs next to desktop Sage and executes the server's jobs in it.

It only ever calls out to the server (heartbeat, lease, complete/fail, push changes) and keeps a
local journal so a crash between a Sage write and the server's acknowledgement never produces a
second document. See ``agent/README.md``.
"""

__version__ = "0.1.0"
