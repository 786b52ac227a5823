package portal

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// Vonage delivery receipts (DLRs) arrive at POST /hooks/vonage/dlr, as a
// form or as JSON (the dashboard's "POST" and "POST-JSON" methods), with
// Vonage's fields: msisdn, to, network-code, messageId, price, status,
// err-code, message-timestamp, client-ref, and, when signed, timestamp
// and sig. Each finds its text by client-ref (the outbox job id the
// gateway passed when it sent the text) or by messageId, and records it:
//
//	delivered                  delivered
//	failed, rejected, expired  failed: the sender gets an email saying so
//	accepted, buffered, unknown  nothing yet
//
// Signatures: with a signature secret (sms.vonage.signature_secret), every
// receipt must carry a valid sig, computed as Vonage documents for signed
// SMS API requests: the parameters but sig, sorted by name, each written
// "&name=value" with "&" and "=" in values replaced by "_"; then the
// HMAC of that text keyed with the secret (md5, sha1, sha256, sha512),
// uppercase hex, or for the legacy "md5hash" method the MD5 of the text
// followed by the secret, lowercase hex. The case of the hex is ignored.
// Without a secret, receipts are taken unsigned only on a portal that is
// not HTTPS (development on loopback); a production portal refuses them,
// since anyone could then mark any text failed and mail its sender.
//
// Answers: 204 when the receipt was taken (or is about a text the gateway
// does not know: Vonage would otherwise retry it for a day), 400 for a
// malformed receipt, 401 for a bad signature, 403 for an unsigned one
// where signatures are required, 500 when the store failed (Vonage
// retries).

// Bounds of a delivery receipt: it is a few hundred bytes.
const (
	maxHookBytes  = 16 << 10
	maxHookParams = 64
	maxHookValue  = 512
	// hookSkew bounds how far a signed receipt's timestamp may be from
	// now. Recording a receipt twice changes nothing, so this only keeps
	// a captured receipt from being replayed for ever.
	hookSkew = 24 * time.Hour
)

// Signature methods of Vonage's dashboard.
var vonageMethods = map[string]func() hash.Hash{
	"md5":    md5.New,
	"sha1":   sha1.New,
	"sha256": sha256.New,
	"sha512": sha512.New,
}

// ValidVonageSignatureMethod reports whether m is a signature method the
// portal can check: "md5hash", or the HMAC "md5", "sha1", "sha256",
// "sha512".
func ValidVonageSignatureMethod(m string) bool {
	_, ok := vonageMethods[m]
	return ok || m == "md5hash"
}

