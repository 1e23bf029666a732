// Real-Time Sync: hand Account changes to QS_RealtimeSync, which pushes them to quotasync.
trigger QS_AccountSync on Account (after insert, after update, after delete, after undelete) {
    QS_RealtimeSync.handle('Account');
}
