package config_test

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnvDefaults(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if c.Names != tagger.DefaultNames() {
		t.Errorf("names: got %+v, want %+v", c.Names, tagger.DefaultNames())
	}
	want := awskms.RetryOptions{MaxAttempts: 5, MaxBackoff: 2 * time.Second, NotFoundAttempts: 3}
	if c.Retry != want {
		t.Errorf("retry: got %+v, want %+v", c.Retry, want)
	}
	if c.DeadLetterReserve != 3*time.Second || c.LogLevel != slog.LevelInfo || c.DeadLetterQueueURL != "" || c.StaticTags != nil {
		t.Errorf("got %+v, want defaults", c)
	}
}

func TestFromEnvSettings(t *testing.T) {
	c, err := config.FromEnv(env(map[string]string{
		"DEAD_LETTER_QUEUE_URL":        "https://sqs.us-east-1.amazonaws.com/111122223333/dlq",
		"TAG_KEY_PREFIX":               "gov:",
		"TAG_NAME_CREATED_BY":          "Owner",
		"TAG_NAME_CREATED_BY_ROLE":     "-",
		"TAG_NAME_REPLICA_OF":          " - ",
		"TAG_NAME_CREATED_BY_EVIDENCE": "Evidence",
		"TAG_NAME_CREATED_BY_USER":     "Person",
		"TAG_NAME_CREATED_BY_STACK":    "-",
		"STATIC_TAGS":                  "ManagedBy=platform, Team = core ,Empty=",
		"MAX_ATTEMPTS":                 "8",
		"MAX_BACKOFF":                  "500ms",
		"NOT_FOUND_ATTEMPTS":           "2",
		"DEAD_LETTER_RESERVE":          "5s",
		"AWS_LAMBDA_LOG_LEVEL":         "DEBUG",
	}))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	wantNames := tagger.Names{CreatedBy: "Owner", CreatedAt: "CreatedAt", CreatedVia: "CreatedVia", CreationEventID: "CreationEventId", CreatedByUser: "Person", Evidence: "Evidence"}
	if c.Names != wantNames {
		t.Errorf("names: got %+v, want %+v", c.Names, wantNames)
	}
	wantStatic := []tagger.Tag{{Key: "ManagedBy", Value: "platform"}, {Key: "Team", Value: "core"}, {Key: "Empty", Value: ""}}
	if !reflect.DeepEqual(c.StaticTags, wantStatic) {
		t.Errorf("static: got %v, want %v", c.StaticTags, wantStatic)
	}
	if c.Retry != (awskms.RetryOptions{MaxAttempts: 8, MaxBackoff: 500 * time.Millisecond, NotFoundAttempts: 2}) || c.DeadLetterReserve != 5*time.Second {
		t.Errorf("retry: got %+v reserve %v", c.Retry, c.DeadLetterReserve)
	}
	if c.LogLevel != slog.LevelDebug {
		t.Errorf("log level: got %v, want DEBUG from AWS_LAMBDA_LOG_LEVEL", c.LogLevel)
	}
	p, err := c.Policy()
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	if got, want := p.Keys(), []string{"gov:Owner", "gov:CreatedAt", "gov:CreationEventId", "gov:CreatedVia", "gov:Person", "gov:Evidence", "ManagedBy", "Team", "Empty"}; !reflect.DeepEqual(got, want) {
		t.Errorf("keys: got %v, want %v", got, want)
	}
}

