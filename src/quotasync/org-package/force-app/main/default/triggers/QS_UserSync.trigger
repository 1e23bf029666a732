// Real-Time Sync: hand User changes to QS_RealtimeSync, which pushes them to quotasync.
trigger QS_UserSync on User (after insert, after update) {
    QS_RealtimeSync.handle('User');
}
