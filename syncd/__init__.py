"""syncd keeps Cloudflare origin-IP-to-cloud-region mappings true, automatically."""

from importlib.metadata import PackageNotFoundError, version

try:
    # One source of the version: pyproject.toml, as the installed package's metadata says it.
    __version__ = version("syncd")
except PackageNotFoundError:  # pragma: no cover (a source tree that was never installed)
    __version__ = "0+unknown"
