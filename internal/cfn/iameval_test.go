package cfn_test

import (
	"regexp"
	"strings"
	"testing"
)

// The stand-ins enforce no IAM policy: moto's IAM, SQS, KMS and
// Organizations store the policies the stacks make but do not evaluate them
// (moto can, for IAM identity policies only, and not for service control
// policies, key policies or queue policies). The attack tests therefore
// evaluate the deployed statements themselves, with evalPolicy: the test's
// reading of IAM's documented policy evaluation
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
// and the condition operators of reference_policies_elements_condition_operators.html),
// for the statement shapes the templates use and nothing more:
//
//   - An explicit Deny that matches wins; else an Allow that matches allows;
//     else the request is implicitly denied.
//   - A statement matches when its Action, Resource, Principal (resource
//     policies) and every condition match. Action names ignore case;
//     Action and Resource take * and ? wildcards.
//   - Within a condition operator every key must hold, and a key holds when
//     the request's value matches any of the policy's values. Operators:
//     String(Not)Equals(IgnoreCase), String(Not)Like, Arn(Not)Equals,
//     Arn(Not)Like (each of the six colon-separated parts matched apart, with
//     wildcards), Bool, Null, each with IfExists and the set prefixes
//     ForAnyValue: and ForAllValues:.
//   - A key missing from the request makes a negated operator (…Not…) and
//     an IfExists operator true, and any other false; ForAllValues: of a
//     missing key is true, ForAnyValue: false. Null tests presence.
//   - Condition key names ignore case. A policy variable ${key} in a
//     condition value is the request's single value of key; a value whose
//     variable the request lacks matches nothing.
//
// Anything else in a statement (NotAction, NotResource, NotPrincipal, an
// operator not listed) fails the test rather than being guessed at.
type request struct {
	action   string
	resource string
	// principalARN is the IAM principal (for a role session, the role's
	// ARN, as aws:PrincipalArn has it); service is an AWS service
	// principal instead, such as events.amazonaws.com.
	principalARN string
	service      string
	// keys are the request context's condition keys, by name (any case);
	// a single-valued key has one value. aws:PrincipalArn and
	// aws:PrincipalAccount are set from principalARN.
	keys map[string][]string
}

// decision is the outcome of evaluating statements for a request.
type decision string

const (
	explicitDeny decision = "explicit deny"
	allowed      decision = "allowed"
	implicitDeny decision = "implicit deny"
)

// context returns the request's condition keys with lower-case names and
// the principal's keys filled in.
func (r request) context() map[string][]string {
	ctx := map[string][]string{}
	for k, v := range r.keys {
		ctx[strings.ToLower(k)] = v
	}
	if r.principalARN != "" {
		ctx["aws:principalarn"] = []string{r.principalARN}
		if parts := strings.SplitN(r.principalARN, ":", 6); len(parts) == 6 {
			ctx["aws:principalaccount"] = []string{parts[4]}
		}
	}
	return ctx
}

// evalPolicy evaluates statements for req (see above). resourcePolicy
// says the statements are a resource's policy, whose statements name a
// Principal.
func evalPolicy(t testing.TB, stmts []statement, req request, resourcePolicy bool) decision {
	t.Helper()
	ctx := req.context()
	allow := false
	for _, stmt := range stmts {
		if !statementMatches(t, stmt, req, ctx, resourcePolicy) {
			continue
		}
		switch stmt["Effect"] {
		case "Deny":
			return explicitDeny
		case "Allow":
			allow = true
		default:
			t.Fatalf("statement %v: Effect %v", stmt["Sid"], stmt["Effect"])
		}
	}
	if allow {
		return allowed
	}
	return implicitDeny
}

func statementMatches(t testing.TB, stmt statement, req request, ctx map[string][]string, resourcePolicy bool) bool {
	t.Helper()
	for k := range stmt {
		switch k {
		case "Sid", "Effect", "Action", "Resource", "Condition":
		case "Principal":
			if !resourcePolicy {
				t.Fatalf("statement %v of an identity policy has a Principal", stmt["Sid"])
			}
		default:
			t.Fatalf("statement %v has %s, which evalPolicy does not read", stmt["Sid"], k)
		}
	}
	actions, ok := stringList(stmt["Action"])
	if !ok || !anyMatch(actions, req.action, true) {
		return false
	}
	// A role's trust policy names no Resource: it is the role's.
	if _, named := stmt["Resource"]; named || !resourcePolicy {
		resources, ok := stringList(stmt["Resource"])
		if !ok || !anyMatch(resources, req.resource, false) {
			return false
		}
	}
	if resourcePolicy && !principalMatches(t, stmt, req) {
		return false
	}
	cond, _ := stmt["Condition"].(map[string]any)
	if stmt["Condition"] != nil && cond == nil {
		t.Fatalf("statement %v: Condition %#v", stmt["Sid"], stmt["Condition"])
	}
	for op, v := range cond {
		keys, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("statement %v: condition %s = %#v", stmt["Sid"], op, v)
		}
		for key, want := range keys {
			values, ok := stringList(want)
			if !ok {
				t.Fatalf("statement %v: condition %s %s = %#v", stmt["Sid"], op, key, want)
			}
			if !conditionHolds(t, op, values, ctx, strings.ToLower(key)) {
				return false
			}
		}
	}
	return true
}

