"""Strict local stand-ins for the Cloudflare, GCP, Azure and OCI APIs (tests and the demo)."""
