-- Data keys. Small sealed values (message manifests, outbox payloads,
-- recovery addresses) are encrypted with XChaCha20-Poly1305 under a random
-- data key, and only the data key is an age file, sealed to the key file's
-- identity. Each value then costs a symmetric encryption instead of a
-- post-quantum key encapsulation, and rekey re-wraps one small file instead
-- of every value. Message parts stay age files of their own.
CREATE TABLE data_keys (
	id      INTEGER PRIMARY KEY,
	sealed  BLOB    NOT NULL, -- an age file holding the 32-byte key
	created INTEGER NOT NULL
) STRICT;
