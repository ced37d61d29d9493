"""Views of a run's report: CLI tables and JSON (``render``), Prometheus metrics, log events,
and what ``syncd run`` serves over HTTP (``endpoints``). They compute nothing the report does
not hold."""
