"""syncd keeps Cloudflare origin-IP-to-cloud-region mappings true, automatically."""

__version__ = "0.1.0"
