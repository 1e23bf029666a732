"""The web app: the JSON API (and, later, the admin and member pages)."""
