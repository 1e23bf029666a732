"""Pure rules: no I/O, no clock reads, no randomness; everything a rule needs is passed in.

- `activities`: what the email product posts, and its validation.
- `mapping`: which Salesforce record an activity writes to, and the fields of that write.
- `batching`: when a batch goes, and whether it goes through sObject Collections or Bulk API 2.0.
- `outcomes`: what a Salesforce error means for the work (done, failed, retry, pause, ...).
- `governor`: the quota rules: shares, the 90% guard, room, send or pause, episodes, warnings.
- `pacing`: how long to let batches fill so a busy day ends without a pause.
"""
