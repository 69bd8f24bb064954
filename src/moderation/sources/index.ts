// The moderation sources: the wiki state for the policy, and whom to reconcile now.
export { PostgresSyncCursorStore, type SyncCursorStore } from './cursors.ts';
export { EventStreamTrigger, moderationChange, type EventStreamTriggerOptions, type ModerationChange, type OnUser, type RecentChangeFilter } from './event-streams.ts';
export { LogPoller, logCursorName, type LogPoll, type LogPollerOptions } from './log-poller.ts';
export { WikiSource, WikiStateError, fetchWikiState, lockLogEntry, nameKey, type WikiReader, type WikiSourceOptions, type WikiStateDeps } from './wiki-state.ts';