// handleVonageDLR records a Vonage delivery receipt.
func (s *Server) handleVonageDLR(w http.ResponseWriter, r *http.Request) {
	if s.life == nil {
		s.handleNotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxHookBytes)
	params, err := hookParams(r)
	if err != nil {
		s.logger.Warn("vonage dlr: unreadable", "addr", clientKey(r), "err", err)
		http.Error(w, "unreadable delivery receipt", http.StatusBadRequest)
		return
	}
	switch {
	case s.cfg.VonageSignatureSecret != "":
		if err := checkVonageSignature(params, s.cfg.VonageSignatureSecret, s.cfg.VonageSignatureMethod, time.Now()); err != nil {
			s.logger.Warn("vonage dlr: signature refused", "addr", clientKey(r), "err", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
	case s.cfg.Secure:
		s.logger.Warn("vonage dlr: unsigned receipt refused: set sms.vonage.signature_secret", "addr", clientKey(r))
		http.Error(w, "unsigned delivery receipts are refused", http.StatusForbidden)
		return
	}
	report, err := parseDLR(params)
	if err != nil {
		s.logger.Warn("vonage dlr: refused", "addr", clientKey(r), "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o := securetextd.OriginFrom(r.Context())
	o.Actor = "vonage"
	err = s.life.RecordDelivery(securetextd.WithOrigin(r.Context(), o), report)
	switch securetextd.ErrorCode(err) {
	case "":
		s.logger.Info("vonage dlr", "status", report.Status, "err_code", report.ErrCode)
	case securetextd.ENOTFOUND:
		s.logger.Warn("vonage dlr: unknown text", "message_id", report.ProviderID, "ref", report.Ref, "status", report.Status)
	default:
		s.logger.Error("vonage dlr", "err", err)
		http.Error(w, "try again later", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// hookParams reads a receipt's parameters from a JSON object of strings
// (numbers are taken as written) or a form body. A name given twice, too
// many names, or a value too long is refused.
func hookParams(r *http.Request) (map[string]string, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	params := make(map[string]string)
	if mt == "application/json" {
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, errors.New("json: data after the object")
		}
		for k, v := range raw {
			switch v := v.(type) {
			case string:
				params[k] = v
			case json.Number:
				params[k] = v.String()
			case bool:
				params[k] = strconv.FormatBool(v)
			case nil:
				params[k] = ""
			default:
				return nil, fmt.Errorf("json: %q is not a string", k)
			}
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, vs := range r.PostForm {
			if len(vs) != 1 {
				return nil, fmt.Errorf("%q is given %d times", k, len(vs))
			}
			params[k] = vs[0]
		}
	}
	if len(params) > maxHookParams {
		return nil, fmt.Errorf("%d parameters", len(params))
	}
	for k, v := range params {
		if len(k) > 64 || len(v) > maxHookValue {
			return nil, fmt.Errorf("parameter %.64q is too long", k)
		}
	}
	return params, nil
}

// parseDLR reads a Vonage delivery receipt.
func parseDLR(p map[string]string) (securetextd.DeliveryReport, error) {
	r := securetextd.DeliveryReport{
		ProviderID: p["messageId"],
		Ref:        p["client-ref"],
		Status:     strings.ToLower(p["status"]),
		ErrCode:    p["err-code"],
	}
	if r.ProviderID == "" && r.Ref == "" {
		return r, errors.New("no messageId and no client-ref")
	}
	for _, v := range []string{r.ProviderID, r.Ref, r.ErrCode} {
		if strings.ContainsFunc(v, func(c rune) bool { return c <= ' ' || c > '~' }) {
			return r, errors.New("messageId, client-ref and err-code must be printable ASCII")
		}
	}
	switch r.Status {
	case "delivered":
		r.Delivered = true
	case "failed", "rejected", "expired":
		r.Failed = true
	case "accepted", "buffered", "unknown":
	default:
		return r, fmt.Errorf("unknown status %.32q", r.Status)
	}
	if len(r.ErrCode) > 16 {
		return r, errors.New("err-code is too long")
	}
	return r, nil
}

// checkVonageSignature checks the sig of params with secret, by method
// ("" is "sha256"), and that its timestamp is within hookSkew of now.
func checkVonageSignature(params map[string]string, secret, method string, now time.Time) error {
	sig := params["sig"]
	if sig == "" {
		return errors.New("unsigned")
	}
	want, err := vonageSignature(params, secret, method)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(sig)), []byte(want)) != 1 {
		return errors.New("signature does not match")
	}
	ts, err := strconv.ParseInt(params["timestamp"], 10, 64)
	if err != nil {
		return errors.New("signed without a timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > hookSkew || d < -hookSkew {
		return fmt.Errorf("timestamp %d is too far from now", ts)
	}
	return nil
}

// vonageSignature computes the signature of params (sig left out), in
// lowercase hex.
func vonageSignature(params map[string]string, secret, method string) (string, error) {
	if method == "" {
		method = "sha256"
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "sig" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	clean := strings.NewReplacer("&", "_", "=", "_")
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("&" + k + "=" + clean.Replace(params[k]))
	}
	if method == "md5hash" {
		sum := md5.Sum([]byte(b.String() + secret))
		return hex.EncodeToString(sum[:]), nil
	}
	h, ok := vonageMethods[method]
	if !ok {
		return "", fmt.Errorf("unknown signature method %q", method)
	}
	mac := hmac.New(h, []byte(secret))
	mac.Write([]byte(b.String()))
	return hex.EncodeToString(mac.Sum(nil)), nil
}
