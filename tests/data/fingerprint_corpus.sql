--# Real statements for tests/test_fingerprint.py, one per entry. An entry starts
--# with a line `-- @<dialect> <name>` (dialect: postgresql, sqlite or mysql) and runs
--# to the next one; lines starting with `--#` are notes, not part of any statement.
--#
--# * seed*: the schemas and queries of the seed documents (/work/shared/seeds), as written.
--# * sqla_*: what SQLAlchemy 2.1's ORM emitted for those schemas (psycopg 3, sqlite3 and
--#   PyMySQL against real servers): pyformat and qmark parameters, expanding IN-lists,
--#   insertmanyvalues batches, RETURNING, CTEs, window functions, JSONB operators.
--# * psycopg_numeric_*: the same statements as psycopg sends them ($1 placeholders, as
--#   pg_stat_statements shows them); psycopg_client_*: as ClientCursor binds them (literals).
--# * pg_*, sqlite_*, mysql_*: transaction and session statements and dialect features.

-- @postgresql seed000_idx_concepts_domain_id
CREATE INDEX IF NOT EXISTS idx_concepts_domain_id ON concepts(domain_id);

-- @postgresql seed000_idx_learning_goals_concept_id
CREATE INDEX IF NOT EXISTS idx_learning_goals_concept_id ON learning_goals(concept_id);

-- @postgresql seed000_idx_concepts_domain_status
CREATE INDEX IF NOT EXISTS idx_concepts_domain_status ON concepts(domain_id, status);

-- @postgresql seed000_chk_concepts_status
ALTER TABLE concepts ADD CONSTRAINT chk_concepts_status 
  CHECK (status IN ('suggested', 'approved', 'rejected', 'archived'));

-- @postgresql seed000_chk_learning_goals_difficulty
ALTER TABLE learning_goals ADD CONSTRAINT chk_learning_goals_difficulty 
  CHECK (difficulty BETWEEN 1 AND 5);

-- @postgresql seed001_create_users
CREATE TABLE users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  email TEXT UNIQUE NOT NULL,
  full_name TEXT NOT NULL,
  avatar_url TEXT,
  user_role TEXT NOT NULL CHECK (user_role IN ('student', 'instructor', 'admin')),
  metadata JSONB,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- @postgresql seed001_create_content_items
CREATE TABLE content_items (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  module_id UUID REFERENCES course_modules(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  description TEXT,
  content_type TEXT CHECK (content_type IN ('video', 'quiz', 'reading', 'exercise', 'attachment')),
  position INTEGER NOT NULL,
  duration INTEGER, -- seconds, for video and audio
  is_required BOOLEAN DEFAULT true,
  metadata JSONB,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (module_id, position)
);

-- @postgresql seed001_create_user_interactions
CREATE TABLE user_interactions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id UUID REFERENCES user_sessions(id) ON DELETE CASCADE,
  interaction_type TEXT NOT NULL,
  content_id UUID REFERENCES content_items(id) ON DELETE SET NULL,
  course_id UUID REFERENCES courses(id) ON DELETE SET NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  metadata JSONB,
  is_processed BOOLEAN DEFAULT false
) PARTITION BY RANGE (created_at);

-- @postgresql seed001_partition_2023m07
CREATE TABLE user_interactions_y2023m07 PARTITION OF user_interactions
  FOR VALUES FROM ('2023-07-01') TO ('2023-08-01');

-- @postgresql seed001_partition_2023m08
CREATE TABLE user_interactions_y2023m08 PARTITION OF user_interactions
  FOR VALUES FROM ('2023-08-01') TO ('2023-09-01');

-- @postgresql seed001_create_quiz_interactions
CREATE TABLE quiz_interactions (
  interaction_id UUID PRIMARY KEY REFERENCES user_interactions(id) ON DELETE CASCADE,
  quiz_id UUID REFERENCES quiz_content(content_id),
  question_id TEXT,
  user_answer JSONB,
  is_correct BOOLEAN,
  time_taken FLOAT, -- seconds
  attempt_number INTEGER,
  score FLOAT
);

-- @postgresql seed001_create_engagement_metrics
CREATE TABLE content_engagement_metrics (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  content_id UUID REFERENCES content_items(id) ON DELETE CASCADE,
  views_count INTEGER DEFAULT 0,
  completion_count INTEGER DEFAULT 0,
  average_time_spent FLOAT,
  engagement_score FLOAT,
  date_measured DATE NOT NULL DEFAULT CURRENT_DATE,
  UNIQUE (content_id, date_measured)
);

-- @postgresql seed001_idx_user_interactions_session
CREATE INDEX idx_user_interactions_session ON user_interactions(session_id);

-- @postgresql seed001_idx_aggregated_analytics_entity
CREATE INDEX idx_aggregated_analytics_entity ON aggregated_analytics(entity_type, entity_id);

-- @postgresql seed001_explain_user_progress
EXPLAIN ANALYZE
SELECT
  u.full_name,
  c.title AS course_title,
  up.completion_percentage,
  up.time_spent,
  up.average_score,
  up.last_activity_at
FROM
  user_progress up
JOIN
  users u ON up.user_id = u.id
JOIN
  courses c ON up.course_id = c.id
WHERE
  up.completion_percentage < 100
  AND up.last_activity_at < NOW() - INTERVAL '7 days'
ORDER BY
  up.last_activity_at ASC
LIMIT 50;

-- @postgresql seed001_user_progress
SELECT
  u.full_name,
  c.title AS course_title,
  up.completion_percentage,
  up.time_spent,
  up.average_score,
  up.last_activity_at
FROM
  user_progress up
JOIN
  users u ON up.user_id = u.id
JOIN
  courses c ON up.course_id = c.id
WHERE
  up.completion_percentage < 100
  AND up.last_activity_at < NOW() - INTERVAL '7 days'
ORDER BY
  up.last_activity_at ASC
LIMIT 50;

-- @postgresql seed001_explain_content_engagement
EXPLAIN ANALYZE
SELECT
  ci.title,
  ci.content_type,
  cm.title AS module_title,
  c.title AS course_title,
  cem.views_count,
  cem.completion_count,
  cem.average_time_spent,
  cem.engagement_score
FROM
  content_engagement_metrics cem
JOIN
  content_items ci ON cem.content_id = ci.id
JOIN
  course_modules cm ON ci.module_id = cm.id
JOIN
  courses c ON cm.course_id = c.id
WHERE
  cem.date_measured = CURRENT_DATE - INTERVAL '1 day'
  AND ci.content_type = 'video'
  AND cem.views_count > 10
ORDER BY
  cem.engagement_score DESC
LIMIT 20;

-- @postgresql seed002_payment_history
SELECT id, amount, status, created_at FROM payments WHERE user_id = 42 AND status = 'completed' ORDER BY created_at DESC LIMIT 20

-- @postgresql seed002_course_revenue
SELECT course_id, sum(amount) AS revenue, count(*) AS purchases FROM payments WHERE status = 'completed' AND created_at >= '2025-11-01' AND created_at < '2025-12-01' GROUP BY course_id ORDER BY revenue DESC

-- @postgresql seed002_enrollments_by_status
SELECT e.id, e.course_id, e.enrolled_at FROM enrollments e WHERE e.user_id = 7 AND e.status IN ('active', 'paused') AND e.deleted_at IS NULL ORDER BY e.enrolled_at DESC

-- @postgresql seed002_token_transactions
SELECT t.id, t.amount, t.type, t.created_at FROM transactions t JOIN wallets w ON w.id = t.wallet_id WHERE w.user_id = 7 AND t.type = 'reward' AND t.created_at BETWEEN '2025-11-01' AND '2025-11-30' ORDER BY t.created_at DESC LIMIT 100 OFFSET 200

