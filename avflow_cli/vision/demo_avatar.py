"""Moved: the demo avatar is rendering and lives in :mod:`avflow_cli.render.demo_avatar`.

This name stays for one release so that code written against the old path keeps working
(``vision/`` analyses video and never draws, docs/ARCHITECTURE.md §7): importing it gives the very
same module object, so attributes, monkeypatching and ``isinstance`` behave as with the new path.
"""

from __future__ import annotations

import sys

from avflow_cli.render import demo_avatar as _moved

sys.modules[__name__] = _moved
