package cfn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// lambdaLevels are the application log levels of Lambda's log-level
// filter, most detailed first (LoggingConfig.ApplicationLogLevel).
var lambdaLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// lambdaKeeps applies Lambda's documented log-level filter
// (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html)
// to one line of a function with the JSON log format: the line's level is
// its JSON "level" field, and a line that is not a JSON object or whose
// "level" is missing or invalid is INFO; Lambda sends the line when its
// level is applicationLogLevel or less detailed.
func lambdaKeeps(t testing.TB, line, applicationLogLevel string) bool {
	t.Helper()
	rank := func(level string) int { return slices.Index(lambdaLevels, strings.ToUpper(level)) }
	min := rank(applicationLogLevel)
	if min < 0 {
		t.Fatalf("ApplicationLogLevel %q is not one of Lambda's %q", applicationLogLevel, lambdaLevels)
	}
	level := "INFO"
	var rec map[string]any
	if json.Unmarshal([]byte(line), &rec) == nil {
		if l, ok := rec["level"].(string); ok && rank(l) >= 0 {
			level = l
		}
	}
	return rank(level) >= min
}

// functionOutput runs the real handler as a stack's function would run it
// and returns what it writes to stdout, line by line: the configuration is
// config.FromEnv of the environment the stack gives the function (Lambda's
// GetFunctionConfiguration), with the stand-ins' endpoints and queue in
// place of AWS's and no rate limit; the logger is the one cmd/autotagger's serveLambda makes
// (slog's JSON handler at the configured level) and the metrics are
// app.NewMetrics's, both on one stream as on the function's stdout. It
// handles a creation it tags (INFO), one whose key carries a forged
// governance tag (WARN), a malformed event it dead-letters (ERROR) and an
// event it skips (INFO).
func functionOutput(t *testing.T, st *localawstest.Stack, s *stack) (lines []string, events int) {
	t.Helper()
	deployed := s.environment(t)
	getenv := func(name string) string {
		switch name {
		case config.EnvDeadLetterQueueURL:
			return st.QueueURL
		case config.EnvTagRateLimit:
			// The stack's 1 request a second paces the calls (seconds per
			// event here) and writes nothing.
			return "0"
		}
		if v, ok := deployed[name]; ok && !strings.HasPrefix(name, "AWS_ENDPOINT_URL_") {
			return v
		}
		return ""
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		t.Fatalf("config.FromEnv of the stack's environment: %v", err)
	}
	out := &localawstest.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}))
	h, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), log)
	if err != nil {
		t.Fatalf("app.NewHandler: %v", err)
	}
	if h.Metrics, err = app.NewMetrics(out, cfg); err != nil || h.Metrics == nil {
		t.Fatalf("app.NewMetrics: %v (metrics on: %v)", err, h.Metrics != nil)
	}

	plain := st.CreateKey(t, "us-east-1")
	forged := st.CreateKey(t, "us-east-1")
	st.TagKey(t, forged, map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/mallory"})
	inputs := [][]byte{
		localawstest.CreateKeyEvent("6d1f3a2b-0000-4000-8000-000000000001", plain, nil),
		localawstest.CreateKeyEvent("6d1f3a2b-0000-4000-8000-000000000002", forged, map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/mallory"}),
		[]byte(`{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"111122223333","region":"us-east-1","detail":{"eventSource":"kms.amazonaws.com","eventName":"CreateKey","eventID":"6d1f3a2b-0000-4000-8000-000000000003","awsRegion":"us-east-1"}}`),
		[]byte(`{"version":"0","id":"y","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"111122223333","region":"us-east-1","detail":{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventID":"e","awsRegion":"us-east-1"}}`),
	}
	want := []tagger.Outcome{tagger.OutcomeTagged, tagger.OutcomeTagged, tagger.OutcomeDeadLettered, tagger.OutcomeSkipped}
	for i, in := range inputs {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, _ := h.Handle(ctx, in)
		cancel()
		if res.Outcome != want[i] {
			t.Fatalf("event %d: outcome %s (%s), want %s", i, res.Outcome, res.Reason, want[i])
		}
	}
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"), len(inputs)
}

// TestMetricLinesSurviveEveryLogLevel checks that the metrics reach
// CloudWatch whatever LogLevel is: at each of the parameter's values, the
// deployed function's real output, put through Lambda's documented filter
// with the deployed ApplicationLogLevel, keeps every Embedded Metric Format
// line (which carries no level, so Lambda takes it for INFO) and every line
// the handler's slog wrote; slog itself drops the lines below LogLevel. The
// same output under the filter the template used to ask for
// (ApplicationLogLevel = LogLevel) loses the metric lines at WARN and
// ERROR, which is the failure this guards against.
func TestMetricLinesSurviveEveryLogLevel(t *testing.T) {
	levels := translated(t, templatePath, nil).Parameters["LogLevel"].Allowed()
	if !slices.Equal(levels, []string{"DEBUG", "INFO", "WARN", "ERROR"}) {
		t.Fatalf("LogLevel AllowedValues = %q", levels)
	}
	// One set of stand-ins (local-kms, the SQS stand-in) for every level.
	st := localawstest.Start(t, localawstest.Options{})
	for _, level := range levels {
		t.Run(level, func(t *testing.T) {
			s := taggerStack(t, map[string]string{"LogLevel": level})
			logging, _ := s.probe(t, functionID)["LoggingConfig"].(map[string]any)
			if logging["LogFormat"] != "JSON" {
				t.Fatalf("LogFormat %v: the JSON format is what gives the handler's lines their level", logging["LogFormat"])
			}
			appLevel, ok := logging["ApplicationLogLevel"].(string)
			if !ok {
				t.Fatalf("LoggingConfig %v sets no ApplicationLogLevel: Lambda would filter at a level of its own choosing", logging)
			}
			lines, events := functionOutput(t, st, s)
			var metricLines, logLines, kept []string
			for _, line := range lines {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("the function wrote a line that is not JSON: %q", line)
				}
				switch {
				case rec["_aws"] != nil:
					metricLines = append(metricLines, line)
					if _, has := rec["level"]; has {
						t.Fatalf("metric line %q has a level; the test's premise is that it has none", line)
					}
				case rec["level"] != nil:
					logLines = append(logLines, line)
				default:
					t.Fatalf("line %q is neither a metric nor a log line", line)
				}
				if lambdaKeeps(t, line, appLevel) {
					kept = append(kept, line)
				}
			}
			if len(metricLines) != events {
				t.Fatalf("the handler wrote %d metric lines for %d events", len(metricLines), events)
			}
			for _, line := range metricLines {
				if !slices.Contains(kept, line) {
					t.Errorf("Lambda's filter at %s drops the metric line %.120s", appLevel, line)
				}
			}
			for _, line := range logLines {
				if !slices.Contains(kept, line) {
					t.Errorf("Lambda's filter at %s drops the handler's line %.120s", appLevel, line)
				}
				var rec struct{ Level string }
				_ = json.Unmarshal([]byte(line), &rec)
				var l slog.Level
				if err := l.UnmarshalText([]byte(rec.Level)); err != nil || l < levelOf(t, level) {
					t.Errorf("at LogLevel %s the handler wrote a %s line: slog must filter", level, rec.Level)
				}
			}
			levelsSeen := map[string]bool{}
			for _, line := range logLines {
				var rec struct{ Level string }
				_ = json.Unmarshal([]byte(line), &rec)
				levelsSeen[rec.Level] = true
			}
			if level != "ERROR" && !levelsSeen["WARN"] || !levelsSeen["ERROR"] {
				t.Errorf("log lines at %v: want the WARN (forged tag) and ERROR (dead letter) lines the events make", levelsSeen)
			}

			// The filter the template used to ask for: LogLevel's own.
			lost := 0
			for _, line := range metricLines {
				if !lambdaKeeps(t, line, level) {
					lost++
				}
			}
			if wantLost := map[string]int{"DEBUG": 0, "INFO": 0, "WARN": events, "ERROR": events}[level]; lost != wantLost {
				t.Errorf("with ApplicationLogLevel %s the filter would drop %d metric lines, want %d: the model is off", level, lost, wantLost)
			}
		})
	}
}

func levelOf(t testing.TB, s string) slog.Level {
	t.Helper()
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		t.Fatal(fmt.Errorf("level %q: %w", s, err))
	}
	return l
}