func principalMatches(t testing.TB, stmt statement, req request) bool {
	t.Helper()
	switch p := stmt["Principal"].(type) {
	case string:
		if p != "*" {
			t.Fatalf("statement %v: Principal %q", stmt["Sid"], p)
		}
		return true
	case map[string]any:
		for kind, v := range p {
			names, ok := stringList(v)
			if !ok {
				t.Fatalf("statement %v: Principal %s = %#v", stmt["Sid"], kind, v)
			}
			for _, n := range names {
				switch kind {
				case "Service":
					if req.service != "" && n == req.service {
						return true
					}
				case "AWS":
					account, isAccount := strings.CutSuffix(n, ":root")
					if n == "*" || (req.principalARN != "" && (n == req.principalARN ||
						isAccount && strings.HasPrefix(req.principalARN, account+":"))) {
						return true
					}
				default:
					t.Fatalf("statement %v: Principal %s", stmt["Sid"], kind)
				}
			}
		}
		return false
	}
	t.Fatalf("statement %v of a resource policy: Principal %#v", stmt["Sid"], stmt["Principal"])
	return false
}

// conditionOperator is one operator as written: its set prefix, base and
// IfExists.
var conditionOperator = regexp.MustCompile(`^(ForAnyValue:|ForAllValues:)?(StringEquals|StringNotEquals|StringEqualsIgnoreCase|StringNotEqualsIgnoreCase|StringLike|StringNotLike|ArnEquals|ArnNotEquals|ArnLike|ArnNotLike|Bool|Null)(IfExists)?$`)

func conditionHolds(t testing.TB, op string, policyValues []string, ctx map[string][]string, key string) bool {
	t.Helper()
	m := conditionOperator.FindStringSubmatch(op)
	if m == nil {
		t.Fatalf("condition operator %q: evalPolicy does not read it", op)
	}
	set, base, ifExists := m[1], m[2], m[3] != ""
	got, present := ctx[key]
	if base == "Null" {
		if len(policyValues) != 1 {
			t.Fatalf("Null %s: %q", key, policyValues)
		}
		return strings.EqualFold(policyValues[0], "true") == !present
	}
	negated := strings.Contains(base, "Not")
	single := func(v string) bool {
		matched := false
		for _, pv := range policyValues {
			pv, ok := substitute(pv, ctx)
			if ok && valueMatches(t, base, pv, v) {
				matched = true
				break
			}
		}
		if negated {
			return !matched
		}
		return matched
	}
	switch set {
	case "ForAllValues:":
		for _, v := range got {
			if !single(v) {
				return false
			}
		}
		return true
	case "ForAnyValue:":
		for _, v := range got {
			if single(v) {
				return true
			}
		}
		return false
	}
	if !present {
		return negated || ifExists
	}
	if len(got) != 1 {
		t.Fatalf("condition %s on the multivalued key %s: use ForAnyValue: or ForAllValues:", op, key)
	}
	return single(got[0])
}

// policyVariable is one ${key} in a condition value.
var policyVariable = regexp.MustCompile(`\$\{([^}]+)\}`)

// substitute resolves the policy variables of v from ctx; ok is false when
// the request lacks one.
func substitute(v string, ctx map[string][]string) (string, bool) {
	ok := true
	out := policyVariable.ReplaceAllStringFunc(v, func(m string) string {
		vals := ctx[strings.ToLower(m[2:len(m)-1])]
		if len(vals) != 1 {
			ok = false
			return m
		}
		return vals[0]
	})
	return out, ok
}

func valueMatches(t testing.TB, base, policyValue, v string) bool {
	t.Helper()
	switch base {
	case "StringEquals", "StringNotEquals":
		return policyValue == v
	case "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase":
		return strings.EqualFold(policyValue, v)
	case "StringLike", "StringNotLike":
		return glob(policyValue, v, false)
	case "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike":
		pp, vp := strings.SplitN(policyValue, ":", 6), strings.SplitN(v, ":", 6)
		if len(pp) != 6 || len(vp) != 6 {
			return false
		}
		for i := range pp {
			if !glob(pp[i], vp[i], false) {
				return false
			}
		}
		return true
	case "Bool":
		return strings.EqualFold(policyValue, v)
	}
	t.Fatalf("operator %s", base)
	return false
}

// anyMatch reports whether v matches any of patterns, with * and ?
// wildcards; foldCase for action names.
func anyMatch(patterns []string, v string, foldCase bool) bool {
	for _, p := range patterns {
		if glob(p, v, foldCase) {
			return true
		}
	}
	return false
}

