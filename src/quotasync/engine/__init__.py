"""The worker: the writer (outbox → Salesforce), matching, and the loop that runs them."""
