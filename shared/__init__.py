"""Skillstream's common package: event contracts, settings, Kafka and PostgreSQL helpers,
metrics, logging and health checks shared by the ingest, progress and alerts services.

Nothing here opens a connection or reads the environment at import time: settings, pools and
clients are built by each service's ``app.py`` at start-up and passed down.
"""
