-- 0020_repos_list_indexes_dropped: the repo list's substring and activity indexes on repos go.
--
-- The repo list reads repo_status_stored (0011), which has its own trigram and activity indexes; nothing reads
-- repos by a substring or in last-activity order any more. Every repo a sync lists still wrote both: the trigram
-- GIN entry of its path (one per three characters) and the activity B-tree entry, on each insert and on each
-- update that could not stay a heap-only update, about a tenth of the upsert of a discovery page.
DROP INDEX repos_search_idx;
DROP INDEX repos_activity_idx;
