"""Imported last by the collectors' fork server: what the server has imported (syncd, the cloud
SDKs) goes to the garbage collector's permanent generation (``gc.freeze``).

Every vendor process is forked from that server, and inherits its objects. Nothing among them is
garbage (modules, classes, the SDKs' message types and models: about a million objects with the
four SDKs), yet each collection that reached the oldest generation in a vendor process walked
them all, and writing the collector's header of an object copies its page from the server. Frozen,
they are never walked nor touched; the objects a vendor process makes are collected as ever.
Measured with all four vendors, 20,000 addresses, three collections each: 5.2-7.7 s of CPU
against 7.7-10.0 s without (issue 26; Python's ``gc.freeze`` documentation recommends it before
``fork()``). Importing this module anywhere else would freeze that process's objects: only
``process.preload`` names it.
"""

from __future__ import annotations

import gc

gc.freeze()
