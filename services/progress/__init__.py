"""The progress service (see README.md). Today a skeleton: it opens its database pool, checks the
broker and serves /healthz, /readyz and /metrics; its domain logic is still to be written."""
