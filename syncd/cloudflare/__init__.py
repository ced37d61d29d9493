"""The Cloudflare side: a narrow protocol (``api``), its two API generations, the transport."""
