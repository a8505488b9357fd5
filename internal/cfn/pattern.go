package cfn

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// MatchPattern reports whether event matches the EventBridge event pattern.
// Both are decoded JSON (or YAML) objects; numbers may be of any Go numeric
// type or json.Number.
//
// The supported subset of the pattern language:
//
//   - A field whose pattern is an object matches the event's object there
//     field by field. When the event holds an array of objects there, one of
//     them must match all of the nested pattern.
//   - A field whose pattern is an array matches when any of its elements
//     matches (OR); all fields must match (AND).
//   - A literal (string, number, true, false or null) matches an equal value:
//     strings exactly and case-sensitively, numbers by numeric value, null
//     only null (not the empty string). A field missing from the event never
//     matches a literal.
//   - When the event holds an array of values, the field matches when any
//     element matches.
//   - {"prefix": "s"} matches a string value starting with s.
//   - {"exists": true} matches a field that is present with a value;
//     {"exists": false} matches a field that is missing. As in EventBridge,
//     only leaf values count: a field holding an object, or an empty array,
//     does not exist for this test. A null value exists.
//   - {"anything-but": v} matches a present value other than v, where v is a
//     string, a number, a list of strings or numbers, or {"prefix": "s"} for
//     a string not starting with s. A missing field does not match.
//
// Anything else (suffix, numeric, cidr, wildcard, equals-ignore-case, $or,
// ...) or a malformed pattern is an error. The whole pattern is checked
// before the event is looked at, so the error does not depend on the event.
func MatchPattern(pattern, event map[string]any) (bool, error) {
	p, err := compileObject(pattern, "")
	if err != nil {
		return false, err
	}
	return p.match(event), nil
}

type objectPattern struct {
	fields []fieldPattern
}

type fieldPattern struct {
	name string
	// object is set when the field's pattern is a nested object.
	object *objectPattern
	// anyOf is set when the field's pattern is an array of matchers.
	anyOf []valueMatcher
}

// valueMatcher matches the leaf values found at one field of an event;
// present is false when there are none.
type valueMatcher interface {
	match(values []any, present bool) bool
}

func compileObject(m map[string]any, path string) (*objectPattern, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("cfn: event pattern %s: empty object", describe(path))
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	p := &objectPattern{}
	for _, name := range names {
		fieldPath := join(path, name)
		if strings.HasPrefix(name, "$") {
			return nil, fmt.Errorf("cfn: event pattern %s: unsupported operator %q", describe(path), name)
		}
		switch x := m[name].(type) {
		case map[string]any:
			sub, err := compileObject(x, fieldPath)
			if err != nil {
				return nil, err
			}
			p.fields = append(p.fields, fieldPattern{name: name, object: sub})
		case []any:
			if len(x) == 0 {
				return nil, fmt.Errorf("cfn: event pattern %s: empty array", fieldPath)
			}
			f := fieldPattern{name: name}
			for _, el := range x {
				vm, err := compileValue(el, fieldPath)
				if err != nil {
					return nil, err
				}
				f.anyOf = append(f.anyOf, vm)
			}
			p.fields = append(p.fields, f)
		default:
			return nil, fmt.Errorf("cfn: event pattern %s: must be an array or an object, not %T", fieldPath, x)
		}
	}
	return p, nil
}

func describe(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

func compileValue(v any, path string) (valueMatcher, error) {
	if v == nil {
		return literal{value: nil}, nil
	}
	if n, ok := number(v); ok {
		return literal{value: n}, nil
	}
	switch x := v.(type) {
	case string, bool:
		return literal{value: x}, nil
	case map[string]any:
		if len(x) != 1 {
			return nil, fmt.Errorf("cfn: event pattern %s: an operator object must have exactly one key", path)
		}
		for op, arg := range x {
			return compileOperator(op, arg, path)
		}
	}
	return nil, fmt.Errorf("cfn: event pattern %s: unsupported value %T", path, v)
}

func compileOperator(op string, arg any, path string) (valueMatcher, error) {
	switch op {
	case "exists":
		want, ok := arg.(bool)
		if !ok {
			return nil, fmt.Errorf("cfn: event pattern %s: exists takes true or false", path)
		}
		return exists{want: want}, nil
	case "prefix":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("cfn: event pattern %s: unsupported prefix argument %T", path, arg)
		}
		return prefix{prefix: s}, nil
	case "anything-but":
		return compileAnythingBut(arg, path)
	default:
		return nil, fmt.Errorf("cfn: event pattern %s: unsupported operator %q", path, op)
	}
}

