// Real-Time Sync: hand Lead changes to QS_RealtimeSync, which pushes them to quotasync.
trigger QS_LeadSync on Lead (after insert, after update, after delete, after undelete) {
    QS_RealtimeSync.handle('Lead');
}
