package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

func TestOutbox(t *testing.T) {
	keys, opts := testKeys(t), testOptions(t)
	ctx := t.Context()
	db, err := OpenWith(ctx, opts, keys)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }

	if _, ok, err := db.NextDue(ctx); ok || err != nil {
		t.Fatalf("NextDue on an empty outbox = %v, %v", ok, err)
	}
	_, err = db.NextJob(ctx, now)
	wantCode(t, err, securetextd.ENOTFOUND)

	// Three messages, a second apart: jobs a, b, c.
	var ids []int64
	phones := []securetextd.Phone{"+12125550101", "+12125550102", "+12125550103"}
	for _, p := range phones {
		commitTest(t, db, &securetextd.Message{Sender: "a@example.org"}, nil, p)
		now = now.Add(time.Second)
	}
	next := func(at time.Time) (*securetextd.Job, securetextd.TextJob) {
		t.Helper()
		j, err := db.NextJob(ctx, at)
		if err != nil {
			t.Fatalf("NextJob(%v): %v", at.Sub(t0), err)
		}
		var tj securetextd.TextJob
		if err := json.Unmarshal(j.Payload, &tj); err != nil {
			t.Fatal(err)
		}
		if j.Kind != securetextd.JobKindText {
			t.Errorf("job kind %q", j.Kind)
		}
		return j, tj
	}

	// Not due before it was made.
	_, err = db.NextJob(ctx, t0.Add(-time.Nanosecond))
	wantCode(t, err, securetextd.ENOTFOUND)
	if due, ok, err := db.NextDue(ctx); !ok || err != nil || !due.Equal(t0) {
		t.Errorf("NextDue = %v, %v, %v; want %v", due, ok, err, t0)
	}

	// Oldest first; the job is not leased, so asking again gives it again.
	for range 2 {
		j, tj := next(now)
		if tj.To != phones[0] || j.Attempts != 0 || !j.Created.Equal(t0) {
			t.Fatalf("first job: %+v %+v", j, tj)
		}
	}
	for i := range 3 {
		j, _ := next(now)
		ids = append(ids, j.ID)
		if i < 2 {
			// Move it out of the way for now.
			if err := db.RetryJob(ctx, j.ID, now.Add(time.Duration(10*(i+1))*time.Minute), "busy"); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b, c := ids[0], ids[1], ids[2]

	// a retries at +10m, b at +20m; c is due now.
	if err := db.CompleteJob(ctx, c); err != nil {
		t.Fatal(err)
	}
	if due, ok, _ := db.NextDue(ctx); !ok || !due.Equal(now.Add(10*time.Minute)) {
		t.Errorf("NextDue = %v, want +10m", due.Sub(now))
	}
	_, err = db.NextJob(ctx, now.Add(9*time.Minute))
	wantCode(t, err, securetextd.ENOTFOUND)
	j, tj := next(now.Add(time.Hour))
	if j.ID != a || j.Attempts != 1 || tj.To != phones[0] {
		t.Errorf("after retries: job %d (%d attempts), want %d", j.ID, j.Attempts, a)
	}
	if err := db.FailJob(ctx, a, "number does not exist"); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		id       int64
		state    string
		attempts int
	}{{a, JobFailed, 2}, {b, JobPending, 1}, {c, JobDone, 1}} {
		state, attempts, err := db.JobState(ctx, tt.id)
		if err != nil || state != tt.state || attempts != tt.attempts {
			t.Errorf("JobState(%d) = %s, %d, %v; want %s, %d", tt.id, state, attempts, err, tt.state, tt.attempts)
		}
	}
	var reason string
	db.read.QueryRow(`SELECT last_error FROM jobs WHERE id = ?`, a).Scan(&reason)
	if reason != "number does not exist" {
		t.Errorf("last_error = %q", reason)
	}

	// Finished jobs stay finished.
	wantCode(t, db.CompleteJob(ctx, a), securetextd.ECONFLICT)
	wantCode(t, db.RetryJob(ctx, c, now, "again"), securetextd.ECONFLICT)
	wantCode(t, db.FailJob(ctx, 999, "x"), securetextd.ENOTFOUND)
	_, _, err = db.JobState(ctx, 999)
	wantCode(t, err, securetextd.ENOTFOUND)

	// Jobs survive a restart.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = OpenWith(ctx, opts, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	select {
	case <-db.Wake():
		t.Error("a new DB starts woken")
	default:
	}
	if due, ok, _ := db.NextDue(ctx); !ok || !due.Equal(t0.Add(3*time.Second+20*time.Minute)) {
		t.Errorf("NextDue after reopening = %v, %v", due, ok)
	}
	j, tj = next(now.Add(time.Hour))
	if j.ID != b || tj.To != phones[1] || j.Attempts != 1 {
		t.Errorf("after reopening: job %+v %+v", j, tj)
	}
	if err := db.CompleteJob(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.NextDue(ctx); ok {
		t.Error("a job is still pending")
	}
}

// TestWakeCoalesces checks that commits never block on an unread wake-up,
// and that one wake-up stands for any number of commits.
func TestWakeCoalesces(t *testing.T) {
	db := openTestDB(t)
	wake := db.Wake()
	for i := range 3 {
		commitTest(t, db, &securetextd.Message{Sender: "a@example.org"}, nil, securetextd.Phone("+1212555010"+string(rune('1'+i))))
	}
	<-wake
	select {
	case <-db.Wake():
		t.Error("a fresh channel from Wake is woken without a new commit")
	default:
	}
}

// TestNextJobExcept: a worker that holds jobs it could not record yet is
// handed the others, and told when they fall due.
func TestNextJobExcept(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	for _, p := range []securetextd.Phone{"+12125550101", "+12125550102", "+12125550103"} {
		commitTest(t, db, &securetextd.Message{Sender: "a@example.org"}, nil, p)
		now = now.Add(time.Second)
	}
	first, err := db.NextJob(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	j, err := db.NextJobExcept(ctx, now, []int64{first.ID}, securetextd.JobKindText)
	if err != nil || j.ID == first.ID {
		t.Fatalf("NextJobExcept(%d) = %v, %v; want another job", first.ID, j, err)
	}
	second := j.ID
	if due, ok, err := db.NextDueExcept(ctx, []int64{first.ID, second}); !ok || err != nil || !due.Equal(t0.Add(2*time.Second)) {
		t.Errorf("NextDueExcept = %v, %v, %v; want the third job's time", due, ok, err)
	}
	j, err = db.NextJobExcept(ctx, now, []int64{first.ID, second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.NextJobExcept(ctx, now, []int64{first.ID, second, j.ID})
	wantCode(t, err, securetextd.ENOTFOUND)
	if _, ok, err := db.NextDueExcept(ctx, []int64{first.ID, second, j.ID}); ok || err != nil {
		t.Errorf("NextDueExcept with every job left out = %v, %v", ok, err)
	}
}
