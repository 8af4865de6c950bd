-- Nothing to change on PostgreSQL. SQLite's tasks_ready now carries the columns next_candidate filters on, so it
-- reads a task's row only for the task it returns (migrations/sqlite/012). PostgreSQL reads the row of every
-- index entry it visits anyway, unless its page is marked all-visible, which the pages of a table updated as
-- often as tasks rarely are: wider entries would cost every write and spare no reads.
SELECT 1;
