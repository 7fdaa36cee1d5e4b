-- 0015_usernames_ignore_case: user names are unique ignoring case ("Ann" beside "ann" would read as one person in
-- the audit log). If names differing only in case exist already, the migration stops and names them: rename or
-- delete all but one of each, then start mrgate again (nothing is changed before that).
DO $$
DECLARE clash text;
BEGIN
    SELECT string_agg(username, ', ') INTO clash FROM users
     WHERE lower(username) IN (SELECT lower(username) FROM users GROUP BY 1 HAVING count(*) > 1);
    IF clash IS NOT NULL THEN
        RAISE EXCEPTION 'user names that differ only in case: %; rename or delete all but one, then migrate', clash;
    END IF;
END $$;
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