func TestFromEnvErrors(t *testing.T) {
	_, err := config.FromEnv(env(map[string]string{
		"MAX_ATTEMPTS":   "zero",
		"MAX_BACKOFF":    "-1s",
		"STATIC_TAGS":    "novalue",
		"LOG_LEVEL":      "LOUD",
		"TAG_KEY_PREFIX": "aws:",
	}))
	if err == nil {
		t.Fatal("got no error, want one per bad setting")
	}
	for _, want := range []string{"MAX_ATTEMPTS", "MAX_BACKOFF", "STATIC_TAGS", "LOG_LEVEL", "reserved prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestSettingsAreDocumented(t *testing.T) {
	help := config.Help()
	for _, s := range config.Settings {
		if !strings.Contains(help, s.Env) || s.Help == "" {
			t.Errorf("setting %s missing from help", s.Env)
		}
	}
}

func TestCrossAccountSettings(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantRole     string
		wantPath     string
		wantExternal string
		wantHome     string
		wantCross    bool
	}{
		{"defaults: off", nil, "", "/kms-autotagger/", "", "", false},
		{
			"member role with external id",
			map[string]string{"MEMBER_ROLE_NAME": " kms-autotagger-member ", "MEMBER_ROLE_EXTERNAL_ID": "org-o-a1b2c3d4e5"},
			"kms-autotagger-member", "/kms-autotagger/", "org-o-a1b2c3d4e5", "", true,
		},
		{
			"member role with a path and the home account",
			map[string]string{"MEMBER_ROLE_NAME": "tagger", "MEMBER_ROLE_PATH": "/governance/", "HOME_ACCOUNT_ID": "111122223333"},
			"tagger", "/governance/", "", "111122223333", true,
		},
		{"home account only: foreign keys refused", map[string]string{"HOME_ACCOUNT_ID": "111122223333"}, "", "/kms-autotagger/", "", "111122223333", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.FromEnv(env(tt.env))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if c.MemberRoleName != tt.wantRole || c.MemberRolePath != tt.wantPath || c.MemberExternalID != tt.wantExternal || c.HomeAccountID != tt.wantHome {
				t.Errorf("got role %q path %q external id %q home %q, want %q %q %q %q",
					c.MemberRoleName, c.MemberRolePath, c.MemberExternalID, c.HomeAccountID, tt.wantRole, tt.wantPath, tt.wantExternal, tt.wantHome)
			}
			if got := c.CrossAccount(); got != tt.wantCross {
				t.Errorf("CrossAccount() = %v, want %v", got, tt.wantCross)
			}
		})
	}
}