-- @postgresql seed002_unread_notifications
SELECT id, title, is_read, created_at FROM notifications WHERE user_id = 7 ORDER BY is_read ASC, created_at DESC LIMIT 30

-- @postgresql seed002_soft_delete
UPDATE enrollments SET deleted_at = now(), status = 'cancelled' WHERE id = 981 AND deleted_at IS NULL RETURNING id, deleted_at

-- @postgresql seed002_payments_partitioned
CREATE TABLE payments (id bigint GENERATED ALWAYS AS IDENTITY, user_id integer NOT NULL, course_id integer, amount numeric(10, 2) NOT NULL, status text NOT NULL DEFAULT 'pending', created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)

-- @postgresql seed002_index_usage
SELECT schemaname, relname, indexrelname, idx_scan FROM pg_stat_user_indexes WHERE idx_scan = 0 AND schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY pg_relation_size(indexrelid) DESC

-- @postgresql seed002_slow_queries
SELECT query, calls, mean_exec_time, total_exec_time FROM pg_stat_statements WHERE mean_exec_time > 100 ORDER BY total_exec_time DESC LIMIT 25

-- @postgresql seed003_create_practice_sessions
CREATE TABLE practice_sessions (
    id SERIAL PRIMARY KEY,
    session_date TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    -- MISSING: user_id INTEGER REFERENCES users(id)
    total_questions INTEGER DEFAULT 0,
    correct_answers INTEGER DEFAULT 0,
    duration_seconds INTEGER
);

-- @postgresql seed003_add_user_id
ALTER TABLE practice_sessions
ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE CASCADE;

-- @postgresql seed003_idx_practice_sessions_user_date
CREATE INDEX IF NOT EXISTS idx_practice_sessions_user_date
ON practice_sessions(user_id, session_date);

-- @postgresql seed003_unique_user_word
ALTER TABLE user_vocabulary
ADD CONSTRAINT unique_user_word
UNIQUE(user_id, word_id);

-- @postgresql seed003_check_difficulty
ALTER TABLE words
ADD CONSTRAINT check_difficulty
CHECK (difficulty_level >= 1 AND difficulty_level <= 5);

-- @postgresql seed003_words_by_category
SELECT words.id, words.word, words.translation, words.category_id FROM words WHERE words.category_id = 3 ORDER BY words.id LIMIT 20 OFFSET 0

-- @postgresql seed003_user_vocab_for_word
SELECT user_vocabulary.id, user_vocabulary.mastery_level FROM user_vocabulary WHERE user_vocabulary.user_id = 12 AND user_vocabulary.word_id = 3051 LIMIT 1

-- @postgresql seed004_idx_users_username_active
CREATE INDEX CONCURRENTLY idx_users_username_active ON users(username) WHERE is_test_user = false;

-- @postgresql seed004_idx_users_navigation_progress
CREATE INDEX CONCURRENTLY idx_users_navigation_progress ON users USING GIN(navigation_progress);

-- @postgresql seed004_idx_user_assessments_created
CREATE INDEX CONCURRENTLY idx_user_assessments_created ON user_assessments(created_at DESC);

-- @postgresql seed004_users_email_format
ALTER TABLE users ADD CONSTRAINT users_email_format 
  CHECK (email ~* '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$');

-- @postgresql seed004_workshop_type_check
ALTER TABLE workshop_step_data ADD CONSTRAINT workshop_step_data_workshop_type_check 
  CHECK (workshop_type IN ('ast', 'ia'));

-- @postgresql seed004_alter_username_type
ALTER TABLE users ALTER COLUMN username TYPE varchar(100);

-- @postgresql seed004_alter_score_type
ALTER TABLE user_assessments ALTER COLUMN score TYPE numeric(5,2);

-- @postgresql seed004_set_default
ALTER TABLE workshop_step_data ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP;

-- @postgresql seed004_slow_navigation_like
SELECT * FROM users 
WHERE navigation_progress LIKE '%step-3-2%' 
AND role = 'participant';

-- @postgresql seed004_navigation_jsonb_exists
SELECT u.id, u.name, u.email, u.navigation_progress 
FROM users u 
WHERE u.role = 'participant' 
AND u.navigation_progress ? 'step-3-2'
LIMIT 100;

-- @postgresql seed004_workshop_steps
SELECT step_id, data FROM workshop_step_data WHERE user_id = 118 AND workshop_type = 'ast' ORDER BY step_id

-- @postgresql seed004_navigation_update
UPDATE users SET navigation_progress = jsonb_set(coalesce(navigation_progress, '{}'::jsonb), '{currentStep}', to_jsonb('3-2'::text)) WHERE id = 118

-- @postgresql seed004_index_hit_ratio
SELECT sum(idx_blks_hit) / nullif(sum(idx_blks_hit + idx_blks_read), 0) AS index_hit_ratio FROM pg_statio_user_indexes

-- @postgresql seed004_health_check
SELECT 1

-- @postgresql seed004_admin_dashboard
SELECT role, count(*) FILTER (WHERE ast_workshop_completed) AS ast_done, count(*) FILTER (WHERE ia_workshop_completed) AS ia_done FROM users WHERE is_test_user = false AND created_at > now() - interval '30 days' GROUP BY role ORDER BY role

-- @postgresql pg_begin
BEGIN

-- @postgresql pg_commit
COMMIT

-- @postgresql pg_rollback
ROLLBACK

-- @postgresql pg_begin_repeatable_read
BEGIN ISOLATION LEVEL REPEATABLE READ

-- @postgresql pg_rollback_to_savepoint
ROLLBACK TO SAVEPOINT sa_savepoint_2

-- @postgresql pg_set_statement_timeout
SET statement_timeout = 5000

-- @postgresql pg_set_search_path
SET search_path TO learning, public

-- @postgresql pg_show_conforming_strings
show standard_conforming_strings

-- @postgresql pg_version
select pg_catalog.version()

-- @postgresql pg_listen
LISTEN workshop_events

-- @postgresql pg_notify
NOTIFY workshop_events, 'step-3-2 done'

-- @postgresql pg_declare_cursor
DECLARE "_pg3_7" CURSOR WITHOUT HOLD FOR SELECT id, created_at FROM user_interactions WHERE created_at >= '2023-07-01' ORDER BY created_at

-- @postgresql pg_fetch_cursor
FETCH FORWARD 500 FROM "_pg3_7"

-- @postgresql pg_close_cursor
CLOSE "_pg3_7"

-- @postgresql pg_quoted_mixed_case
SELECT "User"."id", "User"."createdAt" FROM "public"."User" WHERE "User"."email" = 'a@b.org' AND "User"."deletedAt" IS NULL LIMIT 1

-- @postgresql pg_escape_and_dollar_strings
SELECT id FROM words WHERE word = E'it\'s' OR translation = $$c'est$$ OR notes LIKE 'x\_%' ESCAPE '\'

-- @postgresql pg_any_array
SELECT id, title FROM courses WHERE id = ANY(ARRAY[11, 12, 13]) AND status <> 'archived'

-- @postgresql pg_negative_and_cast
SELECT id FROM quiz_interactions WHERE score > -1.5 AND time_taken::int BETWEEN 0 AND 600 AND attempt_number <> -1

-- @postgresql pg_upsert_progress
INSERT INTO user_progress (user_id, course_id, completed_items, updated_at) VALUES (5, 9, 1, now()) ON CONFLICT (user_id, course_id) DO UPDATE SET completed_items = user_progress.completed_items + 1, updated_at = excluded.updated_at

