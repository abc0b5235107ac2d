-- The fleet store, version 1. Keys are compared bytewise (COLLATE "C"),
-- as every store orders them, whatever the database's collation.

CREATE TABLE terminals (
	id                text COLLATE "C" PRIMARY KEY,
	serial            text COLLATE "C" NOT NULL UNIQUE,
	model             text NOT NULL DEFAULT '',
	hardware_revision text NOT NULL DEFAULT '',
	token_hash        bytea UNIQUE,
	tags              text[],
	grp               text NOT NULL DEFAULT '',
	channel           text NOT NULL DEFAULT '',
	components        jsonb,
	registered_at     timestamptz,
	last_seen         timestamptz,
	interval_ns       bigint NOT NULL DEFAULT 0,
	status            jsonb,
	last_result       jsonb,
	directives        text[]
);

-- Reports are recorded once per (device_id, id); seq orders them.
CREATE TABLE reports (
	seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_id    text COLLATE "C" NOT NULL REFERENCES terminals (id),
	id           text COLLATE "C" NOT NULL,
	release      text NOT NULL DEFAULT '',
	from_version text NOT NULL DEFAULT '',
	to_version   text NOT NULL DEFAULT '',
	phase        text NOT NULL DEFAULT '',
	outcome      text NOT NULL DEFAULT '',
	reason       text NOT NULL DEFAULT '',
	detail       text NOT NULL DEFAULT '',
	at           timestamptz,
	received_at  timestamptz,
	UNIQUE (device_id, id)
);
CREATE INDEX reports_by_device ON reports (device_id, seq);

-- Opaque JSON is kept as json, not jsonb: verbatim, byte for byte.
CREATE SEQUENCE releases_seq;
CREATE TABLE releases (
	id           text COLLATE "C" NOT NULL,
	channel      text COLLATE "C" NOT NULL,
	seq          bigint NOT NULL,
	component    text NOT NULL DEFAULT '',
	version      text NOT NULL DEFAULT '',
	digest       text NOT NULL DEFAULT '',
	size         bigint NOT NULL DEFAULT 0,
	path         text NOT NULL DEFAULT '',
	bundle       bytea,
	policy       json,
	published_at timestamptz,
	PRIMARY KEY (id, channel)
);

CREATE TABLE rollouts (
	id         text COLLATE "C" PRIMARY KEY,
	definition json,
	status     json,
	version    bigint NOT NULL,
	created_at timestamptz,
	updated_at timestamptz
);

CREATE TABLE rollout_devices (
	rollout_id text COLLATE "C" NOT NULL REFERENCES rollouts (id),
	device_id  text COLLATE "C" NOT NULL,
	phase      text COLLATE "C" NOT NULL,
	reason     text COLLATE "C" NOT NULL DEFAULT '',
	attempts   integer NOT NULL DEFAULT 0,
	updated_at timestamptz,
	PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX rollout_devices_by_phase ON rollout_devices (rollout_id, phase, device_id);

-- How many devices of a rollout are in each phase for each reason, kept in
-- step with rollout_devices by every write, so counting reads a few rows.
-- A group whose count falls to zero is deleted in the same transaction.
CREATE TABLE rollout_counts (
	rollout_id text COLLATE "C" NOT NULL REFERENCES rollouts (id),
	phase      text COLLATE "C" NOT NULL,
	reason     text COLLATE "C" NOT NULL,
	n          bigint NOT NULL,
	PRIMARY KEY (rollout_id, phase, reason)
);

-- The audit log is append-only. Appends take the one counter row, so
-- sequence numbers are given in commit order and a reader paging by seq
-- never finds one committed behind it.
CREATE TABLE audit_seq (
	one  boolean PRIMARY KEY DEFAULT true CHECK (one),
	last bigint NOT NULL
);
INSERT INTO audit_seq (last) VALUES (0);

CREATE TABLE audit (
	seq    bigint PRIMARY KEY,
	at     timestamptz NOT NULL,
	actor  text NOT NULL DEFAULT '',
	role   text NOT NULL DEFAULT '',
	action text NOT NULL,
	target text NOT NULL DEFAULT '',
	result text NOT NULL DEFAULT '',
	detail text NOT NULL DEFAULT ''
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