// TestExternalIDNeverPrinted: the member role's External ID is a shared
// secret; a bad one is refused without quoting it.
func TestExternalIDNeverPrinted(t *testing.T) {
	const secret = "s3cret value"
	_, err := config.FromEnv(env(map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_EXTERNAL_ID": secret}))
	if err == nil || !strings.Contains(err.Error(), "MEMBER_ROLE_EXTERNAL_ID") {
		t.Fatalf("got %v, want an error naming MEMBER_ROLE_EXTERNAL_ID", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("got %q, which prints the External ID", err)
	}
}

func TestCrossAccountSettingErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"role name with a slash", map[string]string{"MEMBER_ROLE_NAME": "path/role"}, "MEMBER_ROLE_NAME"},
		{"role name too long", map[string]string{"MEMBER_ROLE_NAME": strings.Repeat("r", 65)}, "MEMBER_ROLE_NAME"},
		{"path without slashes", map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_PATH": "governance"}, "MEMBER_ROLE_PATH"},
		{"path without the closing slash", map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_PATH": "/governance"}, "MEMBER_ROLE_PATH"},
		{"path with a wildcard", map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_PATH": "/*/"}, "MEMBER_ROLE_PATH"},
		{"path with a one-character wildcard", map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_PATH": "/gov?rnance/"}, "MEMBER_ROLE_PATH"},
		{"path with an empty segment", map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_PATH": "/a//b/"}, "MEMBER_ROLE_PATH"},
		{"tagger role path of every role", map[string]string{"TAGGER_ROLE_PATH": "/"}, "TAGGER_ROLE_PATH"},
		{"tagger role path with a wildcard", map[string]string{"TAGGER_ROLE_PATH": "/kms-autotagger*/"}, "TAGGER_ROLE_PATH"},
		{"external id with a space", map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_EXTERNAL_ID": "a b"}, "MEMBER_ROLE_EXTERNAL_ID"},
		{"external id of one character", map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_EXTERNAL_ID": "a"}, "MEMBER_ROLE_EXTERNAL_ID"},
		{"external id too long", map[string]string{"MEMBER_ROLE_NAME": "r", "MEMBER_ROLE_EXTERNAL_ID": strings.Repeat("e", 1225)}, "MEMBER_ROLE_EXTERNAL_ID"},
		{"external id without a role", map[string]string{"MEMBER_ROLE_EXTERNAL_ID": "org-secret"}, "MEMBER_ROLE_NAME is empty"},
		{"home account of 11 digits", map[string]string{"HOME_ACCOUNT_ID": "11112222333"}, "HOME_ACCOUNT_ID"},
		{"home account with letters", map[string]string{"HOME_ACCOUNT_ID": "11112222333x"}, "HOME_ACCOUNT_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.FromEnv(env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one naming %s", err, tt.want)
			}
		})
	}
	long := map[string]string{"MEMBER_ROLE_NAME": strings.Repeat("r", 64), "MEMBER_ROLE_EXTERNAL_ID": strings.Repeat("e", 1224), "MEMBER_ROLE_PATH": "/a/b/"}
	if _, err := config.FromEnv(env(long)); err != nil {
		t.Errorf("longest valid values: got %v, want no error", err)
	}
}

func TestFromEnvTamperRepairAndMetrics(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TamperRepair || c.TaggerRoleARN != "" || c.MetricsNamespace != "KMSAutoTagger" {
		t.Errorf("defaults: got repair %v role %q namespace %q, want true, empty, KMSAutoTagger", c.TamperRepair, c.TaggerRoleARN, c.MetricsNamespace)
	}
	c, err = config.FromEnv(env(map[string]string{
		"TAMPER_REPAIR": "FALSE", "TAGGER_ROLE_ARN": "arn:aws:iam::111122223333:role/service-role/tagger", "METRICS_NAMESPACE": "-",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TamperRepair || c.TaggerRoleARN != "arn:aws:iam::111122223333:role/service-role/tagger" || c.MetricsNamespace != "" {
		t.Errorf("got repair %v role %q namespace %q, want false, the role, metrics off", c.TamperRepair, c.TaggerRoleARN, c.MetricsNamespace)
	}
	_, err = config.FromEnv(env(map[string]string{"TAMPER_REPAIR": "sometimes", "TAGGER_ROLE_ARN": "arn:aws:iam::111122223333:user/x", "METRICS_NAMESPACE": "AWS/KMS"}))
	for _, want := range []string{"TAMPER_REPAIR", "TAGGER_ROLE_ARN", "METRICS_NAMESPACE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got error %v, want one naming %s", err, want)
		}
	}
}

// TestLambdaLogLevels: with LOG_LEVEL empty the function takes Lambda's own
// level, whose TRACE and FATAL slog lacks.
func TestLambdaLogLevels(t *testing.T) {
	for _, tt := range []struct {
		lambda string
		want   slog.Level
	}{
		{"TRACE", slog.LevelDebug},
		{"DEBUG", slog.LevelDebug},
		{"WARN", slog.LevelWarn},
		{"FATAL", slog.LevelError},
	} {
		c, err := config.FromEnv(env(map[string]string{"AWS_LAMBDA_LOG_LEVEL": tt.lambda}))
		if err != nil {
			t.Fatalf("AWS_LAMBDA_LOG_LEVEL=%s: %v", tt.lambda, err)
		}
		if c.LogLevel != tt.want {
			t.Errorf("AWS_LAMBDA_LOG_LEVEL=%s: got %v, want %v", tt.lambda, c.LogLevel, tt.want)
		}
	}
}

// TestStackLookupSettings: the CreatedByUser and CreatedByStack tags are on
// by default, and the lookups behind them are bounded in time and rate.
func TestStackLookupSettings(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if c.Names.CreatedByUser != "CreatedByUser" || c.Names.CreatedByStack != "CreatedByStack" {
		t.Errorf("names: got %+v, want CreatedByUser and CreatedByStack on", c.Names)
	}
	if c.StackLookupTimeout != 10*time.Second || c.StackLookupRateLimit != 1 {
		t.Errorf("got timeout %v rate %v, want 10s and 1", c.StackLookupTimeout, c.StackLookupRateLimit)
	}
	c, err = config.FromEnv(env(map[string]string{
		"STACK_LOOKUP_TIMEOUT": "2500ms", "STACK_LOOKUP_RATE_LIMIT": "0",
		"TAG_NAME_CREATED_BY_USER": "-", "TAG_NAME_CREATED_BY_STACK": "Stack",
	}))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if c.StackLookupTimeout != 2500*time.Millisecond || c.StackLookupRateLimit != 0 || c.Names.CreatedByUser != "" || c.Names.CreatedByStack != "Stack" {
		t.Errorf("got %+v, want the values set", c)
	}
	_, err = config.FromEnv(env(map[string]string{
		"STACK_LOOKUP_TIMEOUT": "soon", "STACK_LOOKUP_RATE_LIMIT": "-1", "TAG_NAME_CREATED_BY_USER": "createdby",
	}))
	for _, want := range []string{"STACK_LOOKUP_TIMEOUT", "STACK_LOOKUP_RATE_LIMIT", "differ only in case"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: want it to name %s", err, want)
		}
	}
}

func TestSplitList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"a", []string{"a"}},
		{" b , a ,b,, c ", []string{"b", "a", "c"}},
	} {
		if got := config.SplitList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitList(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
