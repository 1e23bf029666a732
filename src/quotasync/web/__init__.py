"""The web app: the ingest and JSON APIs, the admin and member pages, Real-Time Sync intake."""
