package portal

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// fakeStore is the store in memory, keeping the contracts of Store: errors
// with the codes documented, sessions that expire when idle or old,
// single-use reset tokens, and SaveReply that reads every part to its end
// and stores nothing when one fails.
type fakeStore struct {
	mu         sync.Mutex
	nextID     int64
	convs      map[int64]*securetextd.Conversation
	links      map[string]int64
	msgs       map[int64][]*securetextd.Message // by conversation
	content    map[int64][][]byte               // by message
	recipients map[securetextd.Phone]*fakeRecipient
	sessions   map[string]*securetextd.Session
	resets     map[string]*fakeReset
	mailed     map[securetextd.Phone]string // the last reset token "emailed"
	calls      []string
	saveErr    error                     // the error SaveReply last saw
	failLinks  error                     // returned by ConversationByToken when set
	strikes    map[string]*store.Strikes // by kind and key

	read atomic.Int64 // bytes read through OpenPart's readers
}

type fakeRecipient struct{ password, email string }

type fakeReset struct {
	phone   securetextd.Phone
	expires time.Time
	used    bool
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		convs:      make(map[int64]*securetextd.Conversation),
		links:      make(map[string]int64),
		msgs:       make(map[int64][]*securetextd.Message),
		content:    make(map[int64][][]byte),
		recipients: make(map[securetextd.Phone]*fakeRecipient),
		sessions:   make(map[string]*securetextd.Session),
		resets:     make(map[string]*fakeReset),
		mailed:     make(map[securetextd.Phone]string),
		strikes:    make(map[string]*store.Strikes),
	}
}

var _ Store = (*fakeStore)(nil)

func notFound() error { return securetextd.Errorf(securetextd.ENOTFOUND, "not found") }

func (f *fakeStore) call(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

// Calls returns the names of the methods called so far, and forgets them.
func (f *fakeStore) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// addConversation makes a conversation of phone from sender, opened by
// token.
func (f *fakeStore) addConversation(phone securetextd.Phone, sender, token string) *securetextd.Conversation {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	now := time.Now()
	c := &securetextd.Conversation{ID: f.nextID, Phone: phone, Sender: sender, Created: now, LastActivity: now}
	f.convs[c.ID] = c
	f.links[token] = c.ID
	return c
}

// testPart is a part with its content.
type testPart struct {
	securetextd.Part
	content []byte
}

// addMessage adds an inbound message to a conversation.
func (f *fakeStore) addMessage(convID int64, m *securetextd.Message, parts ...testPart) *securetextd.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	m.ID = f.nextID
	if m.Direction == 0 {
		m.Direction = securetextd.Inbound
	}
	if m.Received.IsZero() {
		m.Received = time.Now()
	}
	var content [][]byte
	for _, p := range parts {
		p.Part.Size = int64(len(p.content))
		m.Parts = append(m.Parts, p.Part)
		content = append(content, p.content)
	}
	f.msgs[convID] = append(f.msgs[convID], m)
	f.content[m.ID] = content
	f.convs[convID].LastActivity = m.Received
	return m
}

func (f *fakeStore) ConversationByToken(ctx context.Context, token string) (*securetextd.Conversation, error) {
	f.call("ConversationByToken")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failLinks != nil {
		return nil, f.failLinks
	}
	id, ok := f.links[token]
	if !ok {
		return nil, notFound()
	}
	c := *f.convs[id]
	return &c, nil
}

func (f *fakeStore) Conversation(ctx context.Context, id int64) (*securetextd.Conversation, error) {
	f.call("Conversation")
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.convs[id]
	if !ok {
		return nil, notFound()
	}
	cc := *c
	return &cc, nil
}

func (f *fakeStore) ConversationMessages(ctx context.Context, id int64) ([]*securetextd.Message, error) {
	f.call("ConversationMessages")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.convs[id]; !ok {
		return nil, notFound()
	}
	var out []*securetextd.Message
	for _, m := range f.msgs[id] {
		mm := *m
		mm.Parts = slices.Clone(m.Parts)
		out = append(out, &mm)
	}
	return out, nil
}

// countingReaderAt counts the bytes read, to show that a Range request
// decrypts only what it asks for.
type countingReaderAt struct {
	r *bytes.Reader
	n *atomic.Int64
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func (f *fakeStore) OpenPart(ctx context.Context, messageID int64, index int) (io.ReaderAt, int64, error) {
	f.call("OpenPart")
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.content[messageID]
	if !ok || index < 0 || index >= len(c) {
		return nil, 0, notFound()
	}
	return countingReaderAt{bytes.NewReader(c[index]), &f.read}, int64(len(c[index])), nil
}

func (f *fakeStore) Inbox(ctx context.Context, phone securetextd.Phone) ([]securetextd.InboxEntry, error) {
	f.call("Inbox")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []securetextd.InboxEntry
	for id, c := range f.convs {
		if c.Phone != phone {
			continue
		}
		e := securetextd.InboxEntry{Conversation: *c, Messages: len(f.msgs[id])}
		if n := len(f.msgs[id]); n > 0 {
			e.Latest = f.msgs[id][n-1]
		}
		out = append(out, e)
	}
	// Deliberately unsorted: the portal orders them.
	return out, nil
}

func (f *fakeStore) Recipient(ctx context.Context, phone securetextd.Phone) (*securetextd.Recipient, error) {
	f.call("Recipient")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.recipients[phone]; !ok {
		return nil, notFound()
	}
	return &securetextd.Recipient{Phone: phone}, nil
}

func (f *fakeStore) CreateRecipient(ctx context.Context, phone securetextd.Phone, password, email string) error {
	f.call("CreateRecipient")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.recipients[phone]; ok {
		return securetextd.Errorf(securetextd.ECONFLICT, "already set")
	}
	f.recipients[phone] = &fakeRecipient{password, email}
	return nil
}

func (f *fakeStore) AuthenticateRecipient(ctx context.Context, phone securetextd.Phone, password string) error {
	f.call("AuthenticateRecipient")
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.recipients[phone]; !ok || r.password != password {
		return securetextd.Errorf(securetextd.EUNAUTHORIZED, "wrong password")
	}
	return nil
}

func (f *fakeStore) CreateSession(ctx context.Context, phone securetextd.Phone) (string, error) {
	f.call("CreateSession")
	f.mu.Lock()
	defer f.mu.Unlock()
	token := rand.Text()
	now := time.Now()
	f.sessions[token] = &securetextd.Session{Phone: phone, Created: now, LastSeen: now}
	return token, nil
}

func (f *fakeStore) Session(ctx context.Context, token string, idle, absolute time.Duration) (*securetextd.Session, error) {
	f.call("Session")
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[token]
	now := time.Now()
	if !ok || now.Sub(s.LastSeen) > idle || now.Sub(s.Created) > absolute {
		delete(f.sessions, token)
		return nil, notFound()
	}
	s.LastSeen = now
	ss := *s
	return &ss, nil
}

func (f *fakeStore) DeleteSession(ctx context.Context, token string) error {
	f.call("DeleteSession")
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, token)
	return nil
}

