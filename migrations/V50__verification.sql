-- V50: verification (KYC) of issue 17 (docs/accounts.md, "Verification").

-- One live code per account and channel: a new code replaces the old one (the primary key).
-- Only a salted SHA-256 of the code is kept; the code itself exists only in the message
-- that carries it.
CREATE TABLE verification_codes (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel VARCHAR(10) NOT NULL,
    code_salt BYTEA NOT NULL,
    code_hash BYTEA NOT NULL,
    -- Wrong codes tried against this one; at the configured maximum the code is dead.
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    -- When this code was sent (the resend throttle counts from here).
    sent_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY (user_id, channel),
    CONSTRAINT verification_codes_channel_check CHECK (channel IN ('email', 'phone')),
    CONSTRAINT verification_codes_attempts_non_negative CHECK (attempts >= 0)
);

-- The outbox of the development notifier: every outgoing message (codes, decisions) that a
-- delivery worker would send, then stamp `sent_at`.
CREATE TABLE notifications (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    channel VARCHAR(10) NOT NULL,
    recipient VARCHAR(255) NOT NULL,
    template VARCHAR(100) NOT NULL,
    payload JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    sent_at TIMESTAMP WITH TIME ZONE,

    CONSTRAINT notifications_channel_check CHECK (channel IN ('email', 'phone'))
);

-- A delivery worker reads what is still to send, oldest first.
CREATE INDEX idx_notifications_unsent ON notifications (created_at) WHERE sent_at IS NULL;

-- The review of documents: when the profile entered the queue (oldest first), the last
-- decision's reason, reviewer and time. The decision itself is also in audit_log (the
-- user_profiles trigger, with the reviewer as actor).
ALTER TABLE user_profiles
    ADD COLUMN verification_submitted_at TIMESTAMP WITH TIME ZONE,
    ADD COLUMN verification_reason TEXT,
    ADD COLUMN verification_reviewed_by UUID REFERENCES users(id) ON DELETE SET NULL,
    ADD COLUMN verification_reviewed_at TIMESTAMP WITH TIME ZONE;

-- The support queue: pending profiles, oldest submission first.
CREATE INDEX idx_user_profiles_verification_queue
    ON user_profiles (verification_status, verification_submitted_at, user_id);
