-- Each sign-in hands its account over by interaction: one index lookup, not a scan of recent sign-ins.
CREATE INDEX wiki_logins_interaction ON wiki_logins (interaction_uid, created_at);