func (f *fakeStore) RequestPasswordReset(ctx context.Context, phone securetextd.Phone, validFor time.Duration) error {
	f.call("RequestPasswordReset")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.recipients[phone]; !ok {
		return nil
	}
	token := rand.Text()
	f.resets[token] = &fakeReset{phone: phone, expires: time.Now().Add(validFor)}
	f.mailed[phone] = token
	return nil
}

func (f *fakeStore) checkReset(token string) (*fakeReset, error) {
	r, ok := f.resets[token]
	if !ok || r.used || time.Now().After(r.expires) {
		return nil, notFound()
	}
	return r, nil
}

func (f *fakeStore) CheckResetToken(ctx context.Context, token string) (securetextd.Phone, error) {
	f.call("CheckResetToken")
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.checkReset(token)
	if err != nil {
		return "", err
	}
	return r.phone, nil
}

func (f *fakeStore) ResetPassword(ctx context.Context, token, password string) (securetextd.Phone, error) {
	f.call("ResetPassword")
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.checkReset(token)
	if err != nil {
		return "", err
	}
	r.used = true
	f.recipients[r.phone].password = password
	return r.phone, nil
}

func (f *fakeStore) SaveReply(ctx context.Context, convID int64, parts iter.Seq2[securetextd.Part, io.Reader]) (*securetextd.Message, error) {
	f.call("SaveReply")
	f.mu.Lock()
	_, ok := f.convs[convID]
	f.saveErr = nil
	f.mu.Unlock()
	if !ok {
		return nil, notFound()
	}
	var got []testPart
	i := 0
	for p, r := range parts {
		b, err := io.ReadAll(r)
		if err != nil {
			f.mu.Lock()
			f.saveErr = err
			f.mu.Unlock()
			return nil, fmt.Errorf("store: save reply part %d: %w", i, err)
		}
		got = append(got, testPart{p, b})
		i++
	}
	if len(got) == 0 {
		return nil, errors.New("store: a reply without parts")
	}
	return f.addMessage(convID, &securetextd.Message{Direction: securetextd.Reply, Subject: "Re: your message"}, got...), nil
}

// messages returns the messages of a conversation.
func (f *fakeStore) messages(convID int64) []*securetextd.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs[convID])
}

func (f *fakeStore) lastSaveErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saveErr
}

func (f *fakeStore) mailedToken(phone securetextd.Phone) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mailed[phone]
}

func (f *fakeStore) partContent(msgID int64, idx int) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.content[msgID][idx]
}

// The limits follow the store's own rule (store.Strikes), in memory, on
// the test's clock; they are not recorded as calls: they read no data.

func (f *fakeStore) StrikesLocked(ctx context.Context, kind string, keys ...string) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	var wait time.Duration
	for _, k := range keys {
		if s := f.strikes[kind+" "+k]; s != nil {
			if u := s.LockedUntil(now); !u.IsZero() {
				wait = max(wait, u.Sub(now))
			}
		}
	}
	return wait, nil
}

func (f *fakeStore) Strike(ctx context.Context, kind string, r store.StrikeRule, keys ...string) (time.Duration, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.strikeLocked(kind, r, keys)
}

func (f *fakeStore) strikeLocked(kind string, r store.StrikeRule, keys []string) (time.Duration, int, error) {
	now := time.Now()
	var wait time.Duration
	left := r.Max
	for _, k := range keys {
		s := f.strikes[kind+" "+k]
		if s == nil {
			s = &store.Strikes{}
			f.strikes[kind+" "+k] = s
		}
		u, l := s.Strike(now, r)
		if !u.IsZero() {
			wait = max(wait, u.Sub(now))
		}
		left = min(left, l)
	}
	return wait, left, nil
}

func (f *fakeStore) StrikeUnlessLocked(ctx context.Context, kind string, r store.StrikeRule, keys ...string) (bool, error) {
	if wait, _ := f.StrikesLocked(ctx, kind, keys...); wait > 0 {
		return false, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, _, err := f.strikeLocked(kind, r, keys)
	return true, err
}

func (f *fakeStore) ForgetStrikes(ctx context.Context, kind string, keys ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		delete(f.strikes, kind+" "+k)
	}
	return nil
}
