-- The durable record of conversations (issue 17). Live state stays in Redis;
-- these tables keep every chat after it expired: its ticket fields, its
-- messages (each once, in seq order), its history of events, and an audit of
-- erasures that keeps no content.

CREATE TABLE conversations (
  chat_id           text PRIMARY KEY,
  visitor_id        text,
  user_id           text,
  username          text,
  email             text,
  subject           text,
  category          text CHECK (category IN ('GENERAL', 'TECHNICAL', 'BILLING', 'ACCOUNT', 'SECURITY', 'FEATURE_REQUEST', 'BUG_REPORT')),
  priority          text CHECK (priority IN ('LOW', 'MEDIUM', 'HIGH', 'URGENT')),
  -- Seed 000's status names.
  status            text NOT NULL DEFAULT 'OPEN'
                    CHECK (status IN ('OPEN', 'IN_PROGRESS', 'WAITING_FOR_USER', 'WAITING_FOR_ADMIN', 'RESOLVED', 'CLOSED')),
  agent_id          text,
  support_user_name text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  claimed_at        timestamptz,
  ended_at          timestamptz,
  ended_by          text,
  end_reason        text,
  expired_at        timestamptz,
  tags              text[] NOT NULL DEFAULT '{}',
  message_count     integer NOT NULL DEFAULT 0,
  last_message_at   timestamptz,
  search            tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(subject, ''))) STORED
);

-- Lists are newest first, cursor-paged on (created_at, chat_id); each filter
-- has its own index in that order.
CREATE INDEX conversations_created ON conversations (created_at DESC, chat_id DESC);
CREATE INDEX conversations_status ON conversations (status, created_at DESC, chat_id DESC);
CREATE INDEX conversations_agent ON conversations (agent_id, created_at DESC, chat_id DESC);
CREATE INDEX conversations_category ON conversations (category, created_at DESC, chat_id DESC);
CREATE INDEX conversations_priority ON conversations (priority, created_at DESC, chat_id DESC);
CREATE INDEX conversations_visitor ON conversations (visitor_id, created_at DESC);
-- Emails are compared without case.
CREATE INDEX conversations_email ON conversations (lower(email), created_at DESC);
CREATE INDEX conversations_search ON conversations USING gin (search);

CREATE TABLE messages (
  chat_id           text NOT NULL REFERENCES conversations (chat_id) ON DELETE CASCADE,
  seq               integer NOT NULL,
  message_id        text NOT NULL UNIQUE,
  from_party        text NOT NULL CHECK (from_party IN ('User', 'Support')),
  content           text NOT NULL,
  sent_at           timestamptz NOT NULL,
  client_message_id text,
  PRIMARY KEY (chat_id, seq)
);

-- Full-text search over contents; queries must use this very expression.
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple', content));

CREATE TABLE conversation_events (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  chat_id   text NOT NULL REFERENCES conversations (chat_id) ON DELETE CASCADE,
  kind      text NOT NULL,
  at        timestamptz NOT NULL DEFAULT now(),
  data      jsonb NOT NULL DEFAULT '{}',
  -- What the writer names the event by (e.g. its hand-off entry id), so an
  -- event delivered twice is stored once; NULL when the writer has none.
  event_key text UNIQUE
);

CREATE INDEX conversation_events_chat ON conversation_events (chat_id, at);

-- Who was erased, when, and how much: the subject as a SHA-256 of the
-- identifier (not the identifier itself, which was asked to be forgotten),
-- never any content.
CREATE TABLE erasures (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  selector       text NOT NULL CHECK (selector IN ('visitor_id', 'email')),
  subject_sha256 text NOT NULL,
  conversations  integer NOT NULL,
  messages       integer NOT NULL,
  requested_by   text
);
