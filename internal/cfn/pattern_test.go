package cfn_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/cfn"
)

// decodeObject decodes a JSON object the way the tests receive events: with
// float64 numbers.
func decodeObject(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return m
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		event   string
		want    bool
	}{
		{"exact string", `{"source":["aws.kms"]}`, `{"source":"aws.kms"}`, true},
		{"exact string differs", `{"source":["aws.kms"]}`, `{"source":"aws.ec2"}`, false},
		{"case sensitive", `{"source":["aws.kms"]}`, `{"source":"AWS.KMS"}`, false},
		{"no normalisation of spaces", `{"source":["aws.kms"]}`, `{"source":"aws.kms "}`, false},
		{"any element of the pattern array", `{"n":["CreateKey","ReplicateKey"]}`, `{"n":"ReplicateKey"}`, true},
		{"none of the pattern array", `{"n":["CreateKey","ReplicateKey"]}`, `{"n":"TagResource"}`, false},
		{"missing field fails a value match", `{"source":["aws.kms"]}`, `{"other":"aws.kms"}`, false},
		{"all fields must match", `{"a":["1"],"b":["2"]}`, `{"a":"1","b":"3"}`, false},
		{"all fields match", `{"a":["1"],"b":["2"]}`, `{"a":"1","b":"2","c":"x"}`, true},
		{"event array matches if any element matches", `{"r":["x"]}`, `{"r":["w","x","y"]}`, true},
		{"event array matches if no element matches", `{"r":["x"]}`, `{"r":["w","y"]}`, false},
		{"empty event array fails a value match", `{"r":["x"]}`, `{"r":[]}`, false},
		{"nested object", `{"detail":{"eventName":["CreateKey"]}}`, `{"detail":{"eventName":"CreateKey"}}`, true},
		{"nested object differs", `{"detail":{"eventName":["CreateKey"]}}`, `{"detail":{"eventName":"TagResource"}}`, false},
		{"nested object missing", `{"detail":{"eventName":["CreateKey"]}}`, `{"source":"aws.kms"}`, false},
		{"nested pattern against a scalar", `{"detail":{"eventName":["CreateKey"]}}`, `{"detail":"CreateKey"}`, false},
		{"nested pattern over an array of objects", `{"resources":{"type":["AWS::KMS::Key"]}}`, `{"resources":[{"type":"AWS::S3::Bucket"},{"type":"AWS::KMS::Key"}]}`, true},
		{"nested pattern over an array of objects, no match", `{"resources":{"type":["AWS::KMS::Key"]}}`, `{"resources":[{"type":"AWS::S3::Bucket"}]}`, false},
		{"number matches by value", `{"n":[300]}`, `{"n":300.0}`, true},
		{"number differs", `{"n":[300]}`, `{"n":301}`, false},
		{"number does not match its string", `{"n":[300]}`, `{"n":"300"}`, false},
		{"string does not match its number", `{"n":["300"]}`, `{"n":300}`, false},
		{"true", `{"b":[true]}`, `{"b":true}`, true},
		{"true against false", `{"b":[true]}`, `{"b":false}`, false},
		{"true against its string", `{"b":[true]}`, `{"b":"true"}`, false},
		{"null matches null", `{"r":[null]}`, `{"r":null}`, true},
		{"null does not match the empty string", `{"r":[null]}`, `{"r":""}`, false},
		{"empty string does not match null", `{"r":[""]}`, `{"r":null}`, false},
		{"empty string matches the empty string", `{"r":[""]}`, `{"r":""}`, true},
		{"null does not match a missing field", `{"r":[null]}`, `{}`, false},
		{"exists false matches a missing field", `{"detail":{"errorCode":[{"exists":false}]}}`, `{"detail":{"eventName":"CreateKey"}}`, true},
		{"exists false fails a present field", `{"detail":{"errorCode":[{"exists":false}]}}`, `{"detail":{"errorCode":"AccessDenied"}}`, false},
		{"exists false fails a null field", `{"e":[{"exists":false}]}`, `{"e":null}`, false},
		{"exists false fails an empty string", `{"e":[{"exists":false}]}`, `{"e":""}`, false},
		{"exists false matches when the parent is missing", `{"detail":{"errorCode":[{"exists":false}]}}`, `{"source":"aws.kms"}`, true},
		{"exists true matches a present field", `{"e":[{"exists":true}]}`, `{"e":"x"}`, true},
		{"exists true matches a null field", `{"e":[{"exists":true}]}`, `{"e":null}`, true},
		{"exists true fails a missing field", `{"e":[{"exists":true}]}`, `{"f":"x"}`, false},
		{"exists true fails an object: only leaves exist", `{"e":[{"exists":true}]}`, `{"e":{"f":"x"}}`, false},
		{"exists false matches an object: only leaves exist", `{"e":[{"exists":false}]}`, `{"e":{"f":"x"}}`, true},
		{"exists true fails an empty array", `{"e":[{"exists":true}]}`, `{"e":[]}`, false},
		{"exists true matches an array of values", `{"e":[{"exists":true}]}`, `{"e":["x"]}`, true},
		{"exists false or a value", `{"e":[{"exists":false},"x"]}`, `{"e":"x"}`, true},
		{"exists false or a value, neither", `{"e":[{"exists":false},"x"]}`, `{"e":"y"}`, false},
		{"prefix", `{"region":[{"prefix":"eu-"}]}`, `{"region":"eu-west-1"}`, true},
		{"prefix differs", `{"region":[{"prefix":"eu-"}]}`, `{"region":"us-east-1"}`, false},
		{"prefix against a number", `{"n":[{"prefix":"3"}]}`, `{"n":300}`, false},
		{"prefix against a missing field", `{"region":[{"prefix":"eu-"}]}`, `{}`, false},
		{"prefix, empty", `{"region":[{"prefix":""}]}`, `{"region":"us-east-1"}`, true},
		{"anything-but string", `{"s":[{"anything-but":"TagResource"}]}`, `{"s":"CreateKey"}`, true},
		{"anything-but string, same", `{"s":[{"anything-but":"TagResource"}]}`, `{"s":"TagResource"}`, false},
		{"anything-but fails a missing field", `{"s":[{"anything-but":"TagResource"}]}`, `{}`, false},
		{"anything-but list", `{"s":[{"anything-but":["TagResource","UntagResource"]}]}`, `{"s":"CreateKey"}`, true},
		{"anything-but list, listed", `{"s":[{"anything-but":["TagResource","UntagResource"]}]}`, `{"s":"UntagResource"}`, false},
		{"anything-but number", `{"n":[{"anything-but":100}]}`, `{"n":200}`, true},
		{"anything-but number, same", `{"n":[{"anything-but":100}]}`, `{"n":100.0}`, false},
		{"anything-but number list", `{"n":[{"anything-but":[100,200]}]}`, `{"n":200}`, false},
		{"anything-but prefix", `{"s":[{"anything-but":{"prefix":"init"}}]}`, `{"s":"running"}`, true},
		{"anything-but prefix, prefixed", `{"s":[{"anything-but":{"prefix":"init"}}]}`, `{"s":"initializing"}`, false},
		{"the rule's pattern, a successful CreateKey", rulePatternJSON, `{"source":"aws.kms","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"kms.amazonaws.com","eventName":"CreateKey"}}`, true},
		{"the rule's pattern, a failed CreateKey", rulePatternJSON, `{"source":"aws.kms","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"kms.amazonaws.com","eventName":"CreateKey","errorCode":"AccessDenied"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cfn.MatchPattern(decodeObject(t, tt.pattern), decodeObject(t, tt.event))
			if err != nil {
				t.Fatalf("MatchPattern(%s, %s): %v", tt.pattern, tt.event, err)
			}
			if got != tt.want {
				t.Errorf("MatchPattern(%s, %s) = %v, want %v", tt.pattern, tt.event, got, tt.want)
			}
		})
	}
}

// rulePatternJSON is the pattern template.yaml's rule is meant to have.
const rulePatternJSON = `{
	"source": ["aws.kms"],
	"detail-type": ["AWS API Call via CloudTrail"],
	"detail": {
		"eventSource": ["kms.amazonaws.com"],
		"eventName": ["CreateKey", "ReplicateKey"],
		"errorCode": [{"exists": false}]
	}
}`

func TestMatchPatternGoNumbers(t *testing.T) {
	// Patterns read from YAML hold Go integers; events decoded with
	// UseNumber hold json.Number.
	tests := []struct {
		name    string
		pattern any
		event   any
		want    bool
	}{
		{"int against float64", 5, 5.0, true},
		{"int64 against json.Number", int64(5), json.Number("5"), true},
		{"uint8 against int", uint8(7), 7, true},
		{"int against a different json.Number", 5, json.Number("5.5"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pattern := map[string]any{"n": []any{tt.pattern}}
			event := map[string]any{"n": tt.event}
			got, err := cfn.MatchPattern(pattern, event)
			if err != nil {
				t.Fatalf("MatchPattern: %v", err)
			}
			if got != tt.want {
				t.Errorf("MatchPattern(%v, %v) = %v, want %v", pattern, event, got, tt.want)
			}
		})
	}
}

func TestMatchPatternErrors(t *testing.T) {
	// The event would fail the first field; the error must come regardless.
	const event = `{"source":"aws.ec2","detail":{"n":1,"s":"x"}}`
	tests := []struct {
		name    string
		pattern string
		wantErr string
	}{
		{"empty pattern", `{}`, "empty object"},
		{"empty nested object", `{"source":["aws.kms"],"detail":{}}`, "empty object"},
		{"leaf not an array", `{"source":"aws.kms"}`, "must be an array or an object"},
		{"leaf a number", `{"source":["aws.kms"],"detail":{"n":1}}`, "must be an array or an object"},
		{"empty array", `{"source":["aws.kms"],"detail":{"s":[]}}`, "empty array"},
		{"nested array", `{"source":["aws.kms"],"detail":{"s":[["x"]]}}`, "unsupported value"},
		{"numeric", `{"source":["aws.kms"],"detail":{"n":[{"numeric":[">",0]}]}}`, `"numeric"`},
		{"suffix", `{"source":["aws.kms"],"detail":{"s":[{"suffix":".png"}]}}`, `"suffix"`},
		{"cidr", `{"source":["aws.kms"],"detail":{"s":[{"cidr":"10.0.0.0/24"}]}}`, `"cidr"`},
		{"wildcard", `{"source":["aws.kms"],"detail":{"s":[{"wildcard":"x*"}]}}`, `"wildcard"`},
		{"equals-ignore-case", `{"source":["aws.kms"],"detail":{"s":[{"equals-ignore-case":"X"}]}}`, `"equals-ignore-case"`},
		{"$or", `{"source":["aws.kms"],"$or":[{"a":["1"]},{"b":["2"]}]}`, `"$or"`},
		{"prefix with equals-ignore-case", `{"source":["aws.kms"],"detail":{"s":[{"prefix":{"equals-ignore-case":"x"}}]}}`, "prefix argument"},
		{"anything-but suffix", `{"source":["aws.kms"],"detail":{"s":[{"anything-but":{"suffix":"x"}}]}}`, "anything-but operator"},
		{"anything-but empty list", `{"source":["aws.kms"],"detail":{"s":[{"anything-but":[]}]}}`, "non-empty list"},
		{"anything-but mixed list", `{"source":["aws.kms"],"detail":{"s":[{"anything-but":["x",1]}]}}`, "only strings or only numbers"},
		{"anything-but true", `{"source":["aws.kms"],"detail":{"s":[{"anything-but":true}]}}`, "anything-but argument"},
		{"exists not a boolean", `{"source":["aws.kms"],"detail":{"s":[{"exists":"false"}]}}`, "true or false"},
		{"operator object with two keys", `{"source":["aws.kms"],"detail":{"s":[{"prefix":"a","exists":true}]}}`, "exactly one key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cfn.MatchPattern(decodeObject(t, tt.pattern), decodeObject(t, event))
			if err == nil {
				t.Fatalf("MatchPattern(%s) = %v, nil; want an error containing %q", tt.pattern, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("MatchPattern(%s) error = %q, want it to contain %q", tt.pattern, err, tt.wantErr)
			}
		})
	}
}