func compileAnythingBut(arg any, path string) (valueMatcher, error) {
	if n, ok := number(arg); ok {
		return anythingBut{values: []any{n}}, nil
	}
	switch x := arg.(type) {
	case string:
		return anythingBut{values: []any{x}}, nil
	case []any:
		if len(x) == 0 {
			return nil, fmt.Errorf("cfn: event pattern %s: anything-but takes a non-empty list", path)
		}
		var strs, nums int
		values := make([]any, 0, len(x))
		for _, el := range x {
			if n, ok := number(el); ok {
				nums++
				values = append(values, n)
				continue
			}
			s, ok := el.(string)
			if !ok {
				return nil, fmt.Errorf("cfn: event pattern %s: anything-but lists only strings or only numbers", path)
			}
			strs++
			values = append(values, s)
		}
		if strs > 0 && nums > 0 {
			return nil, fmt.Errorf("cfn: event pattern %s: anything-but lists only strings or only numbers", path)
		}
		return anythingBut{values: values}, nil
	case map[string]any:
		if len(x) == 1 {
			if p, ok := x["prefix"].(string); ok {
				return anythingBut{prefix: p, byPrefix: true}, nil
			}
		}
		return nil, fmt.Errorf("cfn: event pattern %s: unsupported anything-but operator %v", path, x)
	default:
		return nil, fmt.Errorf("cfn: event pattern %s: unsupported anything-but argument %T", path, arg)
	}
}

func (p *objectPattern) match(obj map[string]any) bool {
	for _, f := range p.fields {
		v, ok := obj[f.name]
		if f.object != nil {
			if !f.object.matchValue(v) {
				return false
			}
			continue
		}
		var values []any
		if ok {
			values = leafValues(v, nil)
		}
		present := len(values) > 0
		matched := false
		for _, m := range f.anyOf {
			if m.match(values, present) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	return true
}

// matchValue matches a nested pattern against whatever the event holds at
// its field: an object, an array of objects, or nothing usable (then every
// field below is missing).
func (p *objectPattern) matchValue(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return p.match(x)
	case []any:
		objects := 0
		for _, el := range x {
			if m, ok := el.(map[string]any); ok {
				objects++
				if p.match(m) {
					return true
				}
			}
		}
		if objects > 0 {
			return false
		}
	}
	return p.match(nil)
}

// leafValues appends the scalar values at a field to out: the value itself,
// or the scalars in an array (nested arrays flattened). Objects are not leaf
// values.
func leafValues(v any, out []any) []any {
	switch x := v.(type) {
	case map[string]any:
		return out
	case []any:
		for _, el := range x {
			out = leafValues(el, out)
		}
		return out
	default:
		if n, ok := number(x); ok {
			return append(out, n)
		}
		return append(out, x)
	}
}

type literal struct {
	value any
}

func (l literal) match(values []any, present bool) bool {
	for _, v := range values {
		if v == l.value {
			return true
		}
	}
	return false
}

type prefix struct {
	prefix string
}

func (p prefix) match(values []any, present bool) bool {
	for _, v := range values {
		if s, ok := v.(string); ok && strings.HasPrefix(s, p.prefix) {
			return true
		}
	}
	return false
}

type exists struct {
	want bool
}

func (e exists) match(values []any, present bool) bool {
	return present == e.want
}

type anythingBut struct {
	values   []any
	prefix   string
	byPrefix bool
}

func (a anythingBut) match(values []any, present bool) bool {
	for _, v := range values {
		if a.byPrefix {
			if s, ok := v.(string); ok && !strings.HasPrefix(s, a.prefix) {
				return true
			}
			continue
		}
		excluded := false
		for _, x := range a.values {
			if v == x {
				excluded = true
				break
			}
		}
		if !excluded {
			return true
		}
	}
	return false
}

// number returns v as a float64 when it is a number of any Go numeric type
// or a json.Number, so that numbers compare by value.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	default:
		return 0, false
	}
}
