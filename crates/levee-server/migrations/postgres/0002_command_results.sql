-- What the agent reported for each command: ok (0/1) and its message.
ALTER TABLE commands ADD COLUMN ok BIGINT;
ALTER TABLE commands ADD COLUMN result TEXT;