// glob matches v against pattern, where * is any run of characters
// (slashes and colons included) and ? one character.
func glob(pattern, v string, foldCase bool) bool {
	if foldCase {
		pattern, v = strings.ToLower(pattern), strings.ToLower(v)
	}
	p, s := []rune(pattern), []rune(v)
	// The classic backtracking match: star is the last * seen, and mark
	// the position of s it was tried at.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// TestPolicyEvaluator checks evalPolicy's reading on cases IAM's
// documentation spells out, so that the attack tests rest on it.
func TestPolicyEvaluator(t *testing.T) {
	role := "arn:aws:iam::111122223333:role/kms-autotagger/tagger"
	deny := statement{
		"Effect": "Deny", "Action": []any{"kms:TagResource"}, "Resource": "*",
		"Condition": map[string]any{
			"ForAnyValue:StringEqualsIgnoreCase": map[string]any{"aws:TagKeys": []any{"CreatedBy"}},
			"ArnNotLike":                         map[string]any{"aws:PrincipalArn": []any{"arn:aws:iam::${aws:PrincipalAccount}:role/kms-autotagger/*"}},
		},
	}
	allow := statement{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:*:111122223333:key/*"}
	key := "arn:aws:kms:us-east-1:111122223333:key/k"
	tests := []struct {
		name string
		req  request
		want decision
	}{
		{"an exempt principal", request{action: "kms:TagResource", resource: key, principalARN: role, keys: map[string][]string{"aws:TagKeys": {"CreatedBy"}}}, allowed},
		{"another principal, the key", request{action: "kms:TagResource", resource: key, principalARN: "arn:aws:iam::111122223333:role/Admin", keys: map[string][]string{"aws:TagKeys": {"Team", "CreatedBy"}}}, explicitDeny},
		{"another principal, a case variant", request{action: "kms:tagresource", resource: key, principalARN: "arn:aws:iam::111122223333:role/Admin", keys: map[string][]string{"aws:TagKeys": {"createdby"}}}, explicitDeny},
		{"another principal, other keys", request{action: "kms:TagResource", resource: key, principalARN: "arn:aws:iam::111122223333:role/Admin", keys: map[string][]string{"aws:TagKeys": {"Team"}}}, allowed},
		{"the path in another account's role name", request{action: "kms:TagResource", resource: key, principalARN: "arn:aws:iam::111122223333:role/x/kms-autotagger/tagger", keys: map[string][]string{"aws:TagKeys": {"CreatedBy"}}}, explicitDeny},
		{"another account's key", request{action: "kms:TagResource", resource: "arn:aws:kms:us-east-1:444455556666:key/k", principalARN: "arn:aws:iam::111122223333:role/Admin"}, implicitDeny},
	}
	for _, tt := range tests {
		if got := evalPolicy(t, []statement{allow, deny}, tt.req, false); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
	// Missing keys: a negated operator holds, others and ForAnyValue do
	// not, ForAllValues does; Null tests presence.
	ctx := request{keys: map[string][]string{"aws:SecureTransport": {"false"}}}.context()
	for _, c := range []struct {
		op   string
		vals []string
		key  string
		want bool
	}{
		{"ArnNotEquals", []string{"arn:aws:iam::1:role/r"}, "aws:sourcearn", true},
		{"ArnEquals", []string{"arn:aws:iam::1:role/r"}, "aws:sourcearn", false},
		{"ArnEqualsIfExists", []string{"arn:aws:iam::1:role/r"}, "aws:sourcearn", true},
		{"ForAnyValue:StringEquals", []string{"a"}, "aws:tagkeys", false},
		{"ForAllValues:StringEquals", []string{"a"}, "aws:tagkeys", true},
		{"Null", []string{"true"}, "aws:tagkeys", true},
		{"Null", []string{"false"}, "aws:tagkeys", false},
		{"Bool", []string{"false"}, "aws:securetransport", true},
		{"Bool", []string{"true"}, "aws:securetransport", false},
	} {
		if got := conditionHolds(t, c.op, c.vals, ctx, c.key); got != c.want {
			t.Errorf("%s %s %q: got %v, want %v", c.op, c.key, c.vals, got, c.want)
		}
	}
	if !glob("arn:aws:iam::1:role/kms-autotagger/*", "arn:aws:iam::1:role/kms-autotagger/a/b", false) || glob("role/a?", "role/a", false) || !glob("KMS:Tag*", "kms:tagresource", true) {
		t.Error("glob: * must cross slashes, ? is one character, actions ignore case")
	}
	if _, ok := substitute("arn:aws:iam::${aws:PrincipalAccount}:role/r", ctx); ok {
		t.Error("substitute: a variable the request lacks must not resolve")
	}
	withPrincipal := request{principalARN: "arn:aws:iam::444455556666:role/r"}.context()
	if got, ok := substitute("arn:aws:iam::${aws:PrincipalAccount}:role/r", withPrincipal); !ok || got != "arn:aws:iam::444455556666:role/r" {
		t.Errorf("substitute: got %q %v, want the principal's account", got, ok)
	}
}
