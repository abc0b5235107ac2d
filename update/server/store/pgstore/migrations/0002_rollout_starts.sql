-- Version 2: a rollout counts its claims per window (ClaimRolloutDevice),
-- beside its status rather than in it, so that a device's first offer
-- takes its place under the start cap in the transaction that writes the
-- device's state, without a compare and swap on the status.
ALTER TABLE rollouts
	ADD COLUMN starts_window timestamptz,
	ADD COLUMN starts        integer NOT NULL DEFAULT 0;
