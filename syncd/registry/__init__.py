"""The registry: everything syncd remembers about a zone between runs.

Ownership (which mappings syncd made), pending writes, the mirror of Cloudflare's mappings, the
zone's cached facts and observations, deferred zones and the rate window, in one SQLite database.
"""
