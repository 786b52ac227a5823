package main

import (
	"fmt"
	"strings"

	"github.com/securetextd/securetextd/locale"
	"github.com/securetextd/securetextd/notify"
)

// The patient's language (locale/, portal/language.go):
// portal.default_language is the language of a browser that asks for none
// the catalogue has, and of the texts and emails of an account that chose
// none and whose sender said none; sms.templates gives the text of a
// link's SMS per language, beside sms.template.

func languageDefaults(c *Config) {
	c.Portal.DefaultLanguage = locale.Source
}

// validateLanguage checks that portal.default_language has a catalogue,
// and that every sms.templates entry names one and parses.
func (c *Config) validateLanguage() []string {
	var p []string
	cat, err := locale.Load()
	if err != nil {
		return []string{fmt.Sprintf("the language catalogue: %v", err)}
	}
	var tags []string
	for _, l := range cat.Languages() {
		tags = append(tags, fmt.Sprintf("%q", l.Tag))
	}
	if !cat.Has(c.Portal.DefaultLanguage) {
		p = append(p, fmt.Sprintf("portal.default_language: %q is not a language of the portal: use one of %s",
			c.Portal.DefaultLanguage, strings.Join(tags, ", ")))
	}
	for tag, text := range c.SMS.Templates {
		if !cat.Has(tag) {
			p = append(p, fmt.Sprintf("sms.templates.%s: %q is not a language of the portal: use one of %s", tag, tag, strings.Join(tags, ", ")))
			continue
		}
		if _, err := notify.ParseTemplate(text); err != nil {
			p = append(p, fmt.Sprintf("sms.templates.%s: %v", tag, err))
		}
	}
	return p
}

// smsTexts builds the texts of a link's SMS from the config.
func (c *Config) smsTexts() (*notify.Texts, error) {
	return notify.NewTexts(c.SMS.Template, c.SMS.Templates, c.Portal.DefaultLanguage)
}

// doctorTexts says, for each language, how many segments the link's text
// takes and in which encoding (an accent GSM-7 lacks makes it UCS-2), and
// warns where a text takes more than one.
func doctorTexts(cfg Config, line func(level, what, detail string)) {
	texts, err := cfg.smsTexts()
	if err != nil {
		line("FAIL", "sms.template", err.Error())
		return
	}
	segments, warnings := texts.Check(cfg.Org(), cfg.Portal.PublicURL)
	level := "ok"
	if len(warnings) > 0 {
		level = "warn"
	}
	line(level, "sms texts", strings.Join(segments, "; "))
	for _, w := range warnings {
		line("warn", "sms texts", w)
	}
}
