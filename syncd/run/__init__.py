"""The run: ``once.run_once`` (collect -> plan -> push -> record -> report), one zone's
reconcile (``zone.py``) and the run's share of the Cloudflare budget (``budget.py``)."""
