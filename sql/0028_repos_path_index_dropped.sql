-- 0028_repos_path_index_dropped: a repo a sync lists no longer writes an entry of repos_path_idx.
--
-- repos_path_idx (0002) served the repo list's sort and cursor by path, and its prefix filters, while the list read
-- repos. Since 0011 the list reads repo_status_stored, whose own indexes serve every shape (tests/db/test_repo_plans.c),
-- and nothing reads repos by path any more: the reads of repos are by id, by seen_sync (one scan per sync) or of
-- every repo. Its B-tree entry was still written for every repo a sync inserts and for every path change; at 100,000
-- repos the index is about 5 MB that no plan uses (0024 dropped the other unused indexes of repos on the same ground).
DROP INDEX repos_path_idx;
