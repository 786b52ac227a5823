package notify

import (
	"sync/atomic"

	"github.com/securetextd/securetextd/locale"
)

// Metrics counts what the workers do, for monitoring. cmd/securetextd
// passes a Prometheus implementation; a nil Metrics counts nothing.
type Metrics interface {
	// JobDone counts one job's outcome: kind is the job's kind ("text",
	// "reply", …), outcome "sent", "retried" or "failed".
	JobDone(kind, outcome string)
}

// Job outcomes, as Metrics counts them.
const (
	OutcomeSent    = "sent"
	OutcomeRetried = "retried"
	OutcomeFailed  = "failed"
)

func (w *worker) count(kind, outcome string) {
	if w.Metrics != nil {
		w.Metrics.JobDone(kind, outcome)
	}
}

// TextSettings are the parts of a text that may change while the worker
// runs, when the configuration is reloaded.
type TextSettings struct {
	Template *Template
	Texts    *Texts // the text per language; overrides Template
	Org      string
	Rate     float64 // texts per second; zero or less leaves it as it is
}

// LiveText holds the TextSettings a running worker uses. Set replaces
// them; the next text uses the new ones.
type LiveText struct{ p atomic.Pointer[TextSettings] }

// Set makes s the settings of the next text.
func (l *LiveText) Set(s TextSettings) { l.p.Store(&s) }

// textSettings returns the template and organization for the next text.
func (w *worker) textSettings() (*Template, string) {
	if w.Live == nil {
		return w.Template, w.Org
	}
	s := w.Live.p.Load()
	if s == nil {
		return w.Template, w.Org
	}
	tmpl, org := s.Template, s.Org
	if tmpl == nil {
		tmpl = w.Template
	}
	if org == "" {
		org = w.Org
	}
	return tmpl, org
}

// textIn returns the template of a link's text in language tag, the
// organization, and the language the text is in (tag, or the default when
// the catalogue lacks it), as reloaded last.
func (w *worker) textIn(tag string) (*Template, string, string) {
	tmpl, org := w.textSettings()
	texts := w.Texts
	if w.Live != nil {
		if s := w.Live.p.Load(); s != nil && s.Texts != nil {
			texts = s.Texts
		}
	}
	if texts == nil {
		if tag == "" {
			tag = locale.Source
		}
		return tmpl, org, tag
	}
	return texts.For(tag), org, texts.Language(tag)
}

// rate is the most texts sent per second, as reloaded last.
func (w *worker) rate() float64 {
	if w.Live != nil {
		if s := w.Live.p.Load(); s != nil && s.Rate > 0 {
			return s.Rate
		}
	}
	return w.Rate
}