-- @postgresql pg_lateral_latest
SELECT c.id, last_i.created_at FROM courses c CROSS JOIN LATERAL (SELECT ui.created_at FROM user_interactions ui WHERE ui.course_id = c.id ORDER BY ui.created_at DESC LIMIT 1) last_i WHERE c.status = 'published'

-- @postgresql pg_recursive_cte
WITH RECURSIVE chain(id, parent_id, depth) AS (SELECT id, parent_id, 0 FROM concepts WHERE id = 17 UNION ALL SELECT c.id, c.parent_id, chain.depth + 1 FROM concepts c JOIN chain ON c.id = chain.parent_id WHERE chain.depth < 10) SELECT id, depth FROM chain

-- @postgresql pg_delete_using
DELETE FROM user_sessions s USING users u WHERE s.user_id = u.id AND u.is_test_user = true AND s.started_at < now() - interval '90 days'

-- @postgresql sqla_pg_reflect_table_names
SELECT pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relname IN (%(table_names_1)s::VARCHAR, %(table_names_2)s::VARCHAR, %(table_names_3)s::VARCHAR, %(table_names_4)s::VARCHAR, %(table_names_5)s::VARCHAR, %(table_names_6)s::VARCHAR, %(table_names_7)s::VARCHAR, %(table_names_8)s::VARCHAR) AND pg_catalog.pg_class.relkind = ANY (ARRAY[%(param_1)s::VARCHAR, %(param_2)s::VARCHAR, %(param_3)s::VARCHAR, %(param_4)s::VARCHAR, %(param_5)s::VARCHAR]) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != %(nspname_1)s::VARCHAR

-- @postgresql sqla_pg_drop_tables_drop_content_items
DROP TABLE content_items

-- @postgresql sqla_pg_create_tables_create_users
CREATE TABLE users (
	id SERIAL NOT NULL, 
	email VARCHAR(255) NOT NULL, 
	full_name VARCHAR(200) NOT NULL, 
	user_role VARCHAR(20) NOT NULL, 
	username VARCHAR(100), 
	is_test_user BOOLEAN NOT NULL, 
	metadata JSONB, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
)

-- @postgresql sqla_pg_create_tables_create_ix_words_category_id
CREATE INDEX ix_words_category_id ON words (category_id)

-- @postgresql sqla_pg_insert_users_batch
INSERT INTO users (email, full_name, user_role, username, is_test_user, created_at) SELECT p0::VARCHAR, p1::VARCHAR, p2::VARCHAR, p3::VARCHAR, p4::BOOLEAN, p5::TIMESTAMP WITH TIME ZONE FROM (VALUES (%(email__0)s::VARCHAR, %(full_name__0)s::VARCHAR, %(user_role__0)s::VARCHAR, %(username__0)s::VARCHAR, %(is_test_user__0)s, %(created_at__0)s::TIMESTAMP WITH TIME ZONE, 0), (%(email__1)s::VARCHAR, %(full_name__1)s::VARCHAR, %(user_role__1)s::VARCHAR, %(username__1)s::VARCHAR, %(is_test_user__1)s, %(created_at__1)s::TIMESTAMP WITH TIME ZONE, 1), (%(email__2)s::VARCHAR, %(full_name__2)s::VARCHAR, %(user_role__2)s::VARCHAR, %(username__2)s::VARCHAR, %(is_test_user__2)s, %(created_at__2)s::TIMESTAMP WITH TIME ZONE, 2), (%(email__3)s::VARCHAR, %(full_name__3)s::VARCHAR, %(user_role__3)s::VARCHAR, %(username__3)s::VARCHAR, %(is_test_user__3)s, %(created_at__3)s::TIMESTAMP WITH TIME ZONE, 3), (%(email__4)s::VARCHAR, %(full_name__4)s::VARCHAR, %(user_role__4)s::VARCHAR, %(username__4)s::VARCHAR, %(is_test_user__4)s, %(created_at__4)s::TIMESTAMP WITH TIME ZONE, 4)) AS imp_sen(p0, p1, p2, p3, p4, p5, sen_counter) ORDER BY sen_counter RETURNING users.id, users.id AS id__1

-- @postgresql sqla_pg_insert_course
INSERT INTO courses (title, description, instructor_id, status, created_at) VALUES (%(title)s::VARCHAR, %(description)s::VARCHAR, %(instructor_id)s::INTEGER, %(status)s::VARCHAR, %(created_at)s::TIMESTAMP WITH TIME ZONE) RETURNING courses.id

-- @postgresql sqla_pg_flush_insert_payments
INSERT INTO payments (user_id, course_id, amount, status, created_at) VALUES (%(user_id)s::INTEGER, %(course_id)s::INTEGER, %(amount)s, %(status)s::VARCHAR, %(created_at)s::TIMESTAMP WITH TIME ZONE) RETURNING payments.id

-- @postgresql sqla_pg_flush_insert_words
INSERT INTO words (category_id, term, difficulty_level) SELECT p0::INTEGER, p1::VARCHAR, p2::INTEGER FROM (VALUES (%(category_id__0)s::INTEGER, %(term__0)s::VARCHAR, %(difficulty_level__0)s::INTEGER, 0), (%(category_id__1)s::INTEGER, %(term__1)s::VARCHAR, %(difficulty_level__1)s::INTEGER, 1), (%(category_id__2)s::INTEGER, %(term__2)s::VARCHAR, %(difficulty_level__2)s::INTEGER, 2), (%(category_id__3)s::INTEGER, %(term__3)s::VARCHAR, %(difficulty_level__3)s::INTEGER, 3)) AS imp_sen(p0, p1, p2, sen_counter) ORDER BY sen_counter RETURNING words.id, words.id AS id__1

-- @postgresql sqla_pg_flush_insert_course_modules
INSERT INTO course_modules (course_id, title, position, is_published) SELECT p0::INTEGER, p1::VARCHAR, p2::INTEGER, p3::BOOLEAN FROM (VALUES (%(course_id__0)s::INTEGER, %(title__0)s::VARCHAR, %(position__0)s::INTEGER, %(is_published__0)s, 0), (%(course_id__1)s::INTEGER, %(title__1)s::VARCHAR, %(position__1)s::INTEGER, %(is_published__1)s, 1), (%(course_id__2)s::INTEGER, %(title__2)s::VARCHAR, %(position__2)s::INTEGER, %(is_published__2)s, 2)) AS imp_sen(p0, p1, p2, p3, sen_counter) ORDER BY sen_counter RETURNING course_modules.id, course_modules.id AS id__1

-- @postgresql sqla_pg_flush_insert_user_progress
INSERT INTO user_progress (user_id, course_id, completed_items, completion_percentage, last_activity_at) SELECT p0::INTEGER, p1::INTEGER, p2::INTEGER, p3::FLOAT, p4::TIMESTAMP WITH TIME ZONE FROM (VALUES (%(user_id__0)s::INTEGER, %(course_id__0)s::INTEGER, %(completed_items__0)s::INTEGER, %(completion_percentage__0)s, %(last_activity_at__0)s::TIMESTAMP WITH TIME ZONE, 0), (%(user_id__1)s::INTEGER, %(course_id__1)s::INTEGER, %(completed_items__1)s::INTEGER, %(completion_percentage__1)s, %(last_activity_at__1)s::TIMESTAMP WITH TIME ZONE, 1), (%(user_id__2)s::INTEGER, %(course_id__2)s::INTEGER, %(completed_items__2)s::INTEGER, %(completion_percentage__2)s, %(last_activity_at__2)s::TIMESTAMP WITH TIME ZONE, 2), (%(user_id__3)s::INTEGER, %(course_id__3)s::INTEGER, %(completed_items__3)s::INTEGER, %(completion_percentage__3)s, %(last_activity_at__3)s::TIMESTAMP WITH TIME ZONE, 3), (%(user_id__4)s::INTEGER, %(course_id__4)s::INTEGER, %(completed_items__4)s::INTEGER, %(completion_percentage__4)s, %(last_activity_at__4)s::TIMESTAMP WITH TIME ZONE, 4)) AS imp_sen(p0, p1, p2, p3, p4, sen_counter) ORDER BY sen_counter RETURNING user_progress.id, user_progress.id AS id__1

