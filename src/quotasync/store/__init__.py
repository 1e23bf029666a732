"""The store: tables, queries and migrations (SQLite by default, PostgreSQL by one setting)."""
