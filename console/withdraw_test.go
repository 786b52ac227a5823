package console

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestWithdrawAndDelete: another sender can neither see the confirmation
// pages of a message nor withdraw or delete it (404, and it is left as
// it was); its sender withdraws one message and deletes another, each
// after a confirmation page; the deleted one's content is gone from the
// store, and both acts are audited as the sender's. A held conversation's
// delete waits for the hold.
func TestWithdrawAndDelete(t *testing.T) {
	rg := newRig(t, RequireNone)
	ctx := t.Context()
	first := rg.send(t, drWho, "Wrong number", "WITHDRAW-MARKER", "+12125550123")
	second := rg.send(t, drWho, "Delete me", "DELETE-MARKER", "+12125550188")
	held := rg.send(t, drWho, "Held", "HELD-MARKER", "+12125550199")
	path := func(id int64, what string) string { return "/m/" + strconv.FormatInt(id, 10) + "/" + what }

	other := rg.browser(t)
	other.login(nurse)
	for _, p := range []string{path(first, "withdraw"), path(first, "delete"), path(first, "history.csv")} {
		if code, _, body := other.get(p); code != http.StatusNotFound || strings.Contains(body, "Wrong number") {
			t.Errorf("GET %s as another sender: %d", p, code)
		}
	}
	for _, p := range []string{path(first, "withdraw"), path(second, "delete")} {
		if code, _, _ := other.post(p, nil); code != http.StatusNotFound {
			t.Errorf("POST %s as another sender: %d, want 404", p, code)
		}
	}
	rows, _, _ := rg.db.SentPage(ctx, securetextd.SentQuery{Sender: drWho})
	for _, r := range rows {
		if r.State != securetextd.TextQueued {
			t.Errorf("after another sender's tries, message %d is %s", r.MessageID, r.State)
		}
	}

	doc := rg.browser(t)
	doc.login(drWho)
	code, _, body := doc.get(path(first, "withdraw"))
	if code != 200 || !strings.Contains(body, "Withdraw this message?") || !strings.Contains(body, `action="/m/`+strconv.FormatInt(first, 10)+`/withdraw"`) {
		t.Fatalf("withdraw confirmation: %d\n%s", code, body)
	}
	if _, _, body := doc.post(path(first, "withdraw"), nil); !strings.Contains(body, "Withdrawn.") || !strings.Contains(body, ">withdrawn<") {
		t.Errorf("after withdrawing:\n%s", body)
	}
	ev, err := rg.db.LastAudit(ctx, securetextd.AuditRevoked)
	if err != nil || ev == nil || ev.Actor != drWho {
		t.Errorf("withdrawal audited as %+v, %v", ev, err)
	}
	if m, _ := rg.db.Message(ctx, first); len(m.Parts) == 0 {
		t.Error("withdrawing deleted the content")
	}

	code, _, body = doc.get(path(second, "delete"))
	if code != 200 || !strings.Contains(body, "Delete this message now?") || !strings.Contains(body, "legal hold") {
		t.Fatalf("delete confirmation: %d\n%s", code, body)
	}
	if _, _, body := doc.post(path(second, "delete"), nil); !strings.Contains(body, "Deleted.") || !strings.Contains(body, ">deleted<") || strings.Contains(body, "DELETE-MARKER") {
		t.Errorf("after deleting:\n%s", body)
	}
	if m, err := rg.db.Message(ctx, second); err != nil || len(m.Parts) != 0 || m.Subject != "" {
		t.Errorf("deleted message still holds %+v, %v", m, err)
	}
	if _, _, err := rg.db.OpenPart(ctx, second, 0); err == nil {
		t.Error("a part of the deleted message still opens")
	}
	ev, err = rg.db.LastAudit(ctx, securetextd.AuditDeleted)
	if err != nil || ev == nil || ev.Actor != drWho {
		t.Errorf("deletion audited as %+v, %v", ev, err)
	}
	// Deleting again changes nothing and is no error.
	if code, _, _ := doc.post(path(second, "delete"), nil); code != 200 {
		t.Errorf("deleting again: %d", code)
	}

	heldRows, _, _ := rg.db.SentPage(ctx, securetextd.SentQuery{MessageID: held})
	if err := rg.db.PlaceHold(ctx, heldRows[0].ConversationID, "litigation", "counsel"); err != nil {
		t.Fatal(err)
	}
	if _, _, body := doc.post(path(held, "delete"), nil); !strings.Contains(body, "under legal hold") {
		t.Errorf("deleting a held message:\n%s", body)
	}
	if m, _ := rg.db.Message(ctx, held); len(m.Parts) == 0 {
		t.Error("a held message's content was deleted")
	}
}

// TestExportCSV: the Sent list and a message's access history export as
// CSV with the CLI report's columns, only the account's own rows, and no
// cell a spreadsheet would take for a formula.
func TestExportCSV(t *testing.T) {
	rg := newRig(t, RequireNone)
	mine := rg.send(t, drWho, "Blood results", "text", "+12125550123")
	rg.send(t, nurse, "Vaccination", "text", "+12125550188")

	doc := rg.browser(t)
	doc.login(drWho)
	_, _, page := doc.get("/sent?phone=2125550123")
	if !strings.Contains(page, `href="/sent.csv?phone=2125550123"`) {
		t.Errorf("Sent has no export link with its filter:\n%s", page)
	}
	rows := getCSV(t, doc, "/sent.csv")
	if len(rows) != 2 || strings.Join(rows[0], ",") != "message,conversation,sender,phone,received,state" {
		t.Fatalf("sent.csv: %q", rows)
	}
	if rows[1][0] != strconv.FormatInt(mine, 10) || rows[1][2] != drWho || rows[1][3] != "'+12125550123" || rows[1][5] != "queued" {
		t.Errorf("sent.csv row: %q", rows[1])
	}

	// A recipient's browser whose user agent is a formula.
	conv := rows[1][1]
	id, _ := strconv.ParseInt(conv, 10, 64)
	ctx := securetextd.WithOrigin(t.Context(), securetextd.Origin{Client: "203.0.113.9", UserAgent: `=HYPERLINK("http://evil.example")`})
	if err := rg.db.Audit(ctx, securetextd.AuditEvent{Event: securetextd.AuditMessageViewed, ConversationID: id, MessageID: mine}); err != nil {
		t.Fatal(err)
	}
	rows = getCSV(t, doc, "/m/"+strconv.FormatInt(mine, 10)+"/history.csv")
	if strings.Join(rows[0], ",") != "message,conversation,sender,phone,received,state,seq,time,event,actor,client,user_agent,detail" {
		t.Fatalf("history.csv header: %q", rows[0])
	}
	found := false
	for _, r := range rows[1:] {
		for _, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("a cell a spreadsheet reads as a formula: %q", cell)
			}
		}
		if r[8] == securetextd.AuditMessageViewed && r[11] == `'=HYPERLINK("http://evil.example")` {
			found = true
		}
	}
	if !found {
		t.Errorf("history.csv lacks the view: %q", rows)
	}
}

func getCSV(t *testing.T, b *browser, path string) [][]string {
	t.Helper()
	res, err := b.c.Get(b.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
