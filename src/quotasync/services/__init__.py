"""The application's use cases, each written once: the pages, the JSON API, the CLI and the demo
call these rather than the store and the engine directly.

A service takes the runtime pieces it needs (sessions, connector, clock...) as arguments, does the
whole use case (its transaction included) and raises typed errors; each entry point says those its
own way (an HTTP status, a page's message, a CLI message and exit code).
"""
