// Real-Time Sync: hand Opportunity changes to QS_RealtimeSync, which pushes them to quotasync.
trigger QS_OpportunitySync on Opportunity (after insert, after update, after delete, after undelete) {
    QS_RealtimeSync.handle('Opportunity');
}
