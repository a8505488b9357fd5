package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/sweep"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Dispatcher hands each invocation of the function to the part that
// handles its shape: the schedule's EventBridge "Scheduled Event" plans a
// sweep, an SQS event of the sweep queue sweeps its partitions, and every
// other payload goes to the tagger's handler, exactly as it would without
// the sweep. With the sweep off (no SWEEP_QUEUE_URL) everything goes to
// the handler.
type Dispatcher struct {
	// Tagger handles the KMS events.
	Tagger *tagger.Handler
	// Sweep plans and processes sweeps; nil when the sweep is off.
	Sweep *sweep.Sweeper
	// QueueURL is the sweep queue's, whose SQS events are the sweep's.
	QueueURL string
	// Log is the function's logger.
	Log *slog.Logger
}

// NewDispatcher returns the Dispatcher of h and the sweep settings read
// with getenv (config.SweepFromEnv); the sweep's coverage lines go to the
// handler's metrics (h.Metrics). It makes no network call.
func NewDispatcher(h *tagger.Handler, cfg config.Config, awsCfg aws.Config, log *slog.Logger, getenv func(string) string) (*Dispatcher, error) {
	sw, err := config.SweepFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{Tagger: h, Log: log}
	if !sw.On() {
		return d, nil
	}
	if d.Sweep, err = sweep.FromConfig(cfg, sw, awsCfg, log, h.Metrics); err != nil {
		return nil, err
	}
	d.QueueURL = sw.QueueURL
	return d, nil
}

// shape is what Handle reads of a payload to route it.
type shape struct {
	Source     string `json:"source"`
	DetailType string `json:"detail-type"`
	ID         string `json:"id"`
	Records    []struct {
		EventSource    string `json:"eventSource"`
		EventSourceARN string `json:"eventSourceARN"`
	} `json:"Records"`
}

// Handle routes one invocation.
func (d *Dispatcher) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	if d.Sweep != nil {
		var s shape
		if json.Unmarshal(raw, &s) == nil {
			switch {
			case s.Source == "aws.events" && s.DetailType == "Scheduled Event":
				return d.Sweep.Plan(ctx, s.ID)
			case d.fromQueue(s):
				var ev lambdaevents.SQSEvent
				if err := json.Unmarshal(raw, &ev); err != nil {
					return nil, fmt.Errorf("sweep: reading the SQS event: %w", err)
				}
				resp, _, err := d.Sweep.Process(ctx, ev)
				return resp, err
			}
		}
	}
	return d.Tagger.Handle(ctx, raw)
}

// fromQueue reports whether s is an SQS event whose every record comes
// from the sweep queue: arn:PARTITION:sqs:REGION:ACCOUNT:NAME of the
// queue URL's .../ACCOUNT/NAME.
func (d *Dispatcher) fromQueue(s shape) bool {
	if len(s.Records) == 0 {
		return false
	}
	parts := strings.Split(strings.TrimSuffix(d.QueueURL, "/"), "/")
	if len(parts) < 2 {
		return false
	}
	account, name := parts[len(parts)-2], parts[len(parts)-1]
	for _, r := range s.Records {
		f := strings.Split(r.EventSourceARN, ":")
		if r.EventSource != "aws:sqs" || len(f) != 6 || f[0] != "arn" || f[2] != "sqs" || f[4] != account || f[5] != name {
			return false
		}
	}
	return true
}
