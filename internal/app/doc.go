// Package app builds the tagger's parts from a config.Config: the AWS
// configuration, the per-region KMS clients with their retryer, the
// dead-letter queue and the handler. The Lambda entry point and the CLI both
// use it, so they run exactly the same handler.
package app
