package store

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// A part of one chunk. age's DecryptReaderAt allocates a whole chunk's
// buffer (64 KiB) at every ReadAt, even one its cache answers, and it
// parses and writes out the header again first: for the short text of a
// message, that was half of what the portal's conversation page
// allocated, and the collector's pace followed it (issue 15). Most parts
// of most messages hold less than one chunk of age's STREAM
// (age-encryption.org/v1: 64 KiB of plaintext, sealed with
// ChaCha20-Poly1305 under a key derived from the file key and the
// payload's nonce). openOneChunk opens those with a single decryption,
// into a buffer of their own size: the file key from age.DecryptHeader,
// as age does it, then the one chunk's AEAD, which is all age would do
// for them. A larger part goes through age.DecryptReaderAt, which reads
// it by chunks as asked (TestOneChunkAsAge compares the two).

const (
	streamChunkSize = 64 << 10 // plaintext per chunk, age's ChunkSize
	streamTagSize   = chacha20poly1305.Overhead
)

// oneChunk reports whether an age payload (its nonce, then its chunks)
// of payload bytes is a single chunk.
func oneChunk(payload int64) bool {
	return payload >= streamNonceSize+streamTagSize && payload <= streamNonceSize+streamChunkSize+streamTagSize
}

// openOneChunk opens the age file of r, whose header is r.header and
// whose payload is a single chunk, with its file key from keys (the
// part's place unwraps it with id).
func openOneChunk(r *chunkReader, keys *fileKeys, place partPlace, id age.Identity) (*bytes.Reader, error) {
	fileKey, err := keys.fileKey(place, r.header, id)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, r.size-int64(len(r.header)))
	if n, err := r.ReadAt(payload, int64(len(r.header))); n != len(payload) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	nonce, sealed := payload[:streamNonceSize], payload[streamNonceSize:]
	key, err := hkdf.Key(sha256.New, fileKey, nonce, "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	// The chunk's nonce: its counter (0) in 11 bytes, then 1, as it is
	// the last.
	var chunkNonce [chacha20poly1305.NonceSize]byte
	chunkNonce[len(chunkNonce)-1] = 1
	plain, err := aead.Open(sealed[:0], chunkNonce[:], sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to decrypt and authenticate the payload: %w", err)
	}
	return bytes.NewReader(plain), nil
}