-- @postgresql sqla_pg_get_user
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id = %(pk_1)s::INTEGER

-- @postgresql sqla_pg_users_by_role_recent
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.user_role = %(user_role_1)s::VARCHAR AND users.created_at > %(created_at_1)s::TIMESTAMP WITH TIME ZONE ORDER BY users.created_at DESC 
 LIMIT %(param_1)s::INTEGER

-- @postgresql sqla_pg_users_in_list
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN (%(id_1_1)s::INTEGER, %(id_1_2)s::INTEGER, %(id_1_3)s::INTEGER)

-- @postgresql sqla_pg_users_in_list_6
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN (%(id_1_1)s::INTEGER, %(id_1_2)s::INTEGER, %(id_1_3)s::INTEGER, %(id_1_4)s::INTEGER, %(id_1_5)s::INTEGER, %(id_1_6)s::INTEGER)

-- @postgresql sqla_pg_courses_selectin_modules_select_courses
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at 
FROM courses

-- @postgresql sqla_pg_courses_selectin_modules_select_course_modules
SELECT course_modules.course_id, course_modules.id, course_modules.title, course_modules.position, course_modules.is_published 
FROM course_modules 
WHERE course_modules.course_id IN (%(primary_keys_1)s::INTEGER) ORDER BY course_modules.position

-- @postgresql sqla_pg_courses_joined_instructor
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at, users_1.id AS id_1, users_1.email, users_1.full_name, users_1.user_role, users_1.username, users_1.is_test_user, users_1.metadata, users_1.created_at AS created_at_1 
FROM courses LEFT OUTER JOIN users AS users_1 ON users_1.id = courses.instructor_id

-- @postgresql sqla_pg_users_selectin_progress_course_select_users
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users

-- @postgresql sqla_pg_users_selectin_progress_course_select_user_progress
SELECT user_progress.user_id, user_progress.id, user_progress.course_id, user_progress.completed_items, user_progress.completion_percentage, user_progress.last_activity_at 
FROM user_progress 
WHERE user_progress.user_id IN (%(primary_keys_1)s::INTEGER, %(primary_keys_2)s::INTEGER, %(primary_keys_3)s::INTEGER, %(primary_keys_4)s::INTEGER, %(primary_keys_5)s::INTEGER)

-- @postgresql sqla_pg_users_selectin_progress_course_select_courses
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at 
FROM courses 
WHERE courses.id IN (%(primary_keys_1)s::INTEGER)

-- @postgresql sqla_pg_users_count_by_role
SELECT users.user_role, count(users.id) AS n 
FROM users GROUP BY users.user_role 
HAVING count(users.id) > %(count_1)s::INTEGER

-- @postgresql sqla_pg_progress_report
SELECT users_1.full_name, courses_1.title AS course_title, user_progress_1.completion_percentage, user_progress_1.last_activity_at 
FROM user_progress AS user_progress_1 JOIN users AS users_1 ON user_progress_1.user_id = users_1.id JOIN courses AS courses_1 ON user_progress_1.course_id = courses_1.id 
WHERE user_progress_1.completion_percentage < %(completion_percentage_1)s::INTEGER AND (user_progress_1.last_activity_at IS NULL OR user_progress_1.last_activity_at < %(last_activity_at_1)s::TIMESTAMP WITH TIME ZONE) ORDER BY user_progress_1.last_activity_at ASC 
 LIMIT %(param_1)s::INTEGER

-- @postgresql sqla_pg_modules_row_number
SELECT course_modules.id, row_number() OVER (PARTITION BY course_modules.course_id ORDER BY course_modules.position DESC) AS rn 
FROM course_modules

-- @postgresql sqla_pg_course_avg_cte
WITH course_avg AS 
(SELECT user_progress.course_id AS course_id, avg(user_progress.completion_percentage) AS avg_pct 
FROM user_progress GROUP BY user_progress.course_id)
 SELECT courses.title, course_avg.avg_pct 
FROM courses JOIN course_avg ON course_avg.course_id = courses.id 
WHERE course_avg.avg_pct >= %(avg_pct_1)s::INTEGER

-- @postgresql sqla_pg_words_page
SELECT words.id, words.category_id, words.term, words.difficulty_level 
FROM words 
WHERE words.category_id = %(category_id_1)s::INTEGER ORDER BY words.id 
 LIMIT %(param_1)s::INTEGER OFFSET %(param_2)s::INTEGER

-- @postgresql sqla_pg_words_by_category_n_plus_one_select_words
SELECT words.id, words.category_id, words.term, words.difficulty_level 
FROM words 
WHERE words.category_id = %(category_id_1)s::INTEGER

-- @postgresql sqla_pg_words_by_category_n_plus_one_select_user_vocabulary
SELECT user_vocabulary.id, user_vocabulary.user_id, user_vocabulary.word_id, user_vocabulary.mastery_level 
FROM user_vocabulary 
WHERE user_vocabulary.user_id = %(user_id_1)s::INTEGER AND user_vocabulary.word_id = %(word_id_1)s::INTEGER 
 LIMIT %(param_1)s::INTEGER

-- @postgresql sqla_pg_words_selectin_vocab
SELECT user_vocabulary.word_id, user_vocabulary.id, user_vocabulary.user_id, user_vocabulary.mastery_level 
FROM user_vocabulary 
WHERE user_vocabulary.word_id IN (%(primary_keys_1)s::INTEGER, %(primary_keys_2)s::INTEGER, %(primary_keys_3)s::INTEGER, %(primary_keys_4)s::INTEGER)

-- @postgresql sqla_pg_update_user
UPDATE users SET full_name=%(full_name)s::VARCHAR, user_role=%(user_role)s::VARCHAR WHERE users.id = %(id_1)s::INTEGER

-- @postgresql sqla_pg_expire_payments
UPDATE payments SET status=%(status)s::VARCHAR WHERE payments.status = %(status_1)s::VARCHAR AND payments.created_at < %(created_at_1)s::TIMESTAMP WITH TIME ZONE

-- @postgresql sqla_pg_delete_vocab
DELETE FROM user_vocabulary WHERE user_vocabulary.user_id = %(user_id_1)s::INTEGER

-- @postgresql sqla_pg_count_payments
SELECT count(*) AS count_1 
FROM payments 
WHERE payments.user_id = %(user_id_1)s::INTEGER AND payments.status IN (%(status_1_1)s::VARCHAR, %(status_1_2)s::VARCHAR)

-- @postgresql sqla_pg_course_revenue
SELECT sum(payments.amount) AS sum_1 
FROM payments 
WHERE payments.course_id = %(course_id_1)s::INTEGER AND payments.created_at BETWEEN %(created_at_1)s::TIMESTAMP WITH TIME ZONE AND %(created_at_2)s::TIMESTAMP WITH TIME ZONE

