"""The client side: every request quotasync sends to Salesforce goes through `GovernedSession`."""
