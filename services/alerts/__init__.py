"""The alerts service: stall detectors on ``progress.updates`` (Faust), alert lifecycle in
PostgreSQL with history, ``alerts.events`` through a transactional outbox, routing to support
teams with signed webhooks, and the staff JSON API (``/openapi.json``). See ``app.py``."""