-- @postgresql sqla_pg_users_with_payments
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE EXISTS (SELECT * 
FROM payments 
WHERE payments.user_id = users.id)

-- @postgresql sqla_pg_users_email_like
SELECT users.email 
FROM users 
WHERE users.email ILIKE %(email_1)s::VARCHAR

-- @postgresql sqla_pg_progress_states
SELECT CASE WHEN (user_progress.completion_percentage >= %(completion_percentage_1)s::INTEGER) THEN %(param_1)s::VARCHAR ELSE %(param_2)s::VARCHAR END AS state, count(*) AS count_1 
FROM user_progress GROUP BY user_progress.completion_percentage

-- @postgresql sqla_pg_real_users
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.is_test_user IS false AND users.username IS NOT NULL

-- @postgresql sqla_pg_insert_words_executemany
INSERT INTO words (category_id, term, difficulty_level) VALUES (%(category_id)s::INTEGER, %(term)s::VARCHAR, %(difficulty_level)s::INTEGER)

-- @postgresql sqla_pg_words_tuple_in
SELECT words.id 
FROM words 
WHERE (words.category_id, words.difficulty_level) IN ((%(param_1_1_1)s, %(param_1_1_2)s), (%(param_1_2_1)s, %(param_1_2_2)s))

-- @postgresql sqla_pg_update_user_name
UPDATE users SET full_name=%(full_name)s::VARCHAR WHERE users.id = %(users_id)s::INTEGER

-- @postgresql sqla_pg_delete_payment_select_payments
SELECT payments.id, payments.user_id, payments.course_id, payments.amount, payments.status, payments.created_at 
FROM payments 
WHERE payments.id = %(pk_1)s::INTEGER

-- @postgresql sqla_pg_delete_payment_delete_payments
DELETE FROM payments WHERE payments.id = %(id)s::INTEGER

-- @postgresql sqla_pg_savepoint
SAVEPOINT sa_savepoint_1

-- @postgresql sqla_pg_nested_savepoint_insert_words
INSERT INTO words (category_id, term, difficulty_level) VALUES (%(category_id)s::INTEGER, %(term)s::VARCHAR, %(difficulty_level)s::INTEGER) RETURNING words.id

-- @postgresql sqla_pg_release_savepoint
RELEASE SAVEPOINT sa_savepoint_1

-- @postgresql sqla_pg_users_json_step
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE (users.metadata ->> %(param_1)s::TEXT) = %(param_2)s::VARCHAR

-- @postgresql sqla_pg_users_json_contains
SELECT users.id 
FROM users 
WHERE users.metadata @> %(param_1)s::JSONB

-- @postgresql sqla_pg_upsert_progress
INSERT INTO user_progress (user_id, course_id, completed_items) VALUES (%(user_id)s::INTEGER, %(course_id)s::INTEGER, %(completed_items)s::INTEGER) ON CONFLICT DO NOTHING RETURNING user_progress.id

-- @postgresql sqla_pg_lock_user_skip_locked
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id = %(id_1)s::INTEGER FOR UPDATE SKIP LOCKED

-- @postgresql psycopg_numeric_get_user
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id = $1::INTEGER

-- @postgresql psycopg_numeric_users_by_role_recent
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.user_role = $1::VARCHAR AND users.created_at > $2::TIMESTAMP WITH TIME ZONE ORDER BY users.created_at DESC 
 LIMIT $3::INTEGER

-- @postgresql psycopg_numeric_users_in_list
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN ($1::INTEGER, $2::INTEGER, $3::INTEGER)

-- @postgresql psycopg_numeric_users_in_list_6
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN ($1::INTEGER, $2::INTEGER, $3::INTEGER, $4::INTEGER, $5::INTEGER, $6::INTEGER)

-- @postgresql psycopg_numeric_course_avg_cte
WITH course_avg AS 
(SELECT user_progress.course_id AS course_id, avg(user_progress.completion_percentage) AS avg_pct 
FROM user_progress GROUP BY user_progress.course_id)
 SELECT courses.title, course_avg.avg_pct 
FROM courses JOIN course_avg ON course_avg.course_id = courses.id 
WHERE course_avg.avg_pct >= $1::INTEGER

-- @postgresql psycopg_numeric_update_user
UPDATE users SET full_name=$1::VARCHAR, user_role=$2::VARCHAR WHERE users.id = $3::INTEGER

-- @postgresql psycopg_numeric_expire_payments
UPDATE payments SET status=$1::VARCHAR WHERE payments.status = $2::VARCHAR AND payments.created_at < $3::TIMESTAMP WITH TIME ZONE

-- @postgresql psycopg_client_get_user
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id = 4::INTEGER

-- @postgresql psycopg_client_users_by_role_recent
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.user_role = 'instructor'::VARCHAR AND users.created_at > '2024-05-01 10:00:00+00'::TIMESTAMP WITH TIME ZONE ORDER BY users.created_at DESC 
 LIMIT 25::INTEGER

-- @postgresql psycopg_client_users_in_list
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN (7::INTEGER, 7::INTEGER, 7::INTEGER)

-- @postgresql psycopg_client_users_in_list_6
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN (7::INTEGER, 7::INTEGER, 7::INTEGER, 7::INTEGER, 7::INTEGER, 7::INTEGER)

-- @postgresql psycopg_client_course_avg_cte
WITH course_avg AS 
(SELECT user_progress.course_id AS course_id, avg(user_progress.completion_percentage) AS avg_pct 
FROM user_progress GROUP BY user_progress.course_id)
 SELECT courses.title, course_avg.avg_pct 
FROM courses JOIN course_avg ON course_avg.course_id = courses.id 
WHERE course_avg.avg_pct >= 50::INTEGER

-- @sqlite sqla_sqlite_drop_tables
PRAGMA main.table_info("users")

-- @sqlite sqla_sqlite_create_tables_create_users
CREATE TABLE users (
	id INTEGER NOT NULL, 
	email VARCHAR(255) NOT NULL, 
	full_name VARCHAR(200) NOT NULL, 
	user_role VARCHAR(20) NOT NULL, 
	username VARCHAR(100), 
	is_test_user BOOLEAN NOT NULL, 
	metadata JSON, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
)

-- @sqlite sqla_sqlite_create_tables_create_ix_words_category_id
CREATE INDEX ix_words_category_id ON words (category_id)

