// Real-Time Sync: hand Contact changes to QS_RealtimeSync, which pushes them to quotasync.
trigger QS_ContactSync on Contact (after insert, after update, after delete, after undelete) {
    QS_RealtimeSync.handle('Contact');
}
