"""Sources: where syncd learns what exists and what Cloudflare reaches.

    collectors/  each cloud's public addresses and regions (a module per vendor, real SDKs)
    resolver.py  names to addresses (DNS), for CNAME targets and pool hostnames
    origins.py   a zone's origins from its records, CNAME chains and load balancer pools (pure)
    facts.py     a zone's load balancers, pools and Tiered Cache settings: when they are read again
    observe.py   what Cloudflare really fetched (GraphQL Analytics), read once per interval
    traffic.py   what that traffic says about the mappings: coverage and hint effect (pure)

Collectors know nothing of Cloudflare; what is remembered between runs is the registry's.
"""