-- @sqlite sqla_sqlite_insert_users_batch
INSERT INTO users (email, full_name, user_role, username, is_test_user, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id

-- @sqlite sqla_sqlite_insert_course
INSERT INTO courses (title, description, instructor_id, status, created_at) VALUES (?, ?, ?, ?, ?)

-- @sqlite sqla_sqlite_flush_insert_payments
INSERT INTO payments (user_id, course_id, amount, status, created_at) VALUES (?, ?, ?, ?, ?)

-- @sqlite sqla_sqlite_flush_insert_words
INSERT INTO words (category_id, term, difficulty_level) VALUES (?, ?, ?) RETURNING id

-- @sqlite sqla_sqlite_flush_insert_course_modules
INSERT INTO course_modules (course_id, title, position, is_published) VALUES (?, ?, ?, ?) RETURNING id

-- @sqlite sqla_sqlite_flush_insert_user_progress
INSERT INTO user_progress (user_id, course_id, completed_items, completion_percentage, last_activity_at) VALUES (?, ?, ?, ?, ?) RETURNING id

-- @sqlite sqla_sqlite_get_user
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id = ?

-- @sqlite sqla_sqlite_users_by_role_recent
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.user_role = ? AND users.created_at > ? ORDER BY users.created_at DESC
 LIMIT ? OFFSET ?

-- @sqlite sqla_sqlite_users_in_list
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN (?, ?, ?)

-- @sqlite sqla_sqlite_courses_selectin_modules_select_courses
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at 
FROM courses

-- @sqlite sqla_sqlite_courses_selectin_modules_select_course_modules
SELECT course_modules.course_id, course_modules.id, course_modules.title, course_modules.position, course_modules.is_published 
FROM course_modules 
WHERE course_modules.course_id IN (?) ORDER BY course_modules.position

-- @sqlite sqla_sqlite_courses_joined_instructor
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at, users_1.id AS id_1, users_1.email, users_1.full_name, users_1.user_role, users_1.username, users_1.is_test_user, users_1.metadata, users_1.created_at AS created_at_1 
FROM courses LEFT OUTER JOIN users AS users_1 ON users_1.id = courses.instructor_id

-- @sqlite sqla_sqlite_users_selectin_progress_course_select_users
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users

-- @sqlite sqla_sqlite_users_selectin_progress_course_select_user_progress
SELECT user_progress.user_id, user_progress.id, user_progress.course_id, user_progress.completed_items, user_progress.completion_percentage, user_progress.last_activity_at 
FROM user_progress 
WHERE user_progress.user_id IN (?, ?, ?, ?, ?)

-- @sqlite sqla_sqlite_users_selectin_progress_course_select_courses
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at 
FROM courses 
WHERE courses.id IN (?)

-- @sqlite sqla_sqlite_users_count_by_role
SELECT users.user_role, count(users.id) AS n 
FROM users GROUP BY users.user_role 
HAVING count(users.id) > ?

-- @sqlite sqla_sqlite_progress_report
SELECT users_1.full_name, courses_1.title AS course_title, user_progress_1.completion_percentage, user_progress_1.last_activity_at 
FROM user_progress AS user_progress_1 JOIN users AS users_1 ON user_progress_1.user_id = users_1.id JOIN courses AS courses_1 ON user_progress_1.course_id = courses_1.id 
WHERE user_progress_1.completion_percentage < ? AND (user_progress_1.last_activity_at IS NULL OR user_progress_1.last_activity_at < ?) ORDER BY user_progress_1.last_activity_at ASC
 LIMIT ? OFFSET ?

-- @sqlite sqla_sqlite_modules_row_number
SELECT course_modules.id, row_number() OVER (PARTITION BY course_modules.course_id ORDER BY course_modules.position DESC) AS rn 
FROM course_modules

-- @sqlite sqla_sqlite_course_avg_cte
WITH course_avg AS 
(SELECT user_progress.course_id AS course_id, avg(user_progress.completion_percentage) AS avg_pct 
FROM user_progress GROUP BY user_progress.course_id)
 SELECT courses.title, course_avg.avg_pct 
FROM courses JOIN course_avg ON course_avg.course_id = courses.id 
WHERE course_avg.avg_pct >= ?

-- @sqlite sqla_sqlite_words_page
SELECT words.id, words.category_id, words.term, words.difficulty_level 
FROM words 
WHERE words.category_id = ? ORDER BY words.id
 LIMIT ? OFFSET ?

-- @sqlite sqla_sqlite_words_by_category_n_plus_one_select_words
SELECT words.id, words.category_id, words.term, words.difficulty_level 
FROM words 
WHERE words.category_id = ?

-- @sqlite sqla_sqlite_words_by_category_n_plus_one_select_user_vocabulary
SELECT user_vocabulary.id, user_vocabulary.user_id, user_vocabulary.word_id, user_vocabulary.mastery_level 
FROM user_vocabulary 
WHERE user_vocabulary.user_id = ? AND user_vocabulary.word_id = ?
 LIMIT ? OFFSET ?

-- @sqlite sqla_sqlite_words_selectin_vocab
SELECT user_vocabulary.word_id, user_vocabulary.id, user_vocabulary.user_id, user_vocabulary.mastery_level 
FROM user_vocabulary 
WHERE user_vocabulary.word_id IN (?, ?, ?, ?)

-- @sqlite sqla_sqlite_update_user
UPDATE users SET full_name=?, user_role=? WHERE users.id = ?

-- @sqlite sqla_sqlite_expire_payments
UPDATE payments SET status=? WHERE payments.status = ? AND payments.created_at < ?

-- @sqlite sqla_sqlite_delete_vocab
DELETE FROM user_vocabulary WHERE user_vocabulary.user_id = ?

-- @sqlite sqla_sqlite_count_payments
SELECT count(*) AS count_1 
FROM payments 
WHERE payments.user_id = ? AND payments.status IN (?, ?)

-- @sqlite sqla_sqlite_course_revenue
SELECT sum(payments.amount) AS sum_1 
FROM payments 
WHERE payments.course_id = ? AND payments.created_at BETWEEN ? AND ?

-- @sqlite sqla_sqlite_users_with_payments
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE EXISTS (SELECT * 
FROM payments 
WHERE payments.user_id = users.id)

-- @sqlite sqla_sqlite_users_email_like
SELECT users.email 
FROM users 
WHERE users.email LIKE ?

-- @sqlite sqla_sqlite_progress_states
SELECT CASE WHEN (user_progress.completion_percentage >= ?) THEN ? ELSE ? END AS state, count(*) AS count_1 
FROM user_progress GROUP BY user_progress.completion_percentage

-- @sqlite sqla_sqlite_real_users
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.is_test_user IS 0 AND users.username IS NOT NULL

-- @sqlite sqla_sqlite_insert_words_executemany
INSERT INTO words (category_id, term, difficulty_level) VALUES (?, ?, ?)

-- @sqlite sqla_sqlite_words_tuple_in
SELECT words.id 
FROM words 
WHERE (words.category_id, words.difficulty_level) IN (VALUES (?, ?), (?, ?))

-- @sqlite sqla_sqlite_update_user_name
UPDATE users SET full_name=? WHERE users.id = ?

-- @sqlite sqla_sqlite_delete_payment_select_payments
SELECT payments.id, payments.user_id, payments.course_id, payments.amount, payments.status, payments.created_at 
FROM payments 
WHERE payments.id = ?

-- @sqlite sqla_sqlite_delete_payment_delete_payments
DELETE FROM payments WHERE payments.id = ?

-- @sqlite sqla_sqlite_savepoint
SAVEPOINT sa_savepoint_1

-- @sqlite sqla_sqlite_release_savepoint
RELEASE SAVEPOINT sa_savepoint_1

-- @sqlite sqlite_named_words_page
SELECT id, word, translation FROM words WHERE category_id = :category_id ORDER BY id LIMIT :per_page OFFSET :offset

-- @sqlite sqlite_named_practice_insert
INSERT INTO practice_sessions (user_id, session_date, total_questions, correct_answers, duration_seconds) VALUES (:user_id, :session_date, :total, :correct, :seconds)

-- @sqlite sqlite_qmark_mastery_update
UPDATE user_vocabulary SET mastery_level = mastery_level + 1 WHERE user_id = ? AND word_id = ?

-- @sqlite sqlite_qmark_in_list
SELECT word_id, mastery_level FROM user_vocabulary WHERE user_id = ? AND word_id IN (?, ?, ?, ?)

-- @sqlite sqlite_pragma_foreign_keys
PRAGMA foreign_keys = ON

-- @sqlite sqlite_upsert
INSERT INTO user_vocabulary (user_id, word_id, mastery_level) VALUES (?, ?, 0) ON CONFLICT (user_id, word_id) DO NOTHING

-- @sqlite sqlite_literal_like
SELECT id FROM words WHERE translation LIKE 'la %' AND difficulty_level >= 2

-- @mysql sqla_mysql_drop_tables_describe_users
DESCRIBE `test`.`users`

-- @mysql sqla_mysql_drop_tables_drop_content_items
DROP TABLE content_items

-- @mysql sqla_mysql_create_tables_create_users
CREATE TABLE users (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	email VARCHAR(255) NOT NULL, 
	full_name VARCHAR(200) NOT NULL, 
	user_role VARCHAR(20) NOT NULL, 
	username VARCHAR(100), 
	is_test_user BOOL NOT NULL, 
	metadata JSON, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
)

-- @mysql sqla_mysql_create_tables_create_ix_words_category_id
CREATE INDEX ix_words_category_id ON words (category_id)

-- @mysql sqla_mysql_insert_users_batch
INSERT INTO users (email, full_name, user_role, username, is_test_user, created_at) VALUES (%(email__0)s, %(full_name__0)s, %(user_role__0)s, %(username__0)s, %(is_test_user__0)s, %(created_at__0)s), (%(email__1)s, %(full_name__1)s, %(user_role__1)s, %(username__1)s, %(is_test_user__1)s, %(created_at__1)s), (%(email__2)s, %(full_name__2)s, %(user_role__2)s, %(username__2)s, %(is_test_user__2)s, %(created_at__2)s), (%(email__3)s, %(full_name__3)s, %(user_role__3)s, %(username__3)s, %(is_test_user__3)s, %(created_at__3)s), (%(email__4)s, %(full_name__4)s, %(user_role__4)s, %(username__4)s, %(is_test_user__4)s, %(created_at__4)s) RETURNING users.id, users.id AS id__1

-- @mysql sqla_mysql_insert_course
INSERT INTO courses (title, description, instructor_id, status, created_at) VALUES (%(title)s, %(description)s, %(instructor_id)s, %(status)s, %(created_at)s)

-- @mysql sqla_mysql_flush_insert_payments
INSERT INTO payments (user_id, course_id, amount, status, created_at) VALUES (%(user_id)s, %(course_id)s, %(amount)s, %(status)s, %(created_at)s)

-- @mysql sqla_mysql_flush_insert_words
INSERT INTO words (category_id, term, difficulty_level) VALUES (%(category_id__0)s, %(term__0)s, %(difficulty_level__0)s), (%(category_id__1)s, %(term__1)s, %(difficulty_level__1)s), (%(category_id__2)s, %(term__2)s, %(difficulty_level__2)s), (%(category_id__3)s, %(term__3)s, %(difficulty_level__3)s) RETURNING words.id, words.id AS id__1

-- @mysql sqla_mysql_flush_insert_course_modules
INSERT INTO course_modules (course_id, title, `position`, is_published) VALUES (%(course_id__0)s, %(title__0)s, %(position__0)s, %(is_published__0)s), (%(course_id__1)s, %(title__1)s, %(position__1)s, %(is_published__1)s), (%(course_id__2)s, %(title__2)s, %(position__2)s, %(is_published__2)s) RETURNING course_modules.id, course_modules.id AS id__1

-- @mysql sqla_mysql_flush_insert_user_progress
INSERT INTO user_progress (user_id, course_id, completed_items, completion_percentage, last_activity_at) VALUES (%(user_id__0)s, %(course_id__0)s, %(completed_items__0)s, %(completion_percentage__0)s, %(last_activity_at__0)s), (%(user_id__1)s, %(course_id__1)s, %(completed_items__1)s, %(completion_percentage__1)s, %(last_activity_at__1)s), (%(user_id__2)s, %(course_id__2)s, %(completed_items__2)s, %(completion_percentage__2)s, %(last_activity_at__2)s), (%(user_id__3)s, %(course_id__3)s, %(completed_items__3)s, %(completion_percentage__3)s, %(last_activity_at__3)s), (%(user_id__4)s, %(course_id__4)s, %(completed_items__4)s, %(completion_percentage__4)s, %(last_activity_at__4)s) RETURNING user_progress.id, user_progress.id AS id__1

-- @mysql sqla_mysql_get_user
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id = %(pk_1)s

-- @mysql sqla_mysql_users_by_role_recent
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.user_role = %(user_role_1)s AND users.created_at > %(created_at_1)s ORDER BY users.created_at DESC 
 LIMIT %(param_1)s

-- @mysql sqla_mysql_users_in_list
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN (%(id_1_1)s, %(id_1_2)s, %(id_1_3)s)

-- @mysql sqla_mysql_users_in_list_6
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.id IN (%(id_1_1)s, %(id_1_2)s, %(id_1_3)s, %(id_1_4)s, %(id_1_5)s, %(id_1_6)s)

-- @mysql sqla_mysql_courses_selectin_modules_select_courses
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at 
FROM courses

-- @mysql sqla_mysql_courses_selectin_modules_select_course_modules
SELECT course_modules.course_id, course_modules.id, course_modules.title, course_modules.`position`, course_modules.is_published 
FROM course_modules 
WHERE course_modules.course_id IN (%(primary_keys_1)s) ORDER BY course_modules.`position`

-- @mysql sqla_mysql_courses_joined_instructor
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at, users_1.id AS id_1, users_1.email, users_1.full_name, users_1.user_role, users_1.username, users_1.is_test_user, users_1.metadata, users_1.created_at AS created_at_1 
FROM courses LEFT OUTER JOIN users AS users_1 ON users_1.id = courses.instructor_id

-- @mysql sqla_mysql_users_selectin_progress_course_select_users
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users

-- @mysql sqla_mysql_users_selectin_progress_course_select_user_progress
SELECT user_progress.user_id, user_progress.id, user_progress.course_id, user_progress.completed_items, user_progress.completion_percentage, user_progress.last_activity_at 
FROM user_progress 
WHERE user_progress.user_id IN (%(primary_keys_1)s, %(primary_keys_2)s, %(primary_keys_3)s, %(primary_keys_4)s, %(primary_keys_5)s)

-- @mysql sqla_mysql_users_selectin_progress_course_select_courses
SELECT courses.id, courses.title, courses.description, courses.instructor_id, courses.status, courses.created_at 
FROM courses 
WHERE courses.id IN (%(primary_keys_1)s)

-- @mysql sqla_mysql_users_count_by_role
SELECT users.user_role, count(users.id) AS n 
FROM users GROUP BY users.user_role 
HAVING count(users.id) > %(count_1)s

-- @mysql sqla_mysql_progress_report
SELECT users_1.full_name, courses_1.title AS course_title, user_progress_1.completion_percentage, user_progress_1.last_activity_at 
FROM user_progress AS user_progress_1 INNER JOIN users AS users_1 ON user_progress_1.user_id = users_1.id INNER JOIN courses AS courses_1 ON user_progress_1.course_id = courses_1.id 
WHERE user_progress_1.completion_percentage < %(completion_percentage_1)s AND (user_progress_1.last_activity_at IS NULL OR user_progress_1.last_activity_at < %(last_activity_at_1)s) ORDER BY user_progress_1.last_activity_at ASC 
 LIMIT %(param_1)s

-- @mysql sqla_mysql_modules_row_number
SELECT course_modules.id, row_number() OVER (PARTITION BY course_modules.course_id ORDER BY course_modules.`position` DESC) AS rn 
FROM course_modules

-- @mysql sqla_mysql_course_avg_cte
WITH course_avg AS 
(SELECT user_progress.course_id AS course_id, avg(user_progress.completion_percentage) AS avg_pct 
FROM user_progress GROUP BY user_progress.course_id)
 SELECT courses.title, course_avg.avg_pct 
FROM courses INNER JOIN course_avg ON course_avg.course_id = courses.id 
WHERE course_avg.avg_pct >= %(avg_pct_1)s

-- @mysql sqla_mysql_words_page
SELECT words.id, words.category_id, words.term, words.difficulty_level 
FROM words 
WHERE words.category_id = %(category_id_1)s ORDER BY words.id 
 LIMIT %(param_1)s, %(param_2)s

-- @mysql sqla_mysql_words_by_category_n_plus_one_select_words
SELECT words.id, words.category_id, words.term, words.difficulty_level 
FROM words 
WHERE words.category_id = %(category_id_1)s

-- @mysql sqla_mysql_words_by_category_n_plus_one_select_user_vocabulary
SELECT user_vocabulary.id, user_vocabulary.user_id, user_vocabulary.word_id, user_vocabulary.mastery_level 
FROM user_vocabulary 
WHERE user_vocabulary.user_id = %(user_id_1)s AND user_vocabulary.word_id = %(word_id_1)s 
 LIMIT %(param_1)s

-- @mysql sqla_mysql_words_selectin_vocab
SELECT user_vocabulary.word_id, user_vocabulary.id, user_vocabulary.user_id, user_vocabulary.mastery_level 
FROM user_vocabulary 
WHERE user_vocabulary.word_id IN (%(primary_keys_1)s, %(primary_keys_2)s, %(primary_keys_3)s, %(primary_keys_4)s)

-- @mysql sqla_mysql_update_user
UPDATE users SET full_name=%(full_name)s, user_role=%(user_role)s WHERE users.id = %(id_1)s

-- @mysql sqla_mysql_expire_payments
UPDATE payments SET status=%(status)s WHERE payments.status = %(status_1)s AND payments.created_at < %(created_at_1)s

-- @mysql sqla_mysql_delete_vocab
DELETE FROM user_vocabulary WHERE user_vocabulary.user_id = %(user_id_1)s

-- @mysql sqla_mysql_count_payments
SELECT count(*) AS count_1 
FROM payments 
WHERE payments.user_id = %(user_id_1)s AND payments.status IN (%(status_1_1)s, %(status_1_2)s)

-- @mysql sqla_mysql_course_revenue
SELECT sum(payments.amount) AS sum_1 
FROM payments 
WHERE payments.course_id = %(course_id_1)s AND payments.created_at BETWEEN %(created_at_1)s AND %(created_at_2)s

-- @mysql sqla_mysql_users_with_payments
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE EXISTS (SELECT * 
FROM payments 
WHERE payments.user_id = users.id)

-- @mysql sqla_mysql_users_email_like
SELECT users.email 
FROM users 
WHERE users.email LIKE %(email_1)s

-- @mysql sqla_mysql_progress_states
SELECT CASE WHEN (user_progress.completion_percentage >= %(completion_percentage_1)s) THEN %(param_1)s ELSE %(param_2)s END AS state, count(*) AS count_1 
FROM user_progress GROUP BY user_progress.completion_percentage

-- @mysql sqla_mysql_real_users
SELECT users.id, users.email, users.full_name, users.user_role, users.username, users.is_test_user, users.metadata, users.created_at 
FROM users 
WHERE users.is_test_user IS false AND users.username IS NOT NULL

-- @mysql sqla_mysql_insert_words_executemany
INSERT INTO words (category_id, term, difficulty_level) VALUES (%(category_id)s, %(term)s, %(difficulty_level)s)

-- @mysql sqla_mysql_insert_words_batch_25
INSERT INTO words (category_id, term, difficulty_level) VALUES (%(category_id__0)s, %(term__0)s, %(difficulty_level__0)s), (%(category_id__1)s, %(term__1)s, %(difficulty_level__1)s), (%(category_id__2)s, %(term__2)s, %(difficulty_level__2)s), (%(category_id__3)s, %(term__3)s, %(difficulty_level__3)s), (%(category_id__4)s, %(term__4)s, %(difficulty_level__4)s), (%(category_id__5)s, %(term__5)s, %(difficulty_level__5)s), (%(category_id__6)s, %(term__6)s, %(difficulty_level__6)s), (%(category_id__7)s, %(term__7)s, %(difficulty_level__7)s), (%(category_id__8)s, %(term__8)s, %(difficulty_level__8)s), (%(category_id__9)s, %(term__9)s, %(difficulty_level__9)s), (%(category_id__10)s, %(term__10)s, %(difficulty_level__10)s), (%(category_id__11)s, %(term__11)s, %(difficulty_level__11)s), (%(category_id__12)s, %(term__12)s, %(difficulty_level__12)s), (%(category_id__13)s, %(term__13)s, %(difficulty_level__13)s), (%(category_id__14)s, %(term__14)s, %(difficulty_level__14)s), (%(category_id__15)s, %(term__15)s, %(difficulty_level__15)s), (%(category_id__16)s, %(term__16)s, %(difficulty_level__16)s), (%(category_id__17)s, %(term__17)s, %(difficulty_level__17)s), (%(category_id__18)s, %(term__18)s, %(difficulty_level__18)s), (%(category_id__19)s, %(term__19)s, %(difficulty_level__19)s), (%(category_id__20)s, %(term__20)s, %(difficulty_level__20)s), (%(category_id__21)s, %(term__21)s, %(difficulty_level__21)s), (%(category_id__22)s, %(term__22)s, %(difficulty_level__22)s), (%(category_id__23)s, %(term__23)s, %(difficulty_level__23)s), (%(category_id__24)s, %(term__24)s, %(difficulty_level__24)s) RETURNING words.id, words.id AS id__1

-- @mysql sqla_mysql_words_tuple_in
SELECT words.id 
FROM words 
WHERE (words.category_id, words.difficulty_level) IN ((%(param_1_1_1)s, %(param_1_1_2)s), (%(param_1_2_1)s, %(param_1_2_2)s))

-- @mysql sqla_mysql_update_user_name
UPDATE users SET full_name=%(full_name)s WHERE users.id = %(users_id)s

-- @mysql sqla_mysql_delete_payment_select_payments
SELECT payments.id, payments.user_id, payments.course_id, payments.amount, payments.status, payments.created_at 
FROM payments 
WHERE payments.id = %(pk_1)s

-- @mysql sqla_mysql_delete_payment_delete_payments
DELETE FROM payments WHERE payments.id = %(id)s

-- @mysql sqla_mysql_savepoint
SAVEPOINT sa_savepoint_1

-- @mysql sqla_mysql_release_savepoint
RELEASE SAVEPOINT sa_savepoint_1

-- @mysql mysql_backticks_users
SELECT `u`.`id`, `u`.`username`, `u`.`role` FROM `users` AS `u` WHERE `u`.`role` = 'participant' AND `u`.`is_test_user` = 0 LIMIT 20, 20

-- @mysql mysql_backticks_step_data
SELECT `step_id`, `data` FROM `workshop_step_data` WHERE `user_id` = 118 AND `workshop_type` IN ('ast', 'ia') ORDER BY `step_id`

-- @mysql mysql_on_duplicate_key
INSERT INTO `user_vocabulary` (`user_id`, `word_id`, `mastery_level`) VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE `mastery_level` = VALUES(`mastery_level`)

-- @mysql mysql_backslash_string
UPDATE `words` SET `notes` = 'it\'s a "false friend"' WHERE `id` = 3051

-- @mysql mysql_json_extract
SELECT `id` FROM `users` WHERE JSON_EXTRACT(`navigation_progress`, '$.currentStep') = '3-2'
