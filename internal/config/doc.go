// Package config reads the tagger's settings from environment variables,
// with defaults, into a Config. One table, Settings, lists every variable:
// it drives parsing, the CLI's help text and the template tests that check
// template.yaml gives each one a parameter.
package config
