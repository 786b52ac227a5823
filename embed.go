package securetextd

import _ "embed"

// ExampleConfig is config.example.toml: the documented configuration, and
// the default that `securetextd serve` runs on when no file is given.
//
//go:embed config.example.toml
var ExampleConfig []byte
