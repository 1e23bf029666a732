"""quotasync: the Salesforce side of a sales-email product."""

__version__ = "0.1.0"
