"""A Salesforce org on this machine: the sandbox quotasync's tests, benchmarks and demo talk to.

It shares no code with quotasync's client side: everything it knows comes from Salesforce's
documented wire behaviour (see docs/SANDBOX.md).
"""
