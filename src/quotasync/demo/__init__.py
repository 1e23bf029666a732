"""`quotasync demo`: the whole product on the embedded defaults, no account, no setup.

- `story`: the org, what other apps did yesterday and do when (pure data);
- `org`: the sandbox org process and its control API;
- `stage`: the store, the workspace, the web app and the worker;
- `reps`: the reps' activity, posted to the ingest API, and the Leads they save in Salesforce;
- `watch`: what changed, as chapters; `show`: how they are printed;
- `verdict`: every accepted activity, looked for in the org's records;
- `summary`: the figures at the end, as a table or JSON;
- `director`: runs it all (`run`).
"""

from quotasync.demo.director import Interrupted, Options, run

__all__ = ["Interrupted", "Options", "run"]
